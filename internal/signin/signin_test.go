package signin_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/idpfake"
	"github.com/rebookhq/rebook/internal/dev/webclient"
	"github.com/rebookhq/rebook/internal/signin"
)

// site is Rebook's sign-in in front of one page that says who is signed
// in, and the codec guard in front of a handler that says "decoded".
func site(t *testing.T, o signin.Options) (*httptest.Server, *signin.Auth) {
	srv := httptest.NewUnstartedServer(nil)
	o.PublicURL = "http://" + srv.Listener.Addr().String()
	o.Key = bytes.Repeat([]byte{7}, 32)
	auth, err := signin.New(context.Background(), o)
	require.NoError(t, err)
	m := http.NewServeMux()
	auth.Register(m)
	m.Handle("/page", auth.Page(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := signin.FromContext(r.Context())
		_, _ = w.Write([]byte("hello " + u.Name + " " + strings.Join(u.Roles, ",") + " " + strings.Join(u.Teams, ",")))
	})))
	m.Handle("/whoami", auth.Operator(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(signin.FromContext(r.Context()).Subject))
	})))
	m.Handle("/codec/decode", auth.Operator(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("decoded")) })))
	srv.Config.Handler = m
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, auth
}

// follow walks redirects by hand, across the site and the provider,
// keeping cookies, and returns the last answer.
func follow(t *testing.T, c *webclient.Client, start string) (*http.Response, string) {
	next := start
	for range 10 {
		req, err := http.NewRequest(http.MethodGet, next, nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "text/html")
		resp, err := c.HTTP.Do(req)
		require.NoError(t, err)
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		_ = resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			return resp, body.String()
		}
		next = loc.String()
	}
	t.Fatal("too many redirects")
	return nil, ""
}

