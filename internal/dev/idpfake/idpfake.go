// Package idpfake is an OpenID Connect provider for tests: discovery,
// keys, an authorize endpoint that signs in whoever the test says (with
// the state, nonce and PKCE challenge carried through) and a token
// endpoint that checks the code, the verifier and the client secret.
package idpfake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Provider is a running fake identity provider.
type Provider struct {
	URL                    string
	ClientID, ClientSecret string

	srv    *httptest.Server
	key    *rsa.PrivateKey
	signer jose.Signer

	mu      sync.Mutex
	next    map[string]any // the claims the next sign-in gets
	codes   map[string]grant
	current map[string]map[string]any // by sub: the claims a refresh gets now
	refresh map[string]string         // refresh token -> sub
}

type grant struct {
	claims    map[string]any
	nonce     string
	challenge string
	redirect  string
}

// New starts a provider for one client.
func New(clientID, clientSecret string) *Provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	p := &Provider{ClientID: clientID, ClientSecret: clientSecret, key: key, signer: signer, codes: map[string]grant{}, current: map[string]map[string]any{}, refresh: map[string]string{}}
	m := http.NewServeMux()
	m.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	m.HandleFunc("GET /jwks", p.jwks)
	m.HandleFunc("GET /authorize", p.authorize)
	m.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(m)
	p.URL = p.srv.URL
	return p
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

// SignInAs sets the claims (sub, preferred_username, roles, groups…) the
// next sign-in gets.
func (p *Provider) SignInAs(claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = claims
	if sub, _ := claims["sub"].(string); sub != "" {
		p.current[sub] = claims
	}
}

// Change sets the claims a refresh for sub gets from now on, as when an
// administrator changes a person's roles; nil refuses their refreshes,
// as when the account is disabled.
func (p *Provider) Change(sub string, claims map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if claims == nil {
		delete(p.current, sub)
		return
	}
	p.current[sub] = claims
}

// Token mints a signed token for audience with these claims, as the
// provider would issue an access token.
func (p *Provider) Token(audience string, claims map[string]any, ttl time.Duration) string {
	c := map[string]any{"iss": p.URL, "aud": audience, "iat": time.Now().Unix(), "exp": time.Now().Add(ttl).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	s, err := jwt.Signed(p.signer).Claims(c).Serialize()
	if err != nil {
		panic(err)
	}
	return s
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize", "token_endpoint": p.URL + "/token",
		"jwks_uri": p.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.ClientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorize request", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	claims := p.next
	code := rand.Text()
	p.codes[code] = grant{claims: claims, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	p.mu.Unlock()
	to, _ := url.Parse(q.Get("redirect_uri"))
	v := to.Query()
	if claims == nil {
		v.Set("error", "access_denied")
	} else {
		v.Set("code", code)
	}
	v.Set("state", q.Get("state"))
	to.RawQuery = v.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if r.PostFormValue("grant_type") == "refresh_token" {
		p.refreshGrant(w, r, id == p.ClientID && secret == p.ClientSecret)
		return
	}
	p.mu.Lock()
	g, found := p.codes[r.PostFormValue("code")]
	delete(p.codes, r.PostFormValue("code"))
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	switch {
	case id != p.ClientID || secret != p.ClientSecret:
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	case !found || g.redirect != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	claims := map[string]any{"nonce": g.nonce}
	for k, v := range g.claims {
		claims[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": p.Token(p.ClientID, g.claims, time.Hour), "token_type": "Bearer", "expires_in": 3600,
		"id_token": p.Token(p.ClientID, claims, time.Hour), "refresh_token": p.newRefresh(g.claims),
	})
}

func (p *Provider) newRefresh(claims map[string]any) string {
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return ""
	}
	rt := rand.Text()
	p.mu.Lock()
	p.refresh[rt] = sub
	p.mu.Unlock()
	return rt
}

// refreshGrant answers a refresh with the claims the person has now, and
// a new refresh token (the old one is spent).
func (p *Provider) refreshGrant(w http.ResponseWriter, r *http.Request, client bool) {
	p.mu.Lock()
	sub, found := p.refresh[r.PostFormValue("refresh_token")]
	delete(p.refresh, r.PostFormValue("refresh_token"))
	claims := p.current[sub]
	p.mu.Unlock()
	switch {
	case !client:
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	case !found || claims == nil:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": p.Token(p.ClientID, claims, time.Hour), "token_type": "Bearer", "expires_in": 3600,
		"id_token": p.Token(p.ClientID, claims, time.Hour), "refresh_token": p.newRefresh(claims),
	})
}
