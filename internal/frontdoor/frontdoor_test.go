package frontdoor_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/dev/webclient"
	"github.com/rebookhq/rebook/internal/feed"
	"github.com/rebookhq/rebook/internal/frontdoor"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// operatorDoor is a front door with a local operator, and a client signed
// in as that operator.
func operatorDoor(t *testing.T) (*httptest.Server, *webclient.Client) {
	key := bytes.Repeat([]byte{9}, 32)
	srv := httptest.NewUnstartedServer(nil)
	auth, err := signin.New(context.Background(), signin.Options{PublicURL: "http://" + srv.Listener.Addr().String(), Key: key,
		LocalUsers: []signin.LocalUser{{Name: "olive", Roles: []string{signin.Operator}}}})
	require.NoError(t, err)
	h, err := frontdoor.New(frontdoor.Options{EncryptionKey: key, Auth: auth})
	require.NoError(t, err)
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, webclient.New(t, srv.URL).SignIn("olive")
}

// Case 11: a body past the limit is refused with 413 before it is read
// into memory, whether it says its length or is sent in chunks.
func TestHazardFrontDoorRefusesOversizeBodies(t *testing.T) {
	srv, web := operatorDoor(t)

	big := bytes.Repeat([]byte("x"), 5<<20)
	resp, err := web.HTTP.Post(srv.URL+"/codec/decode", "application/json", bytes.NewReader(big))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "declared length")

	// io.MultiReader hides the length: the body arrives chunked.
	resp, err = web.HTTP.Post(srv.URL+"/codec/decode", "application/json", io.MultiReader(bytes.NewReader(big)))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "chunked")

	// The codec's own limit is higher than the rest: a 2 MiB page of
	// payloads reaches it (and is refused as JSON, not as too large).
	resp, err = web.HTTP.Post(srv.URL+"/codec/decode", "application/json", bytes.NewReader(make([]byte, 2<<20)))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.NotEqual(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "a codec body under its 4 MiB limit")

	resp, err = web.HTTP.Post(srv.URL+"/codec/decode", "application/json", strings.NewReader(`{"payloads":[]}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a small body is served")

	resp, err = http.Post(srv.URL+"/requests/RB-1", "text/plain", bytes.NewReader(make([]byte, 2<<20)))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "every path has a limit")
}

// Case 11: every phase of a connection has a deadline.
func TestHazardFrontDoorServerHasDeadlines(t *testing.T) {
	s := frontdoor.Server(http.NotFoundHandler())
	assert.Positive(t, s.ReadHeaderTimeout)
	assert.Positive(t, s.ReadTimeout)
	assert.Positive(t, s.WriteTimeout)
	assert.Positive(t, s.IdleTimeout)
}

// Case 12: one address flooding the unauthenticated endpoints is slowed to
// 429 with Retry-After; Slack's signed interactions and the codec are not.
func TestHazardFrontDoorLimitsEachAddress(t *testing.T) {
	srv, web := operatorDoor(t)
	codes := map[int]int{}
	for range 100 {
		resp, err := http.Get(srv.URL + "/oauth/start")
		require.NoError(t, err)
		_ = resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			assert.NotEmpty(t, resp.Header.Get("Retry-After"))
		}
	}
	assert.Positive(t, codes[http.StatusTooManyRequests], "a flood is refused")
	assert.LessOrEqual(t, 100-codes[http.StatusTooManyRequests], 25, "at most the burst and what a few seconds refill")
	for range 30 {
		resp, err := web.HTTP.Post(srv.URL+"/codec/decode", "application/json", strings.NewReader(`{"payloads":[]}`))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "the Web UI's codec calls are not limited")
	}
	for range 30 {
		resp, _ := web.Get("/signin")
		require.Equal(t, http.StatusOK, resp.StatusCode, "a signed-in person behind the same address is not limited")
	}
}

// Without a session every dashboard, report and request page sends a
// browser to sign in and answers anything else 401; the codec answers
// 401. Sign-in's own pages and the page assets stay open.
func TestEveryHumanPageNeedsSignIn(t *testing.T) {
	srv, _ := operatorDoor(t)
	anon := webclient.New(t, srv.URL)
	for _, path := range []string{"/requests", "/requests?team=Cardiology", "/requests/RB-1", "/reports", "/reports?by=team", "/reports.csv", "/reports/chart.svg", "/admin"} {
		resp, _ := anon.Get(path)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, path)
		assert.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/signin?next="), path)
		raw, err := anon.HTTP.Get(srv.URL + path)
		require.NoError(t, err)
		_ = raw.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, raw.StatusCode, path)
	}
	// A second door: one address may make only so many unauthenticated
	// requests (TestHazardFrontDoorLimitsEachAddress).
	srv, _ = operatorDoor(t)
	anon = webclient.New(t, srv.URL)
	for _, path := range []string{"/requests/RB-1/action", "/requests/RB-1/patient", "/admin/grant-link", "/codec/decode", "/codec/encode"} {
		resp, _ := anon.Post(path, nil)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}
	for _, path := range []string{"/signin", "/static/rebook.css", "/static/rebook.js"} {
		resp, _ := anon.Get(path)
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}

// Issue 23, finding 7: every answer, the pages with patient details
// included, carries the browser protections: a strict Content-Security-
// Policy with no inline script and no framing, nosniff and no Referer;
// HSTS when the public URL is https.
func TestSecuritySecurityHeadersOnEveryAnswer(t *testing.T) {
	srv, web := operatorDoor(t)
	for _, path := range []string{"/signin", "/static/rebook.css", "/codec/decode", "/no-such-page"} {
		resp, _ := web.Get(path)
		csp := resp.Header.Get("Content-Security-Policy")
		script := ""
		for d := range strings.SplitSeq(csp, ";") {
			if d = strings.TrimSpace(d); strings.HasPrefix(d, "script-src ") {
				script = d
			}
		}
		assert.Equal(t, "script-src 'self'", script, "%s: scripts from the front door only, none inline", path)
		assert.Contains(t, csp, "frame-ancestors 'none'", path)
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
		assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"), path)
		assert.Empty(t, resp.Header.Get("Strict-Transport-Security"), "not over plain http")
	}
	resp, err := http.Get(srv.URL + "/signin")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.NotEmpty(t, resp.Header.Get("Content-Security-Policy"), "before sign-in too")

	key := bytes.Repeat([]byte{9}, 32)
	auth, err := signin.New(context.Background(), signin.Options{PublicURL: "https://rebook.trust.nhs.uk", Key: key})
	require.NoError(t, err)
	h, err := frontdoor.New(frontdoor.Options{Auth: auth, HSTS: true})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/signin", nil))
	assert.Contains(t, rec.Header().Get("Strict-Transport-Security"), "max-age=")
}

// Issue 23, findings 11 and 15: every decode through the codec leaves an
// audit entry (who, how many payloads, the namespace, and the workflow
// the Web UI's page names), and the codec's CORS answers a browser's
// preflight for the forwarded Authorization header.
func TestSecurityEveryDecodeIsAudited(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	st, err := store.Open(context.Background(), testdb.URL(t), key)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	srv := httptest.NewUnstartedServer(nil)
	auth, err := signin.New(context.Background(), signin.Options{PublicURL: "http://" + srv.Listener.Addr().String(), Key: key,
		LocalUsers: []signin.LocalUser{{Name: "olive", Roles: []string{signin.Operator}}}})
	require.NoError(t, err)
	h, err := frontdoor.New(frontdoor.Options{Store: st, EncryptionKey: key, Auth: auth, CodecOrigin: "http://ui.test"})
	require.NoError(t, err)
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	web := webclient.New(t, srv.URL).SignIn("olive")

	post := func(path, body, referer string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		resp, err := web.HTTP.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, sealed := post("/codec/encode", `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IjEyMyI="},{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IjQ1NiI="}]}`, "")
	require.Equal(t, http.StatusOK, status, sealed)
	trail, err := st.AuditTrail(context.Background(), "codec")
	require.NoError(t, err)
	assert.Empty(t, trail, "sealing is not a disclosure")

	wid := workflows.RequestWorkflowID("msg-1")
	status, _ = post("/codec/decode", sealed, "http://ui.test/namespaces/default/workflows/"+wid+"/run-1/history")
	require.Equal(t, http.StatusOK, status)
	trail, err = st.AuditTrail(context.Background(), wid)
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, "olive", trail[0].Actor)
	assert.Equal(t, frontdoor.ActionCodecDecode, trail[0].Action)
	assert.Equal(t, "2", trail[0].Detail["payloads"])
	assert.Equal(t, "default", trail[0].Detail["namespace"])

	status, _ = post("/codec/decode", sealed, "")
	require.Equal(t, http.StatusOK, status)
	trail, err = st.AuditTrail(context.Background(), "codec")
	require.NoError(t, err)
	assert.Len(t, trail, 1, "a decode from no page is audited too")

	req, err := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://ui.test")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Contains(t, strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization", "the Web UI may forward its token")
}

// rawStatus sends head, then part of a body it never finishes, over its own
// connection to srv, and returns the status line of the answer. The
// deadline is a safety net for a server that waits for the rest.
func rawStatus(t *testing.T, srv *httptest.Server, head string) string {
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = io.WriteString(conn, head+"\r\n"+strings.Repeat("x", 1000))
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err, "an answer before the body is finished")
	return strings.TrimSpace(line)
}

// Finding 4: /codec and /feed say who may call from the headers alone and
// refuse an anonymous upload without reading it; the front door's
// listener serves a bounded number of connections at once.
func TestSecurityRefusesBeforeReading(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	srv := httptest.NewUnstartedServer(nil)
	auth, err := signin.New(context.Background(), signin.Options{PublicURL: "http://" + srv.Listener.Addr().String(), Key: key})
	require.NoError(t, err)
	f := &feed.Feed{Log: slog.New(slog.DiscardHandler)}
	h, err := frontdoor.New(frontdoor.Options{EncryptionKey: key, Auth: auth, Feed: f.HTTP("a-feed-token-of-some-length")})
	require.NoError(t, err)
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)

	for _, path := range []string{"/codec/decode", "/feed/fhir/Appointment"} {
		status := rawStatus(t, srv, "POST "+path+" HTTP/1.1\r\nHost: rebook\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n")
		assert.Contains(t, status, " 401 ", "%s: refused unread, before the body arrived", path)
		status = rawStatus(t, srv, "POST "+path+" HTTP/1.1\r\nHost: rebook\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3e8")
		assert.Contains(t, status, " 401 ", "%s (chunked): refused unread", path)
	}

	// The connection cap: with one allowed, a second connection is not
	// answered while the first is held, and is once it is let go.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	capped := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = capped.Serve(frontdoor.LimitConns(l, 1)) }()
	t.Cleanup(func() { _ = capped.Close() })
	get := "GET / HTTP/1.1\r\nHost: rebook\r\n\r\n"
	first, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	_, err = io.WriteString(first, get)
	require.NoError(t, err)
	_ = first.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(first).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "200", "the first connection is served and kept alive")
	second, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer func() { _ = second.Close() }()
	_, err = io.WriteString(second, get)
	require.NoError(t, err)
	br := bufio.NewReader(second)
	_ = second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = br.ReadString('\n')
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "over the cap: not served while the first is held")
	_ = first.Close()
	_ = second.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err = br.ReadString('\n')
	require.NoError(t, err)
	assert.Contains(t, line, "200", "served once the first is let go")
}
