package e2e

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dashboard"
	"github.com/rebookhq/rebook/internal/dev/idpfake"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/frontdoor"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// chromium finds Debian's Chromium (.ci/run installs it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the browser test needs Chromium: apt-get install chromium (.ci/run does this)")
	return ""
}

// browser starts headless Chromium for the test; it stops with the test.
func browser(t *testing.T, exe string) context.Context {
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))...)
	t.Cleanup(cancel)
	bctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	return bctx
}

// otherTeam is the demo team the staff member is not in.
const otherTeam = "Central appointments"

// TestDashboardInTheBrowser drives the dashboard in headless Chromium
// through sign-in, the open requests, a Claim from the web, a request's
// page and the report chart, over the real stack, and saves a
// screenshot of each (as test artifacts; also into REBOOK_SCREENSHOTS
// when set, which is how the README's are made).
func TestDashboardInTheBrowser(t *testing.T) {
	exe := chromium(t)
	demo, err := routing.ReadCSV(strings.NewReader(routing.DemoCSV))
	require.NoError(t, err)
	var teams []string
	for _, r := range demo {
		if r.Team != otherTeam && !slices.Contains(teams, r.Team) {
			teams = append(teams, r.Team)
		}
	}
	s := start(t, 16, func(c *config.Config) {
		c.LocalUsers = []signin.LocalUser{{Name: "sam", Roles: []string{signin.Staff}, Teams: teams}, {Name: "ada", Roles: []string{signin.Admin}}}
	})
	ctx := context.Background()
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "every request routed to Slack", limit(3*time.Minute), func() bool { return len(s.cards()) >= 16 })
	rows, err := s.st.AllRequests(ctx)
	require.NoError(t, err)
	var mine, others []store.Request
	for _, r := range rows {
		if slices.Contains(teams, r.Team) {
			mine = append(mine, r)
		} else {
			others = append(others, r)
		}
	}
	require.NotEmpty(t, mine, "the demo routes some requests to the staff member's teams")
	require.NotEmpty(t, others, "and some elsewhere (triage, central appointments)")

	shots := []string{t.ArtifactDir()}
	if d := os.Getenv("REBOOK_SCREENSHOTS"); d != "" {
		require.NoError(t, os.MkdirAll(d, 0o755))
		shots = append(shots, d)
	}
	bctx := browser(t, exe)
	// The first call starts the browser: no timeout on it (a timeout there
	// would stop the browser); each step below has its own.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate("about:blank")))
	run := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		require.NoError(t, chromedp.Do(ctx, steps...))
	}
	get := func(a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, time.Minute)
		defer cancel()
		v, err := chromedp.Run(ctx, a)
		require.NoError(t, err)
		return v
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		for _, d := range shots {
			require.NoError(t, os.WriteFile(filepath.Join(d, name), png, 0o644))
		}
	}

	axe := accessibility(t, bctx)

	// Without a session the dashboard sends the browser to sign in.
	run(chromedp.Navigate(s.door+"/requests"), chromedp.WaitVisible(chromedp.CSS("#signin-sam")))
	assert.Contains(t, get(chromedp.Location()), "/signin?next=")
	axe("the sign-in page")
	shot("signin.png")

	// Signed in, the staff member sees their teams' open requests only.
	run(chromedp.Click(chromedp.CSS("#signin-sam")), chromedp.WaitVisible(chromedp.CSS("#rows table")))
	assert.True(t, strings.HasSuffix(get(chromedp.Location()), "/requests"))
	listText := get(chromedp.Text(chromedp.CSS("#rows")))
	axe("the requests")
	shot("dashboard.png")
	for _, r := range mine {
		assert.Contains(t, listText, r.Ref, "%s (%s) is the staff member's", r.Ref, r.Team)
	}
	for _, r := range others {
		assert.NotContains(t, listText, r.Ref, "%s (%s) is not the staff member's", r.Ref, r.Team)
	}

	// A request's page, and a Claim from the web, by keyboard alone.
	target := mine[0]
	run(chromedp.Click(chromedp.CSS(`a[href="/requests/`+target.Ref+`"]`)), chromedp.WaitVisible(chromedp.CSS("#claim")))
	axe("a request")
	tabTo(t, bctx, "#claim")
	run(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(".said")))
	assert.Equal(t, "You have claimed "+target.Ref+".", strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(get(chromedp.Text(chromedp.CSS(".said")))), "Information:")))
	axe("a request with a message")
	assert.Contains(t, get(chromedp.Text(chromedp.CSS("main"))), "Open its workflow in the Temporal Web UI")
	// The patient's details, read from PKB on request, with the view
	// written to the request's timeline.
	run(chromedp.Click(chromedp.CSS("#show-patient")), chromedp.WaitVisible(chromedp.CSS(".patient")))
	patient := get(chromedp.Text(chromedp.CSS(".patient")))
	assert.Regexp(t, `NHS number\s+\d{3} \d{3} \d{4}\b`, patient, "the NHS number as the NHS writes it")
	assert.Contains(t, get(chromedp.Text(chromedp.CSS("main"))), dashboard.ActionViewedPatient)
	axe("a request with the patient's details")
	shot("request.png")
	got, err := s.st.RequestByRef(ctx, target.Ref)
	require.NoError(t, err)
	assert.Equal(t, workflows.StateClaimed, got.State, "the workflow took the web's claim")
	assert.Equal(t, "sam", got.ClaimedBy)
	waitFor(t, "the Slack card shows the claim", limit(30*time.Second), func() bool {
		ms := s.cards()[target.Ref]
		return len(ms) > 0 && strings.Contains(cardText(ms[len(ms)-1]), "Claimed by sam")
	})

	// The report's chart, drawn by Rebook itself.
	today := time.Now().Format("2006-01-02")
	run(chromedp.Navigate(s.door+"/reports?by=specialty&every=day&from="+time.Now().AddDate(0, 0, -13).Format("2006-01-02")+"&to="+today),
		chromedp.WaitVisible(chromedp.CSS("#chart svg")))
	ctx2, cancel2 := context.WithTimeout(bctx, time.Minute)
	defer cancel2()
	paths, err := chromedp.Run(ctx2, chromedp.Evaluate[int](`document.querySelectorAll("#chart svg path").length`))
	require.NoError(t, err)
	assert.Greater(t, paths, 5, "the chart has lines drawn")
	assert.Contains(t, get(chromedp.Text(chromedp.CSS("table"))), mine[0].Specialty)
	axe("the reports")
	shot("report.png")
	// The report form by keyboard: "every week" chosen with the arrow
	// keys, submitted with Enter.
	tabTo(t, bctx, "#r-every")
	run(chromedp.KeyEvent(kb.ArrowDown))
	tabTo(t, bctx, "#show-report")
	run(chromedp.KeyEvent(kb.Enter))
	waitFor(t, "the report by week", limit(30*time.Second), func() bool { return strings.Contains(get(chromedp.Location()), "every=week") })
	run(chromedp.WaitVisible(chromedp.CSS("#chart svg")))

	// Done and Can't action by keyboard: Done is refused (PKB shows no
	// change yet) with the reason; a reason typed and Can't action closes.
	other := mine[1]
	run(chromedp.Navigate(s.door+"/requests/"+other.Ref), chromedp.WaitVisible(chromedp.CSS("#done")))
	tabTo(t, bctx, "#done")
	run(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(".problem")))
	axe("a request with a refusal")
	tabTo(t, bctx, "#reason")
	run(chromedp.KeyEvent("Patient moved to another trust"))
	tabTo(t, bctx, "#cant")
	run(chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(".said")))
	waitFor(t, "the keyboard's Can't action closed the request", limit(30*time.Second), func() bool {
		got, err := s.st.RequestByRef(ctx, other.Ref)
		return err == nil && got.State == workflows.StateClosedByStaff
	})

	// The admin page, as an admin.
	run(chromedp.Click(chromedp.CSS(".nhsuk-header__account-button")), chromedp.WaitVisible(chromedp.CSS("#signin-ada")),
		chromedp.Click(chromedp.CSS("#signin-ada")), chromedp.WaitVisible(chromedp.CSS("#rows")),
		chromedp.Navigate(s.door+"/admin"), chromedp.WaitVisible(chromedp.CSS("#sign-out-everyone")))
	axe("the admin page")
	shot("admin.png")

	// The grant link an admin makes, as the clinician opens it: a page
	// that asks before anything is spent.
	run(chromedp.Click(chromedp.CSS("#make-grant-link")), chromedp.WaitVisible(chromedp.CSS("#grant-link")))
	link := strings.TrimSpace(get(chromedp.Text(chromedp.CSS("#grant-link"))))
	require.Contains(t, link, "/oauth/start?link=")
	run(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#continue-to-pkb")))
	axe("the grant link's page")
}

