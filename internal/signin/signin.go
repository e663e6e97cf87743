// Package signin is who may see and do what on Rebook's web pages: sign-in
// through the trust's OpenID Connect provider (or, on a developer's
// machine, a configured local user), a sealed session cookie, CSRF tokens
// for every form, and the three roles.
//
// staff see and act on their own teams' requests; operators see every
// request and may decode payloads (the codec); admins see every request
// and look after the rules and the grant.
package signin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rebookhq/rebook/internal/secret"
)

// The roles. In the identity provider they are app roles (Microsoft Entra
// ID) or role claims named rebook.staff, rebook.operator and rebook.admin.
const (
	Staff    = "staff"
	Operator = "operator"
	Admin    = "admin"
)

var roles = []string{Staff, Operator, Admin}

// SessionTTL is how long a sign-in lasts: one working shift.
const SessionTTL = 8 * time.Hour

const (
	sessionCookie = "rebook_session"
	flowCookie    = "rebook_signin"
	csrfField     = "csrf"
)

// User is the signed-in person. Name is what the audit log and the
// workflow record as the actor.
type User struct {
	Name    string   `json:"n"`
	Roles   []string `json:"r"`
	Teams   []string `json:"t,omitempty"`
	CSRF    string   `json:"c"`
	Expires int64    `json:"e"`
	// Local marks a local user's session, which works only from this
	// machine, as the sign-in did.
	Local bool `json:"l,omitempty"`
	// Subject is the identity provider's stable id for the person (sub,
	// or Entra ID's oid), which a renamed account keeps.
	Subject string `json:"s,omitempty"`
}

// Has says whether the user holds role.
func (u *User) Has(role string) bool { return u != nil && slices.Contains(u.Roles, role) }

// SeesAll says whether the user may see every team's requests.
func (u *User) SeesAll() bool { return u.Has(Operator) || u.Has(Admin) }

// MaySee says whether the user may see a request routed to team.
func (u *User) MaySee(team string) bool {
	if u.SeesAll() {
		return true
	}
	if !u.Has(Staff) || team == "" {
		return false
	}
	return slices.ContainsFunc(u.Teams, func(t string) bool { return strings.EqualFold(t, team) })
}

// LocalUser is a user who signs in without an identity provider, for
// local runs only.
type LocalUser struct {
	Name  string
	Roles []string
	Teams []string
}