func TestSignInThroughTheIdentityProvider(t *testing.T) {
	idp := idpfake.New("rebook", "s3cret")
	t.Cleanup(idp.Close)
	srv, _ := site(t, signin.Options{Issuer: idp.URL, ClientID: "rebook", ClientSecret: "s3cret"})
	c := webclient.New(t, srv.URL)

	resp, _ := c.Get("/page")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "a browser without a session is sent to sign in")
	assert.Equal(t, "/signin?next=%2Fpage", resp.Header.Get("Location"))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/page", nil)
	raw, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = raw.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, raw.StatusCode, "anything but a browser's GET gets 401")

	idp.SignInAs(map[string]any{"sub": "u1", "preferred_username": "sam@trust.nhs.uk", "roles": []any{"Rebook.Staff"}, "groups": []any{"Cardiology"}})
	resp, body := follow(t, c, srv.URL+"/signin?next=/page")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hello sam@trust.nhs.uk staff Cardiology", body, "back on the page asked for, with the roles and teams the token gave")

	// A staff member is not an operator: the codec refuses.
	resp, _ = c.Post("/codec/decode", nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// A POST without the session's CSRF token is refused.
	resp, _ = c.Post("/page", url.Values{"x": {"1"}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestSignInRefusals(t *testing.T) {
	idp := idpfake.New("rebook", "s3cret")
	t.Cleanup(idp.Close)
	srv, _ := site(t, signin.Options{Issuer: idp.URL, ClientID: "rebook", ClientSecret: "s3cret"})

	// No Rebook role: signed in by the provider, refused by Rebook.
	idp.SignInAs(map[string]any{"sub": "u2", "preferred_username": "visitor", "roles": []any{"Other.App"}})
	resp, body := follow(t, webclient.New(t, srv.URL), srv.URL+"/signin?next=/page")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, body, "no Rebook role")

	// The provider refuses.
	idp.SignInAs(nil)
	resp, _ = follow(t, webclient.New(t, srv.URL), srv.URL+"/signin?next=/page")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// A callback this browser did not start.
	resp, _ = webclient.New(t, srv.URL).Get("/auth/callback?code=x&state=forged")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// A redirect after sign-in stays on Rebook.
	idp.SignInAs(map[string]any{"sub": "u3", "preferred_username": "olive", "roles": []any{"rebook.operator"}})
	c := webclient.New(t, srv.URL)
	resp, _ = follow(t, c, srv.URL+"/signin?next=//evil.example/x")
	assert.Equal(t, srv.URL+"/requests", resp.Request.URL.String(), "an off-site next is replaced by Rebook's home")
}

func TestCodecTakesTheUIsForwardedTokenOfAnOperator(t *testing.T) {
	idp := idpfake.New("rebook", "s3cret")
	t.Cleanup(idp.Close)
	srv, _ := site(t, signin.Options{Issuer: idp.URL, ClientID: "rebook", ClientSecret: "s3cret", CodecAudience: "temporal-ui"})
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/codec/decode", strings.NewReader(`{"payloads":[]}`))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	operator := map[string]any{"sub": "o1", "preferred_username": "olive", "roles": []any{"rebook.operator"}}
	assert.Equal(t, http.StatusUnauthorized, post(""), "no credentials")
	assert.Equal(t, http.StatusUnauthorized, post("not-a-token"))
	assert.Equal(t, http.StatusUnauthorized, post(idp.Token("someone-else", operator, time.Hour)), "a token for another audience")
	assert.Equal(t, http.StatusUnauthorized, post(idp.Token("temporal-ui", operator, -time.Minute)), "an expired token")
	assert.Equal(t, http.StatusForbidden, post(idp.Token("temporal-ui", map[string]any{"sub": "s1", "roles": []any{"rebook.staff"}}, time.Hour)), "a staff member's token")
	assert.Equal(t, http.StatusOK, post(idp.Token("temporal-ui", operator, time.Hour)), "an operator's token")
}

func TestLocalUsersAndSessions(t *testing.T) {
	now := time.Now()
	srv, _ := site(t, signin.Options{Now: func() time.Time { return now },
		LocalUsers: []signin.LocalUser{{Name: "dev", Roles: []string{signin.Operator, signin.Admin}}, {Name: "sam", Roles: []string{signin.Staff}, Teams: []string{"Cardiology"}}}})
	c := webclient.New(t, srv.URL).SignIn("dev")
	_, body := c.Get("/page")
	assert.Equal(t, "hello dev operator,admin ", body)
	resp, _ := c.Post("/codec/decode", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "an operator's session decodes")

	resp, _ = c.Form("/page", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a POST with the session's CSRF token passes")

	// A forged local sign-in (no form token) is refused.
	resp, _ = webclient.New(t, srv.URL).Post("/signin/local", url.Values{"user": {"dev"}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Sessions end after a shift.
	now = now.Add(signin.SessionTTL + time.Minute)
	resp, _ = c.Get("/page")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "an expired session signs in again")

	// Sign-out ends the session.
	now = time.Now()
	c = webclient.New(t, srv.URL).SignIn("sam")
	resp, _ = c.Form("/signout", nil)
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = c.Get("/page")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

// forwarded is a transport that adds what a reverse proxy adds.
type forwarded struct{ from string }

func (f forwarded) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.from)
	return http.DefaultTransport.RoundTrip(r)
}

// Finding 1: local users need the front door on loopback and the
// connection from this machine, not through a proxy; a local session
// taken elsewhere does not work.
func TestSecurityLocalUsersOnlyFromThisMachine(t *testing.T) {
	users := []signin.LocalUser{{Name: "dev", Roles: []string{signin.Admin, signin.Operator}}}
	for _, c := range []struct{ public, listen string }{
		{"https://rebook.trust.nhs.uk", ""},
		{"http://localhost:8080", "0.0.0.0:8080"},
		{"http://127.0.0.1:8080", ":8080"},
		{"http://127.0.0.1:8080", "10.0.0.4:8080"},
	} {
		_, err := signin.New(context.Background(), signin.Options{PublicURL: c.public, ListenAddr: c.listen, Key: make([]byte, 32), LocalUsers: users})
		assert.ErrorContains(t, err, "only allowed when REBOOK_HTTP_ADDR listens on this machine only", "%+v", c)
	}
	for _, listen := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080"} {
		_, err := signin.New(context.Background(), signin.Options{PublicURL: "http://localhost:8080", ListenAddr: listen, Key: make([]byte, 32), LocalUsers: users})
		assert.NoError(t, err, listen)
	}

	srv, auth := site(t, signin.Options{LocalUsers: users})
	// Through a proxy on this machine: no local buttons, and a post with
	// a good form token is refused.
	proxied := webclient.New(t, srv.URL)
	proxied.HTTP.Transport = forwarded{"203.0.113.9"}
	_, page := proxied.Get("/signin")
	assert.NotContains(t, page, "Sign in as dev")
	assert.Contains(t, page, "only on the machine Rebook runs on")
	proxied.HTTP.Transport = nil
	_, page = proxied.Get("/signin")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	require.NotNil(t, m, "from this machine the page has the form")
	proxied.HTTP.Transport = forwarded{"203.0.113.9"}
	resp, _ := proxied.Post("/signin/local", url.Values{"csrf": {m[1]}, "user": {"dev"}, "next": {"/page"}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	// From another address (the handler sees the connection's).
	mux := http.NewServeMux()
	auth.Register(mux)
	req := httptest.NewRequest(http.MethodGet, "/signin", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	assert.NotContains(t, rec.Body.String(), "Sign in as dev")

	// A local session copied and used through the proxy is no session.
	local := webclient.New(t, srv.URL).SignIn("dev")
	resp, _ = local.Get("/page")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	local.HTTP.Transport = forwarded{"203.0.113.9"}
	resp, _ = local.Get("/page")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

func TestParseLocalUsers(t *testing.T) {
	users, err := signin.ParseLocalUsers("dev:operator,admin:; sam:staff:Cardiology outpatients, Dermatology")
	require.NoError(t, err)
	assert.Equal(t, []signin.LocalUser{
		{Name: "dev", Roles: []string{"operator", "admin"}},
		{Name: "sam", Roles: []string{"staff"}, Teams: []string{"Cardiology outpatients", "Dermatology"}},
	}, users)
	for _, bad := range []string{"dev", "dev:root:", "sam:staff:", ":staff:x"} {
		_, err := signin.ParseLocalUsers(bad)
		assert.Error(t, err, bad)
	}
}

func TestWhoMaySeeWhat(t *testing.T) {
	staff := &signin.User{Roles: []string{signin.Staff}, Teams: []string{"Cardiology"}}
	assert.True(t, staff.MaySee("cardiology"))
	assert.False(t, staff.MaySee("Dermatology"))
	assert.False(t, staff.MaySee(""), "an unrouted request is for operators")
	assert.True(t, (&signin.User{Roles: []string{signin.Operator}}).MaySee("Dermatology"))
	assert.False(t, (&signin.User{Teams: []string{"Cardiology"}}).MaySee("Cardiology"), "teams without the staff role")
}

// copyOf is a second browser holding a copy of c's cookies, as someone
// who copied the session cookie would.
func copyOf(t *testing.T, c *webclient.Client) *webclient.Client {
	other := webclient.New(t, c.Base)
	u, _ := url.Parse(c.Base)
	other.HTTP.Jar.SetCookies(u, c.HTTP.Jar.Cookies(u))
	return other
}

// Finding 6: sessions end when Rebook says. A cookie copied before
// sign-out is dead after it; an unused session ends at the idle timeout;
// roles are read again from the identity provider, so a role removed
// there is gone within RolesFor, and a disabled account's session ends;
// "sign out everyone" ends every session.
func TestSecuritySessionsEndWhenRebookSays(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	idp := idpfake.New("rebook", "s3cret")
	t.Cleanup(idp.Close)
	srv, auth := site(t, signin.Options{Issuer: idp.URL, ClientID: "rebook", ClientSecret: "s3cret", Now: clock,
		LocalUsers: []signin.LocalUser{{Name: "dev", Roles: []string{signin.Admin}}}})

	c := webclient.New(t, srv.URL).SignIn("dev")
	stolen := copyOf(t, c)
	resp, _ := stolen.Get("/page")
	require.Equal(t, http.StatusOK, resp.StatusCode, "the copy works while the session does")
	resp, _ = c.Form("/signout", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = stolen.Get("/page")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "a cookie copied before sign-out is dead after it")

	c = webclient.New(t, srv.URL).SignIn("dev")
	now = now.Add(signin.IdleTimeout - time.Minute)
	resp, _ = c.Get("/page")
	require.Equal(t, http.StatusOK, resp.StatusCode, "used within the idle timeout")
	now = now.Add(signin.IdleTimeout - time.Minute)
	resp, _ = c.Get("/page")
	require.Equal(t, http.StatusOK, resp.StatusCode, "each use starts the idle timeout again")
	now = now.Add(signin.IdleTimeout + time.Second)
	resp, _ = c.Get("/page")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "unused for the idle timeout: ended")

	// Roles from the identity provider are read again. (The provider's
	// tokens live an hour of real time.)
	now = time.Now()
	sam := map[string]any{"sub": "u1", "preferred_username": "sam@trust.nhs.uk", "roles": []any{"rebook.staff", "rebook.operator"}, "groups": []any{"Cardiology"}}
	idp.SignInAs(sam)
	web := webclient.New(t, srv.URL)
	_, body := follow(t, web, srv.URL+"/signin?idp=1&next=/page")
	require.Equal(t, "hello sam@trust.nhs.uk staff,operator Cardiology", body)
	idp.Change("u1", map[string]any{"sub": "u1", "preferred_username": "sam@trust.nhs.uk", "roles": []any{"rebook.staff"}, "groups": []any{"Dermatology"}})
	now = now.Add(signin.RolesFor - time.Minute)
	_, body = web.Get("/page")
	assert.Equal(t, "hello sam@trust.nhs.uk staff,operator Cardiology", body, "within RolesFor the roles read at sign-in stand")
	now = now.Add(2 * time.Minute)
	_, body = web.Get("/page")
	assert.Equal(t, "hello sam@trust.nhs.uk staff Dermatology", body, "past RolesFor the provider's current roles and teams apply")
	resp, _ = web.Post("/codec/decode", nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the operator role is gone")
	idp.Change("u1", nil)
	now = now.Add(signin.RolesFor + time.Minute)
	resp, _ = web.Get("/page")
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "an account the provider no longer refreshes is signed out")

	// Sign out everyone.
	now = time.Now()
	a := webclient.New(t, srv.URL).SignIn("dev")
	idp.SignInAs(sam)
	b := webclient.New(t, srv.URL)
	resp, _ = follow(t, b, srv.URL+"/signin?idp=1&next=/page")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	n, err := auth.EndAllSessions(context.Background())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, int64(2))
	for _, who := range []*webclient.Client{a, b} {
		resp, _ = who.Get("/page")
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	}
}

// Finding 15: who acted is recorded by the identity provider's stable
// subject as well as the display name: sub, or Entra ID's oid when the
// token carries one; a local user's is marked local.
func TestSecurityStableSubject(t *testing.T) {
	idp := idpfake.New("rebook", "s3cret")
	t.Cleanup(idp.Close)
	srv, _ := site(t, signin.Options{Issuer: idp.URL, ClientID: "rebook", ClientSecret: "s3cret", CodecAudience: "temporal-ui"})
	get := func(token string) string {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return b.String()
	}
	op := []any{"rebook.operator"}
	assert.Equal(t, "s-123", get(idp.Token("temporal-ui", map[string]any{"sub": "s-123", "preferred_username": "olive@trust", "roles": op}, time.Hour)))
	assert.Equal(t, "oid-9", get(idp.Token("temporal-ui", map[string]any{"sub": "pairwise-x", "oid": "oid-9", "preferred_username": "olive@trust", "roles": op}, time.Hour)))

	local, _ := site(t, signin.Options{LocalUsers: []signin.LocalUser{{Name: "dev", Roles: []string{signin.Operator}}}})
	c := webclient.New(t, local.URL).SignIn("dev")
	_, body := c.Get("/whoami")
	assert.Equal(t, "local:dev", body)
}

// counted is a session store that counts its reads.
type counted struct {
	mu    sync.Mutex
	m     map[string][]byte
	seen  map[string]time.Time
	reads int
}

func (c *counted) PutSession(_ context.Context, id string, sealed []byte, seen, _ time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[id], c.seen[id] = sealed, seen
	return nil
}

func (c *counted) GetSession(_ context.Context, id string) ([]byte, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.m[id], c.seen[id], nil
}

func (c *counted) TouchSession(context.Context, string, time.Time) error { return nil }

func (c *counted) DeleteSession(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
	return nil
}

func (c *counted) DeleteAllSessions(context.Context) (int64, error) { return 0, nil }

// The rate limiter, the page guard and the page itself each ask who is
// signed in; behind OncePerRequest the store is read once a request.
func TestSessionIsReadOncePerRequest(t *testing.T) {
	store := &counted{m: map[string][]byte{}, seen: map[string]time.Time{}}
	srv := httptest.NewUnstartedServer(nil)
	auth, err := signin.New(context.Background(), signin.Options{PublicURL: "http://" + srv.Listener.Addr().String(), Key: bytes.Repeat([]byte{7}, 32),
		Sessions: store, LocalUsers: []signin.LocalUser{{Name: "dev", Roles: []string{signin.Operator}}}})
	require.NoError(t, err)
	m := http.NewServeMux()
	auth.Register(m)
	m.Handle("/page", auth.Page(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strconv.FormatBool(auth.SignedIn(r))))
	})))
	srv.Config.Handler = auth.OncePerRequest(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = auth.SignedIn(r) // as the front door's rate limiter asks
		m.ServeHTTP(w, r)
	}))
	srv.Start()
	t.Cleanup(srv.Close)
	c := webclient.New(t, srv.URL).SignIn("dev")
	store.mu.Lock()
	store.reads = 0
	store.mu.Unlock()
	_, body := c.Get("/page")
	require.Equal(t, "true", body)
	store.mu.Lock()
	defer store.mu.Unlock()
	assert.Equal(t, 1, store.reads, "three questions, one read")
}
