package grantflow_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/clinician"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/grantflow"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/store"
)

type env struct {
	dbURL   string
	st      *store.Store
	sim     *pkbsim.Server
	rebook  string
	granted []string
}

func setup(t *testing.T) *env { return setupWith(t, pkbsim.Config{}) }

// setupWith runs the simulator with simCfg, its client and redirect filled in.
func setupWith(t *testing.T, simCfg pkbsim.Config) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{dbURL: testdb.URL(t)}
	var err error
	e.st, err = store.Open(ctx, e.dbURL, bytes.Repeat([]byte{9}, 32))
	require.NoError(t, err)
	t.Cleanup(e.st.Close)
	mux := http.NewServeMux()
	rebook := httptest.NewServer(mux)
	t.Cleanup(rebook.Close)
	e.rebook = rebook.URL
	simCfg.ClientID, simCfg.ClientSecret, simCfg.RedirectURL = "c", "s", rebook.URL+"/oauth/callback"
	e.sim = pkbsim.New(simCfg, pkbsim.Dataset{})
	pkbSrv := httptest.NewServer(e.sim)
	t.Cleanup(pkbSrv.Close)
	h := &grantflow.Handler{Store: e.st, OAuth: pkb.OAuth(pkbSrv.URL, "c", "s", rebook.URL+"/oauth/callback"), Log: slog.New(slog.DiscardHandler),
		Granted: func(_ context.Context, id string) error { e.granted = append(e.granted, id); return nil }}
	h.Register(mux)
	return e
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b)
}

// consent walks /oauth/start to PKB's consent page and presses a button,
// returning the callback URL PKB sends the browser to.
func (e *env) consent(t *testing.T, decision string) string {
	link, err := e.st.NewGrantLink(context.Background(), "c", "starter grant-link", grantflow.LinkTTL)
	require.NoError(t, err)
	resp, _, err := clinician.ConfirmGrant(noRedirect, e.rebook+"/oauth/start?link="+link)
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	auth, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	q := auth.Query()
	require.NotEmpty(t, q.Get("state"))
	assert.Equal(t, "CLINICIAN", q.Get("scope"))
	form := url.Values{"client_id": {q.Get("client_id")}, "redirect_uri": {q.Get("redirect_uri")}, "response_type": {"code"}, "scope": {q.Get("scope")}, "state": {q.Get("state")}, "decision": {decision}}
	resp, err = noRedirect.PostForm(auth.Scheme+"://"+auth.Host+"/apiAuthorize.action", form)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	return resp.Header.Get("Location")
}

// grant walks a fresh link through PKB's consent to an approved callback
// and returns the grant's audit entry.
func (e *env) grant(t *testing.T) store.AuditEntry {
	t.Helper()
	resp, _ := get(t, http.DefaultClient, e.consent(t, "approve"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	trail, err := e.st.AuditTrail(context.Background(), "pkb-grant/c")
	require.NoError(t, err)
	require.NotEmpty(t, trail)
	return trail[len(trail)-1]
}

func TestGrantAndRefusals(t *testing.T) {
	e := setup(t)
	ctx := context.Background()

	cb := e.consent(t, "approve")
	resp, body := get(t, http.DefaultClient, cb)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "Access granted")
	assert.Contains(t, body, "CLINICIAN")
	g, err := e.st.Grant(ctx, "c")
	require.NoError(t, err)
	assert.Equal(t, store.GrantHealthy, g.Status)
	assert.NotEmpty(t, g.AccessToken)
	assert.NotEmpty(t, g.RefreshToken)
	assert.Equal(t, []string{"c"}, e.granted)
	assert.NotContains(t, body, g.AccessToken)

	// Replayed: refused, grant unchanged.
	resp, body = get(t, http.DefaultClient, cb)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, "already used")
	again, err := e.st.Grant(ctx, "c")
	require.NoError(t, err)
	assert.Equal(t, g.AccessToken, again.AccessToken)

	// Forged state, even with a real-looking code.
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", "forged")
	u.RawQuery = q.Encode()
	resp, _ = get(t, http.DefaultClient, u.String())
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, _ = get(t, http.DefaultClient, e.rebook+"/oauth/callback?code=x")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	// Denied: refused with PKB's answer, grant unchanged.
	denied := e.consent(t, "deny")
	resp, body = get(t, http.DefaultClient, denied)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, "access_denied")
	again, _ = e.st.Grant(ctx, "c")
	assert.Equal(t, g.AccessToken, again.AccessToken)
	assert.Len(t, e.granted, 1)

	// Expired state.
	old, err := e.st.NewOAuthState(ctx, "c", "test", -time.Second)
	require.NoError(t, err)
	resp, body = get(t, http.DefaultClient, e.rebook+"/oauth/callback?code=x&state="+url.QueryEscape(old))
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.True(t, strings.Contains(body, "expired"))
	assert.Len(t, e.granted, 1)
}

