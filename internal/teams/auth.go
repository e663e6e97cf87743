package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Verifier checks the token the Bot Connector sends with every activity:
// an RS256 JWT signed by a key from the Bot Framework's OpenID metadata,
// issued by it, for this bot, unexpired, and (once the body is read)
// naming the activity's serviceUrl with a key endorsed for its channel.
type Verifier struct {
	AppID     string
	OpenIDURL string   // DefaultOpenIDURL if empty
	Issuers   []string // BotIssuer if empty
	HTTP      *http.Client
	Now       func() time.Time

	mu      sync.Mutex
	keys    map[string]botKey
	fetched time.Time
}

type botKey struct {
	key          any
	endorsements []string
}

// Claims are what a verified token says about its activity.
type Claims struct {
	ServiceURL   string
	endorsements []string
}

// leeway is the clock skew the Bot Framework allows.
const leeway = 5 * time.Minute

// keysFor is how long the keys are trusted before they are read again;
// an unknown key id reads them at once, at most once a minute.
const (
	keysFor    = 24 * time.Hour
	keysAtMost = time.Minute
)

// ErrUnauthorized is every refusal of a token: the answer is 401 and
// nothing in the activity is acted on.
var ErrUnauthorized = errors.New("teams: the Bot Connector's token is missing or not valid")

// Verify checks the Authorization header, before anything of the body is
// read.
func (v *Verifier) Verify(ctx context.Context, authorization string) (*Claims, error) {
	raw, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return nil, fmt.Errorf("%w: no key id", ErrUnauthorized)
	}
	k, err := v.key(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var extra struct {
		ServiceURL string `json:"serviceurl"`
		Alt        string `json:"serviceUrl"`
	}
	if err := tok.Claims(k.key, &std, &extra); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrUnauthorized, err)
	}
	issuers := v.Issuers
	if len(issuers) == 0 {
		issuers = []string{BotIssuer}
	}
	if !slices.Contains(issuers, std.Issuer) {
		return nil, fmt.Errorf("%w: issuer %q", ErrUnauthorized, std.Issuer)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if std.Expiry == nil {
		return nil, fmt.Errorf("%w: no expiry", ErrUnauthorized)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{v.AppID}, Time: now()}, leeway); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	su := extra.ServiceURL
	if su == "" {
		su = extra.Alt
	}
	return &Claims{ServiceURL: su, endorsements: k.endorsements}, nil
}

// Check holds the body to the token: the activity's serviceUrl must be the
// one the token names, and the signing key endorsed for its channel.
func (c *Claims) Check(serviceURL, channelID string) error {
	if c.ServiceURL == "" || !sameServiceURL(c.ServiceURL, serviceURL) {
		return fmt.Errorf("%w: the token's serviceurl is not the activity's", ErrUnauthorized)
	}
	if !slices.Contains(c.endorsements, channelID) {
		return fmt.Errorf("%w: the signing key is not endorsed for channel %q", ErrUnauthorized, channelID)
	}
	return nil
}

func sameServiceURL(a, b string) bool {
	ua, err1 := url.Parse(strings.TrimSuffix(a, "/"))
	ub, err2 := url.Parse(strings.TrimSuffix(b, "/"))
	if err1 != nil || err2 != nil {
		return false
	}
	return ua.Scheme == ub.Scheme && strings.EqualFold(ua.Host, ub.Host) && ua.Path == ub.Path
}

func (v *Verifier) key(ctx context.Context, kid string) (botKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.keys[kid]
	stale := time.Since(v.fetched) > keysFor
	if ok && !stale {
		return k, nil
	}
	if !stale && time.Since(v.fetched) < keysAtMost && v.keys != nil {
		return botKey{}, fmt.Errorf("%w: unknown key %q", ErrUnauthorized, kid)
	}
	keys, err := v.fetch(ctx)
	if err != nil {
		if ok {
			return k, nil // the cached key stands while the metadata is unreachable
		}
		return botKey{}, fmt.Errorf("%w: cannot read the Bot Framework's keys: %v", ErrUnauthorized, err)
	}
	v.keys, v.fetched = keys, time.Now()
	if k, ok = keys[kid]; !ok {
		return botKey{}, fmt.Errorf("%w: unknown key %q", ErrUnauthorized, kid)
	}
	return k, nil
}

func (v *Verifier) fetch(ctx context.Context) (map[string]botKey, error) {
	hc := v.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, hc, cfgOr(v.OpenIDURL, DefaultOpenIDURL), &meta); err != nil {
		return nil, err
	}
	if meta.JWKSURI == "" {
		return nil, errors.New("the OpenID metadata names no jwks_uri")
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := getJSON(ctx, hc, meta.JWKSURI, &set); err != nil {
		return nil, err
	}
	keys := map[string]botKey{}
	for _, raw := range set.Keys {
		var jwk jose.JSONWebKey
		var more struct {
			Endorsements []string `json:"endorsements"`
		}
		if jwk.UnmarshalJSON(raw) != nil || json.Unmarshal(raw, &more) != nil || jwk.KeyID == "" || !jwk.IsPublic() {
			continue
		}
		keys[jwk.KeyID] = botKey{key: jwk.Key, endorsements: more.Endorsements}
	}
	return keys, nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(out)
}