//go:embed testdata/axe/axe.min.js
var axeSource string

// accessibility returns a check that runs axe-core (vendored from npm) on
// the page the browser shows and fails the test on any WCAG 2.2 A or AA
// violation, naming each rule and the elements it found. It first shows
// that it finds one on a page made to have one.
func accessibility(t *testing.T, bctx context.Context) func(page string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.body.innerHTML = '<img src="x.png"><input type="text">'; true`))
	require.NoError(t, err)
	require.NotEmpty(t, axeViolations(t, bctx), "axe-core finds the missing alt text and label of a page made without them")
	return func(page string) {
		t.Helper()
		assert.Empty(t, axeViolations(t, bctx), "axe-core on %s", page)
	}
}

func axeViolations(t *testing.T, bctx context.Context) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	// DevTools' evaluation is outside the page's Content-Security-Policy,
	// which forbids the page's own inline script.
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";true"))
	require.NoError(t, err)
	found, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag",
		values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]}}).then(r => JSON.stringify(r.violations.map(v =>
		v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).join(", "))))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	var violations []string
	require.NoError(t, json.Unmarshal([]byte(found), &violations))
	return violations
}

// tabTo presses Tab until the element sel ("#id") has the focus, as
// someone using the keyboard alone would; at most 60 presses.
func tabTo(t *testing.T, bctx context.Context, sel string) {
	t.Helper()
	id := strings.TrimPrefix(sel, "#")
	ctx, cancel := context.WithTimeout(bctx, time.Minute)
	defer cancel()
	for range 60 {
		at, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement ? document.activeElement.id : ""`))
		require.NoError(t, err)
		if at == id {
			return
		}
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)))
	}
	t.Fatalf("60 presses of Tab never reached %s", sel)
}

