package pkbsim

import (
	"crypto/subtle"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type authCode struct {
	clientID, redirectURI string
	expires               time.Time
	used                  bool
}

type grant struct {
	id             string
	created        time.Time
	sessionExpires time.Time // zero: no session limit
	revoked        bool
}

type accessToken struct {
	grant   *grant
	expires time.Time
}

type refreshToken struct {
	grant *grant
	used  bool
}

const codeTTL = 5 * time.Minute

var authorizeTmpl = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Patients Know Best (simulator): grant access</title></head>
<body>
<h1>Grant access to your PKB account</h1>
<p>The application <strong>{{.ClientID}}</strong> asks for <strong>{{.Scope}}</strong> access: it will read
your teams' messages and the appointments and patient records they concern, until you or PKB revoke it.</p>
<form method="post" action="/apiAuthorize.action">
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="response_type" value="code">
<input type="hidden" name="scope" value="{{.Scope}}">
<input type="hidden" name="state" value="{{.State}}">
<button type="submit" name="decision" value="approve" id="approve">Approve</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>
</body></html>
`))

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PKB (simulator): request refused</title></head>
<body><h1>This authorization request cannot be served</h1><p>{{.}}</p></body></html>
`))

func (s *Server) authorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !s.checkAuthorizeRequest(w, q) {
		return
	}
	if s.autoApprove() {
		s.approve(w, r, q)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = authorizeTmpl.Execute(w, map[string]string{
		"ClientID": q.Get("client_id"), "RedirectURI": q.Get("redirect_uri"),
		"Scope": q.Get("scope"), "State": q.Get("state"),
	})
}

func (s *Server) authorizeDecision(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = errorTmpl.Execute(w, "The form could not be read.")
		return
	}
	q := r.PostForm
	if !s.checkAuthorizeRequest(w, q) {
		return
	}
	if q.Get("decision") != "approve" {
		redirectWith(w, r, q.Get("redirect_uri"), url.Values{"error": {"access_denied"}, "state": {q.Get("state")}})
		return
	}
	s.approve(w, r, q)
}

// checkAuthorizeRequest refuses, without redirecting, a request whose client
// or redirect URI is wrong (RFC 6749 4.1.2.1), and redirects with an error
// for the other faults.
func (s *Server) checkAuthorizeRequest(w http.ResponseWriter, q url.Values) bool {
	if q.Get("client_id") != s.cfg.ClientID || q.Get("redirect_uri") != s.cfg.RedirectURL {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_ = errorTmpl.Execute(w, "Unknown client_id, or a redirect_uri that is not the one registered for it.")
		return false
	}
	var fault string
	switch {
	case q.Get("response_type") != "code":
		fault = "unsupported_response_type"
	case !hasScope(q.Get("scope"), "CLINICIAN"):
		fault = "invalid_scope"
	}
	if fault != "" {
		u, _ := url.Parse(q.Get("redirect_uri"))
		v := u.Query()
		v.Set("error", fault)
		v.Set("state", q.Get("state"))
		u.RawQuery = v.Encode()
		w.Header().Set("Location", u.String())
		w.WriteHeader(http.StatusFound)
		return false
	}
	return true
}

func hasScope(scopes, want string) bool {
	for _, s := range strings.Fields(scopes) {
		if s == want {
			return true
		}
	}
	return false
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, q url.Values) {
	code := randomToken()
	s.mu.Lock()
	s.codes[code] = &authCode{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), expires: s.cfg.Now().Add(codeTTL)}
	s.mu.Unlock()
	redirectWith(w, r, q.Get("redirect_uri"), url.Values{"code": {code}, "state": {q.Get("state")}})
}

func redirectWith(w http.ResponseWriter, r *http.Request, to string, add url.Values) {
	u, _ := url.Parse(to)
	v := u.Query()
	for k, vs := range add {
		if len(vs) > 0 && vs[0] != "" {
			v.Set(k, vs[0])
		}
	}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="pkb"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(s.cfg.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.ClientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var g *grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		c := s.codes[r.PostForm.Get("code")]
		switch {
		case c == nil:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown authorization code")
			return
		case c.used:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code already used")
			return
		case now.After(c.expires):
			oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code expired")
			return
		case c.clientID != id || c.redirectURI != r.PostForm.Get("redirect_uri"):
			oauthError(w, http.StatusBadRequest, "invalid_grant", "authorization code was issued to another client or redirect_uri")
			return
		}
		c.used = true
		g = &grant{id: randomToken()[:12], created: now}
		if s.cfg.SessionTTL > 0 {
			g.sessionExpires = now.Add(s.cfg.SessionTTL)
		}
		s.grants[g.id] = g
	case "refresh_token":
		rt := s.refresh[r.PostForm.Get("refresh_token")]
		switch {
		case rt == nil:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown refresh token")
			return
		case rt.used:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token already used")
			return
		case rt.grant.revoked:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "access was revoked")
			return
		case !rt.grant.sessionExpires.IsZero() && !now.Before(rt.grant.sessionExpires):
			oauthError(w, http.StatusBadRequest, "invalid_grant", "session is over")
			return
		}
		rt.used = true
		g = rt.grant
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code and refresh_token")
		return
	}

	ttl := s.cfg.AccessTTL
	withRefresh := true
	if !g.sessionExpires.IsZero() {
		// PKB gives no refresh token when the session has less time left
		// than an access token lives.
		if left := g.sessionExpires.Sub(now); left < ttl {
			ttl, withRefresh = left, false
		}
	}
	at := randomToken()
	s.access[at] = &accessToken{grant: g, expires: now.Add(ttl)}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(ttl / time.Second), "scope": "CLINICIAN"}
	if r.PostForm.Get("grant_type") == "authorization_code" && s.cfg.GrantedBy != "" {
		resp["user_id"] = s.cfg.GrantedBy
	}
	if withRefresh {
		rt := randomToken()
		s.refresh[rt] = &refreshToken{grant: g}
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// bearer admits a call only with a live access token, and counts every call
// refused, by why, so tests can prove no dead token was used.
func (s *Server) bearer(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || tok == "" {
			s.count(CounterTokenMissing)
			tokenError(w, r, "no bearer token")
			return
		}
		now := s.cfg.Now()
		s.mu.Lock()
		at := s.access[tok]
		var why string
		switch {
		case at == nil:
			why = CounterTokenUnknown
		case at.grant.revoked:
			why = CounterTokenRevoked
		case !now.Before(at.expires):
			why = CounterTokenExpired
		}
		if why != "" {
			s.counters[why]++
		}
		s.mu.Unlock()
		if why != "" {
			tokenError(w, r, "the access token is invalid, expired or revoked")
			return
		}
		h(w, r)
	})
}

func tokenError(w http.ResponseWriter, r *http.Request, desc string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	if strings.HasPrefix(r.URL.Path, "/fhir/") {
		writeOutcome(w, http.StatusUnauthorized, "login", desc)
		return
	}
	oauthError(w, http.StatusUnauthorized, "invalid_token", desc)
}

func (s *Server) autoApprove() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.AutoApprove
}

// Counters for refused bearer tokens, beside the per-route counters.
const (
	CounterTokenMissing = "token refused: missing"
	CounterTokenUnknown = "token refused: unknown"
	CounterTokenExpired = "token refused: expired"
	CounterTokenRevoked = "token refused: revoked"
	CounterFault5xx     = "fault injected: 5xx"
	CounterFault429     = "fault injected: 429"
	// CounterOrgWideRefused counts Appointment searches refused for naming
	// no patient, as PKB documents.
	CounterOrgWideRefused = "search refused: no patient"
)
