package pkb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"golang.org/x/oauth2"

	"github.com/rebookhq/rebook/internal/metrics"
)

// TokenSource gives the access token for the next call. Rebook's reads the
// current token from the store; it never refreshes on its own.
type TokenSource interface {
	AccessToken(ctx context.Context) (string, error)
}

// StaticToken is a TokenSource for one fixed token (tests, tools).
type StaticToken string

func (t StaticToken) AccessToken(context.Context) (string, error) { return string(t), nil }

// Options configure a Client.
type Options struct {
	BaseURL     string // PKB_BASE_URL
	FHIRBaseURL string // PKB_FHIR_BASE_URL
	Tokens      TokenSource
	// Timeout bounds each call, attempts included; 30 s if zero.
	Timeout    time.Duration
	HTTPClient *http.Client
	// MaxConcurrent caps calls in flight from this client; PKB asks
	// integrators for about 4. Zero means 4.
	MaxConcurrent int
	// Metrics counts each call by endpoint and outcome (nil: not counted).
	Metrics client.MetricsHandler
}

// Client calls PKB's messages and FHIR APIs with a bearer token.
type Client struct {
	base, fhirBase string
	tokens         TokenSource
	timeout        time.Duration
	http           *http.Client
	slots          chan struct{}
	metrics        client.MetricsHandler
}