// cardText is everything a card shows: its text and its blocks.
func cardText(m slackfake.Message) string {
	b, _ := json.Marshal(m.Blocks)
	return m.Text + string(b)
}

// Issue 23, findings 3 and 7, in a real browser: a sign-in whose next is
// "/\t/evil.example" (which Chromium reads as "//evil.example") lands on
// Rebook's request list; and the page's Content-Security-Policy stops an
// injected inline script from running.
func TestSecurityInTheBrowser(t *testing.T) {
	exe := chromium(t)
	s := start(t, 1, func(c *config.Config) {
		c.LocalUsers = []signin.LocalUser{{Name: "sam", Roles: []string{signin.Staff}, Teams: []string{"Cardiology outpatients"}}}
	})
	bctx := browser(t, exe)
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate("about:blank")))
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(s.door+"/signin?next=%2F%09%2Fevil.example%2Fx"),
		chromedp.WaitVisible(chromedp.CSS("#signin-sam")), chromedp.Click(chromedp.CSS("#signin-sam")),
		chromedp.WaitVisible(chromedp.CSS("#rows"))))
	at, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	assert.Equal(t, s.door+"/requests", at, "sign-in stays on Rebook")

	ran, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const s = document.createElement("script");
		s.textContent = "window.__inlineRan = true";
		document.body.appendChild(s);
		return window.__inlineRan === true;
	})()`))
	require.NoError(t, err)
	assert.False(t, ran, "the Content-Security-Policy blocks inline script")
}

// Issue 23, finding 15, in a real browser: a page on the Temporal Web
// UI's origin calls the codec on Rebook's with the operator's forwarded
// access token in Authorization, as the UI does with
// TEMPORAL_CODEC_PASS_ACCESS_TOKEN; Chromium's preflight must pass for
// the decode to reach Rebook, and the decode is audited under the token's
// subject.
func TestSecurityCodecPreflightInTheBrowser(t *testing.T) {
	exe := chromium(t)
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	st, err := store.Open(ctx, testdb.URL(t), key)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	idp := idpfake.New("rebook", "s3cret")
	t.Cleanup(idp.Close)
	ui := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<!doctype html><title>Temporal Web UI</title><p>ui</p>"))
	}))
	t.Cleanup(ui.Close)
	door := httptest.NewUnstartedServer(nil)
	auth, err := signin.New(ctx, signin.Options{PublicURL: "http://" + door.Listener.Addr().String(), Issuer: idp.URL, ClientID: "rebook",
		ClientSecret: "s3cret", CodecAudience: "temporal-ui", Key: key})
	require.NoError(t, err)
	h, err := frontdoor.New(frontdoor.Options{Store: st, EncryptionKey: key, Auth: auth, CodecOrigin: ui.URL})
	require.NoError(t, err)
	door.Config.Handler = h
	door.Start()
	t.Cleanup(door.Close)
	token := idp.Token("temporal-ui", map[string]any{"sub": "op-1", "preferred_username": "olive@trust", "roles": []any{"rebook.operator"}}, time.Hour)

	bctx := browser(t, exe)
	bctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(ui.URL), chromedp.WaitVisible(chromedp.CSS("p"))))
	got, err := chromedp.Run(bctx, chromedp.Evaluate[string](`fetch(`+strconv.Quote(door.URL+"/codec/decode")+`, {
		method: "POST",
		headers: {"Authorization": "Bearer `+token+`", "Content-Type": "application/json", "X-Namespace": "default"},
		body: JSON.stringify({payloads: [{metadata: {encoding: btoa("json/plain")}, data: btoa('"hi"')}]}),
	}).then(r => r.status + " " + r.headers.get("Content-Type"), e => "refused: " + e)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, "200 application/json", got, "the preflight passed and the codec answered")
	trail, err := st.AuditTrail(ctx, "codec")
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, "olive@trust", trail[0].Actor)
	assert.Equal(t, "op-1", trail[0].Detail["subject"])

	// Another origin's page is not let through.
	other := httptest.NewServer(ui.Config.Handler)
	t.Cleanup(other.Close)
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(other.URL), chromedp.WaitVisible(chromedp.CSS("p"))))
	got, err = chromedp.Run(bctx, chromedp.Evaluate[string](`fetch(`+strconv.Quote(door.URL+"/codec/decode")+`, {
		method: "POST", headers: {"Authorization": "Bearer `+token+`", "Content-Type": "application/json"}, body: "{}",
	}).then(r => String(r.status), e => "refused")`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Equal(t, "refused", got, "the browser refuses the codec's answer to another origin")
}