// Case 12: the grant starts only from a live single-use link; anyone else
// gets 401 and leaves no state row behind; the grant's audit row says how
// it was started.
func TestHazardGrantStartsOnlyFromAnAdminsLink(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for range 50 {
		resp, _ := get(t, noRedirect, e.rebook+"/oauth/start")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	resp, _ := get(t, noRedirect, e.rebook+"/oauth/start?link=made-up")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	conn, err := pgx.Connect(ctx, e.dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	var states int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM oauth_states`).Scan(&states))
	assert.Zero(t, states, "anonymous requests leave nothing behind")

	link, err := e.st.NewGrantLink(ctx, "c", "starter grant-link", grantflow.LinkTTL)
	require.NoError(t, err)
	resp, _, err = clinician.ConfirmGrant(noRedirect, e.rebook+"/oauth/start?link="+link)
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	resp, _ = get(t, noRedirect, e.rebook+"/oauth/start?link="+link)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a link works once")
	expired, err := e.st.NewGrantLink(ctx, "c", "starter grant-link", -time.Second)
	require.NoError(t, err)
	resp, _ = get(t, noRedirect, e.rebook+"/oauth/start?link="+expired)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "an expired link")

	granted := e.grant(t)
	assert.Equal(t, "starter grant-link", granted.Detail["started_by"])
	assert.Equal(t, grantflow.NotNamed, granted.Detail["pkb_account"], "PKB named nobody, and the audit says so")
}

// Finding 12: a link scanner's GET spends nothing; only the confirm page's
// own POST does; the audit names the PKB account that granted when PKB's
// token answer names it.
func TestSecurityGrantLinkAsksBeforeItActs(t *testing.T) {
	e := setupWith(t, pkbsim.Config{GrantedBy: "clinician-4711"})
	ctx := context.Background()
	link, err := e.st.NewGrantLink(ctx, "c", "admin sam", grantflow.LinkTTL)
	require.NoError(t, err)
	start := e.rebook + "/oauth/start?link=" + url.QueryEscape(link)

	for range 3 { // a mail gateway, a chat preview, a person
		resp, body := get(t, noRedirect, start)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, body, "Continue to PKB")
		assert.Contains(t, body, `method="post"`)
		assert.Contains(t, body, "admin sam")
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	var states, links int
	require.NoError(t, conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM oauth_states), (SELECT count(*) FROM grant_links)`).Scan(&states, &links))
	assert.Zero(t, states, "opening the link started nothing")
	assert.Equal(t, 1, links, "opening the link spent nothing")

	// A post from elsewhere, without the page's token or with a wrong one.
	resp, err := noRedirect.PostForm(e.rebook+"/oauth/start", url.Values{"link": {link}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodPost, e.rebook+"/oauth/start", strings.NewReader(url.Values{"link": {link}, "csrf": {"guess"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "rebook_grant_csrf", Value: "other"})
	resp, err = noRedirect.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM grant_links`).Scan(&links))
	assert.Equal(t, 1, links, "refused posts spent nothing")

	// The clinician presses Continue: now the link is spent, and PKB asks.
	resp, _, err = clinician.ConfirmGrant(noRedirect, start)
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Location"), "/apiAuthorize.action")
	resp, _ = get(t, noRedirect, start)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "spent")

	assert.Equal(t, "clinician-4711", e.grant(t).Detail["pkb_account"])
}