// New makes a Client.
func New(o Options) (*Client, error) {
	for name, v := range map[string]string{"base URL": o.BaseURL, "FHIR base URL": o.FHIRBaseURL} {
		if u, err := url.Parse(v); err != nil || u.Host == "" {
			return nil, fmt.Errorf("pkb: %s %q is not an absolute URL", name, v)
		}
	}
	if o.Tokens == nil {
		return nil, errors.New("pkb: a token source is required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 4
	}
	if o.Metrics == nil {
		o.Metrics = client.MetricsNopHandler
	}
	return &Client{
		base:     strings.TrimRight(o.BaseURL, "/"),
		fhirBase: strings.TrimRight(o.FHIRBaseURL, "/"),
		tokens:   o.Tokens,
		timeout:  o.Timeout,
		http:     o.HTTPClient,
		slots:    make(chan struct{}, o.MaxConcurrent),
		metrics:  o.Metrics,
	}, nil
}

// get fetches rawURL with the bearer token and decodes a 200 JSON body into
// out. op names the call in errors.
func (c *Client) get(ctx context.Context, op, rawURL string, out any) error {
	select {
	case c.slots <- struct{}{}:
		defer func() { <-c.slots }()
	case <-ctx.Done():
		return transportError(ctx, op, ctx.Err())
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := c.tokens.AccessToken(ctx)
	if err != nil {
		return err
	}
	return c.do(ctx, op, rawURL, tok, out)
}

// Probe asks PKB, with the stored token even while work is paused, for
// the messages after now: an empty answer, no patient's data, that says
// whether PKB accepts the grant at all.
func (c *Client) Probe(ctx context.Context) error {
	st, ok := c.tokens.(interface {
		StoredToken(context.Context) (string, error)
	})
	if !ok {
		return errors.New("pkb: the token source cannot probe")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tok, err := st.StoredToken(ctx)
	if err != nil {
		return err
	}
	var out []Message
	u := c.base + MessagesPath + strconv.FormatInt(time.Now().UnixMilli(), 10) + "?status=pending"
	return c.do(ctx, "GET "+MessagesPath+"{ms}", u, tok, &out)
}

func (c *Client) do(ctx context.Context, op, rawURL, tok string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return &Error{Op: op, Kind: KindMalformed, Err: errors.New("cannot build request")}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json, application/fhir+json")
	resp, err := c.http.Do(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	c.metrics.WithTags(map[string]string{"endpoint": op, "outcome": metrics.Outcome(status, err)}).Counter(metrics.PKBCalls).Inc(1)
	if err != nil {
		return transportError(ctx, op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return transportError(ctx, op, err)
	}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized {
			if r, ok := c.tokens.(interface {
				Rejected(ctx context.Context, token string)
			}); ok {
				r.Rejected(ctx, tok)
			}
		}
		return statusError(op, resp, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &Error{Op: op, Kind: KindMalformed, Status: resp.StatusCode, Err: errors.New("response is not the expected JSON")}
	}
	return nil
}

// transportError keeps the Go error's class but drops its text, which for
// url.Error includes the URL and so the patient's id.
func transportError(ctx context.Context, op string, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded || (errors.As(err, &ne) && ne.Timeout()):
		return &Error{Op: op, Kind: KindTimeout, Err: context.DeadlineExceeded}
	case errors.Is(err, context.Canceled):
		return &Error{Op: op, Kind: KindNetwork, Err: context.Canceled}
	default:
		return &Error{Op: op, Kind: KindNetwork, Err: errors.New("no response from PKB")}
	}
}

func statusError(op string, resp *http.Response, body []byte) error {
	e := &Error{Op: op, Kind: kindOf(resp.StatusCode), Status: resp.StatusCode}
	if e.Kind == KindRateLimited {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	}
	// An OAuth-style {"error": "..."} or a FHIR OperationOutcome: keep the
	// code only, since diagnostics may quote the request.
	var probe struct {
		Error string `json:"error"`
		Issue []struct {
			Code string `json:"code"`
		} `json:"issue"`
	}
	if json.Unmarshal(body, &probe) == nil {
		switch {
		case probe.Error != "":
			e.Code = probe.Error
		case len(probe.Issue) > 0:
			e.Code = probe.Issue[0].Code
		}
	}
	return e
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// MessagesAfter returns one page of messages strictly after afterMS (epoch
// milliseconds), oldest first. pendingOnly keeps open appointment requests.
// Page on by calling again with the last message's timestamp until a page
// comes back empty.
func (c *Client) MessagesAfter(ctx context.Context, afterMS int64, pendingOnly bool) ([]Message, error) {
	u := c.base + MessagesPath + strconv.FormatInt(afterMS, 10)
	if pendingOnly {
		u += "?status=pending"
	}
	var page []Message
	if err := c.get(ctx, "GET "+MessagesPath+"{ms}", u, &page); err != nil {
		return nil, err
	}
	return page, nil
}

// Message fetches one message by id. PKB has no by-id call, so it reads the
// page that starts just before the message's timestamp: a page never splits
// messages that share a timestamp, so the message is on it if it exists.
func (c *Client) Message(ctx context.Context, id string, timestamp int64) (Message, error) {
	page, err := c.MessagesAfter(ctx, timestamp-1, false)
	if err != nil {
		return Message{}, err
	}
	for _, m := range page {
		if m.ID == id {
			return m, nil
		}
		if m.Timestamp > timestamp {
			break
		}
	}
	return Message{}, &Error{Op: "GET " + MessagesPath + "{ms}", Kind: KindNotFound, Err: errors.New("message not found at its timestamp")}
}

// OAuthConfig is x/oauth2's configuration, named here so callers need not import it.
type OAuthConfig = oauth2.Config

// OAuth builds the oauth2 configuration for PKB's endpoints.
func OAuth(baseURL, clientID, clientSecret, redirectURL string) *oauth2.Config {
	base := strings.TrimRight(baseURL, "/")
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		RedirectURL:  redirectURL,
		Scopes:       []string{Scope},
		Endpoint: oauth2.Endpoint{
			AuthURL:   base + AuthorizePath,
			TokenURL:  base + TokenPath,
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
}

// Exchange trades an authorization code for a token pair.
func Exchange(ctx context.Context, cfg *oauth2.Config, code string) (*oauth2.Token, error) {
	tok, err := cfg.Exchange(ctx, code)
	if err != nil {
		return nil, tokenError("exchange", err)
	}
	return tok, nil
}

// Refresh trades a refresh token for a new pair. Refresh tokens rotate, so
// the one passed in is dead afterwards. The result's RefreshToken is empty
// when PKB sent none (the session is nearly over): oauth2 would otherwise
// hand back the dead one.
func Refresh(ctx context.Context, cfg *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return nil, tokenError("refresh", err)
	}
	if tok.RefreshToken == refreshToken {
		tok.RefreshToken = ""
	}
	return tok, nil
}

func tokenError(op string, err error) error {
	op = "POST " + TokenPath + " (" + op + ")"
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &Error{Op: op, Status: re.Response.StatusCode, Code: re.ErrorCode}
		switch {
		case re.ErrorCode == "invalid_grant":
			e.Kind = KindInvalidGrant
		case re.ErrorCode == "invalid_client" || re.Response.StatusCode == http.StatusUnauthorized:
			e.Kind = KindInvalidClient
		default:
			e.Kind = kindOf(re.Response.StatusCode)
			if e.Kind == KindRateLimited {
				e.RetryAfter = retryAfter(re.Response.Header.Get("Retry-After"))
			}
		}
		return e
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &Error{Op: op, Kind: KindTimeout, Err: context.DeadlineExceeded}
	}
	return &Error{Op: op, Kind: KindNetwork, Err: errors.New("no response from PKB")}
}