// Options configure sign-in. Either Issuer (with ClientID and
// ClientSecret) or LocalUsers must be set for anyone to sign in.
type Options struct {
	// PublicURL is Rebook's own base URL: the callback is
	// PublicURL/auth/callback, and an https URL makes cookies Secure.
	PublicURL    string
	Issuer       string
	ClientID     string
	ClientSecret string
	// RolesClaim and TeamsClaim name the ID token's claims that hold the
	// roles and the team names ("roles" and "groups" if empty).
	RolesClaim string
	TeamsClaim string
	// CodecAudience is the audience a forwarded access token must carry
	// for the codec (ClientID if empty).
	CodecAudience string
	LocalUsers    []LocalUser
	// ListenAddr is where the front door listens (REBOOK_HTTP_ADDR);
	// local users need it on loopback. Empty: PublicURL's host stands in.
	ListenAddr string
	// Key seals the cookies (REBOOK_ENCRYPTION_KEY).
	Key []byte
	// OldKeys open cookies sealed before a key rotation.
	OldKeys [][]byte
	Log     *slog.Logger
	// Sessions keeps the sessions; in this process only if nil.
	Sessions Sessions
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Auth signs people in and guards pages.
type Auth struct {
	o        Options
	box      *secret.Box
	secure   bool
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	access   *oidc.IDTokenVerifier
}

// New prepares sign-in. With an Issuer it reads the provider's discovery
// document, so the provider must be reachable.
func New(ctx context.Context, o Options) (*Auth, error) {
	box, err := secret.New(o.Key, o.OldKeys...)
	if err != nil {
		return nil, fmt.Errorf("signin: %w", err)
	}
	if o.RolesClaim == "" {
		o.RolesClaim = "roles"
	}
	if o.TeamsClaim == "" {
		o.TeamsClaim = "groups"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Sessions == nil {
		o.Sessions = &memSessions{}
	}
	a := &Auth{o: o, box: box, secure: strings.HasPrefix(o.PublicURL, "https://")}
	listen := o.ListenAddr
	if listen == "" {
		if u, err := url.Parse(o.PublicURL); err == nil {
			listen = u.Host
		}
	}
	if len(o.LocalUsers) > 0 && (!Loopback(o.PublicURL) || !loopbackHost(listen)) {
		return nil, errors.New("signin: local users sign in without an identity provider, so they are only allowed when REBOOK_HTTP_ADDR listens on this machine only (127.0.0.1, ::1 or localhost) and REBOOK_PUBLIC_URL is on it too; anywhere else set REBOOK_OIDC_*")
	}
	if o.Issuer != "" {
		p, err := oidc.NewProvider(ctx, o.Issuer)
		if err != nil {
			return nil, fmt.Errorf("signin: reading the identity provider's discovery document: %w", err)
		}
		a.oauth = &oauth2.Config{
			ClientID: o.ClientID, ClientSecret: o.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: o.PublicURL + "/auth/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
		}
		a.verifier = p.Verifier(&oidc.Config{ClientID: o.ClientID, Now: o.Now})
		aud := o.CodecAudience
		if aud == "" {
			aud = o.ClientID
		}
		a.access = p.Verifier(&oidc.Config{ClientID: aud, Now: o.Now})
	}
	return a, nil
}

// Loopback says whether a URL's host is this machine.
func Loopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// loopbackHost says whether a host or host:port is this machine only.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fromThisMachine says whether r came over a loopback connection and not
// through a proxy: a proxy on this machine that forwards other people's
// requests makes every connection look local.
func fromThisMachine(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Configured says whether anyone can sign in.
func (a *Auth) Configured() bool { return a.oauth != nil || len(a.o.LocalUsers) > 0 }

// Register adds the sign-in pages to m.
func (a *Auth) Register(m *http.ServeMux) {
	m.HandleFunc("GET /signin", a.signinPage)
	m.HandleFunc("POST /signin/local", a.localSignin)
	m.HandleFunc("GET /auth/callback", a.callback)
	m.HandleFunc("POST /signout", a.signout)
}

type ctxKey struct{}

// FromContext is the user a guarded handler serves.
func FromContext(ctx context.Context) *User {
	u, _ := ctx.Value(ctxKey{}).(*User)
	return u
}

// Page guards a human-facing page: without a session a browser's GET is
// sent to sign in and anything else gets 401; a signed-in person without
// any role gets 403. A POST must carry the session's CSRF token.
func (a *Auth) Page(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := a.session(r)
		if u == nil {
			if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first: "+a.o.PublicURL+"/signin", http.StatusUnauthorized)
			return
		}
		if !u.Has(Staff) && !u.SeesAll() {
			http.Error(w, "your account has no Rebook role (staff, operator or admin); ask your administrator", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !a.validCSRF(r, u.CSRF) {
			http.Error(w, "the form was stale or did not come from Rebook; reload the page and try again", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)))
	})
}

// Operator guards the codec: an operator's session, or a bearer access
// token from the identity provider (the Temporal Web UI forwards its own
// when it signs people in) that carries the operator role.
func (a *Auth) Operator(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			h.ServeHTTP(w, r) // the CORS preflight carries no credentials
			return
		}
		u := a.session(r)
		if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && u == nil && a.access != nil {
			tok, err := a.access.Verify(r.Context(), bearer)
			if err != nil {
				a.o.Log.Info("codec: access token refused", "why", err)
			} else if u, err = a.user(tok); err != nil {
				a.o.Log.Info("codec: access token unreadable", "why", err)
			}
		}
		switch {
		case u == nil:
			http.Error(w, "the codec decodes for a signed-in operator only", http.StatusUnauthorized)
		case !u.Has(Operator):
			http.Error(w, "the codec decodes for operators only", http.StatusForbidden)
		default:
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)))
		}
	})
}

// SignedIn says whether r carries a valid session.
func (a *Auth) SignedIn(r *http.Request) bool { return a.session(r) != nil }

func (a *Auth) validCSRF(r *http.Request, want string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// CSRFField is the hidden form field's name; each form carries
// FromContext(ctx).CSRF in it.
const CSRFField = csrfField

// flashCookie carries the outcome of a person's action to the page they
// are sent to: sealed, so only Rebook can write what a page shows as its
// own, and bound to that person.
const flashCookie = "rebook_flash"

type flash struct {
	Kind, Text, User string
	Expires          int64
}

// SetFlash leaves a message (kind "said" or "problem") for the next page
// the signed-in person sees.
func (a *Auth) SetFlash(w http.ResponseWriter, r *http.Request, kind, text string) {
	u := a.session(r)
	if u == nil {
		return
	}
	v, err := a.sealCookie(flashCookie, flash{Kind: kind, Text: text, User: u.Name, Expires: a.o.Now().Add(time.Minute).Unix()})
	if err != nil {
		return
	}
	http.SetCookie(w, a.cookie(flashCookie, v, time.Minute))
}

// TakeFlash returns the message SetFlash left for this person, and clears
// it; empty when there is none, or it is not theirs or too old.
func (a *Auth) TakeFlash(w http.ResponseWriter, r *http.Request) (kind, text string) {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return "", ""
	}
	http.SetCookie(w, a.cookie(flashCookie, "", -time.Second))
	var f flash
	u := a.session(r)
	if u == nil || !a.openCookie(c.Value, flashCookie, &f) || f.User != u.Name || a.o.Now().Unix() > f.Expires {
		return "", ""
	}
	return f.Kind, f.Text
}

func (a *Auth) cookie(name, value string, ttl time.Duration) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(ttl.Seconds()), HttpOnly: true,
		Secure: a.secure, SameSite: http.SameSiteLaxMode}
}

func (a *Auth) sealCookie(place string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sealed, err := a.box.Seal(b, place)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

func (a *Auth) openCookie(value, place string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return false
	}
	pt, err := a.box.Open(b, place)
	if err != nil {
		return false
	}
	return json.Unmarshal(pt, v) == nil
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// localPath keeps a post-sign-in redirect on Rebook itself.
func localPath(next string) string {
	const home = "/requests"
	for _, r := range next {
		// A browser drops tabs and newlines from a URL and reads "\" as
		// "/": "/\t/evil" and "/\\evil" would leave the site.
		if r < 0x20 || r == 0x7f || r == '\\' {
			return home
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return home
	}
	return next
}

// ParseLocalUsers reads REBOOK_LOCAL_USERS: entries separated by ";",
// each name:roles:teams, with roles and teams separated by ",", such as
// "dev:operator,admin:;sam:staff:Cardiology outpatients".
func ParseLocalUsers(s string) ([]LocalUser, error) {
	var out []LocalUser
	for entry := range strings.SplitSeq(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		parts := strings.Split(entry, ":")
		if len(parts) < 2 || len(parts) > 3 || strings.TrimSpace(parts[0]) == "" {
			return nil, fmt.Errorf("entry %d is not name:roles:teams", len(out)+1)
		}
		u := LocalUser{Name: strings.TrimSpace(parts[0])}
		for r := range strings.SplitSeq(parts[1], ",") {
			r = strings.ToLower(strings.TrimSpace(r))
			if !slices.Contains(roles, r) {
				return nil, fmt.Errorf("user %s: role %q is not staff, operator or admin", u.Name, r)
			}
			u.Roles = append(u.Roles, r)
		}
		if len(parts) == 3 {
			for t := range strings.SplitSeq(parts[2], ",") {
				if t = strings.TrimSpace(t); t != "" {
					u.Teams = append(u.Teams, t)
				}
			}
		}
		if slices.Equal(u.Roles, []string{Staff}) && len(u.Teams) == 0 {
			return nil, fmt.Errorf("user %s: staff need at least one team", u.Name)
		}
		out = append(out, u)
	}
	return out, nil
}
