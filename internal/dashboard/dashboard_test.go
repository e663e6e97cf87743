package dashboard_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/internal/dashboard"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/dev/webclient"
	"github.com/rebookhq/rebook/internal/report"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// actions records staff actions, and refuses a second claim as the
// workflow's validator does.
type actions struct {
	mu   sync.Mutex
	got  []workflows.StaffAction
	wfID []string
}

func (a *actions) StaffAction(_ context.Context, id string, s workflows.StaffAction) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, prev := range a.got {
		if prev.Action == workflows.ActionClaim && s.Action == workflows.ActionClaim {
			return "", temporal.NewApplicationError("already claimed by "+prev.User, "")
		}
	}
	a.got, a.wfID = append(a.got, s), append(a.wfID, id)
	return "You have claimed it.", nil
}

type patients struct{ err error }

func (p patients) Patient(context.Context, store.Request) (dashboard.Patient, error) {
	return dashboard.Patient{Name: "Ada Lovelace", NHSNumber: "943 476 5919", Subject: "Cancel my appointment", Text: "I am away"}, p.err
}

type rig struct {
	st   *store.Store
	srv  *httptest.Server
	acts *actions
}

func newRig(t *testing.T, p dashboard.Patients) *rig {
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.URL(t), bytes.Repeat([]byte{5}, 32))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	srv := httptest.NewUnstartedServer(nil)
	auth, err := signin.New(ctx, signin.Options{PublicURL: "http://" + srv.Listener.Addr().String(), Key: bytes.Repeat([]byte{3}, 32),
		LocalUsers: []signin.LocalUser{
			{Name: "sam", Roles: []string{signin.Staff}, Teams: []string{"Cardiology"}},
			{Name: "nat", Roles: []string{signin.Staff}},
			{Name: "olive", Roles: []string{signin.Operator}},
			{Name: "ada", Roles: []string{signin.Admin}},
		}, Sessions: st})
	require.NoError(t, err)
	r := &rig{st: st, srv: srv, acts: &actions{}}
	m := http.NewServeMux()
	auth.Register(m)
	dashboard.Register(m, dashboard.Options{Store: st, Auth: auth, Requests: r.acts, Patients: p, TemporalUI: "http://ui.test", Namespace: "default",
		PKBClientID: "rebook-test", GrantLinkURL: func(l string) string { return "http://rebook.test/oauth/start?link=" + l }})
	srv.Config.Handler = m
	srv.Start()
	t.Cleanup(srv.Close)

	now := time.Now()
	due := now.Add(-time.Hour)
	for _, q := range []store.Request{
		{MessageID: "c1", Ref: "RB-CCCC-0001", Team: "Cardiology", Specialty: "Cardiology", RequestType: "cancel", State: workflows.StateRouted, ReceivedAt: now.Add(-3 * time.Hour)},
		{MessageID: "c2", Ref: "RB-CCCC-0002", Team: "Cardiology", Specialty: "Cardiology", RequestType: "change", State: workflows.StateRouted, ReceivedAt: now.Add(-30 * time.Minute)},
		{MessageID: "d1", Ref: "RB-DDDD-0001", Team: "Dermatology", Specialty: "Dermatology", RequestType: "change", State: workflows.StateRouted, ReceivedAt: now.Add(-2 * time.Hour)},
		{MessageID: "t1", Ref: "RB-TTTT-0001", Triage: true, Reason: "no appointment matched", State: workflows.StateTriaged, ReceivedAt: now.Add(-5 * time.Hour)},
	} {
		q.WorkflowID = workflows.RequestWorkflowID(q.MessageID)
		require.NoError(t, st.SaveRequest(ctx, q))
	}
	require.NoError(t, st.ScheduleCheck(ctx, "c1", now.Add(time.Hour), time.Hour, due))
	return r
}

func TestStaffSeeTheirTeamsRequestsOnly(t *testing.T) {
	r := newRig(t, patients{})
	sam := webclient.New(t, r.srv.URL).SignIn("sam")
	resp, page := sam.Get("/requests")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, "RB-CCCC-0001")
	assert.Contains(t, page, "RB-CCCC-0002")
	assert.NotContains(t, page, "RB-DDDD-0001", "another team's request")
	assert.NotContains(t, page, "RB-TTTT-0001", "triage is not a staff team's")
	assert.Contains(t, page, "overdue by 1 h", "age against SLA")

	resp, _ = sam.Get("/requests/RB-DDDD-0001")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "another team's request page")
	resp, _ = sam.Form("/requests/RB-DDDD-0001/action", url.Values{"action": {workflows.ActionClaim}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "another team's request cannot be claimed")
	resp, _ = sam.Form("/requests/RB-DDDD-0001/patient", nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "another team's patient")
	assert.Empty(t, r.acts.got)

	// Filters live in the URL, and the self-refresh asks for the rows
	// with the same filters.
	_, page = sam.Get("/requests?type=change")
	assert.Contains(t, page, "RB-CCCC-0002")
	assert.NotContains(t, page, "RB-CCCC-0001")
	assert.Contains(t, page, `data-refresh="/requests?part=rows&amp;type=change"`)
	_, rows := sam.Get("/requests?part=rows&age=1h")
	assert.Contains(t, rows, "RB-CCCC-0001")
	assert.NotContains(t, rows, "RB-CCCC-0002", "younger than an hour")
	assert.NotContains(t, rows, "<html", "only the rows")
	_, page = sam.Get("/requests?team=Dermatology")
	assert.NotContains(t, page, "RB-DDDD-0001", "a staff member's team filter cannot widen their view")

	olive := webclient.New(t, r.srv.URL).SignIn("olive")
	_, page = olive.Get("/requests")
	for _, ref := range []string{"RB-CCCC-0001", "RB-CCCC-0002", "RB-DDDD-0001", "RB-TTTT-0001"} {
		assert.Contains(t, page, ref, "an operator sees every team")
	}
	assert.Contains(t, page, "no appointment matched", "the triage reason")
}

func TestActionsFromTheWeb(t *testing.T) {
	r := newRig(t, patients{})
	sam := webclient.New(t, r.srv.URL).SignIn("sam")
	_, page := sam.Get("/requests/RB-CCCC-0001")
	assert.Contains(t, page, `href="http://ui.test/namespaces/default/workflows/`+workflows.RequestWorkflowID("c1")+`"`)

	resp, _ := sam.Post("/requests/RB-CCCC-0001/action", url.Values{"action": {workflows.ActionClaim}})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token, no action")
	assert.Empty(t, r.acts.got)

	resp, _ = sam.Form("/requests/RB-CCCC-0001/action", url.Values{"action": {workflows.ActionClaim}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, page = sam.Get(resp.Header.Get("Location"))
	assert.Contains(t, page, "You have claimed it.")
	require.Len(t, r.acts.got, 1)
	assert.Equal(t, workflows.StaffAction{Action: workflows.ActionClaim, User: "sam"}, r.acts.got[0], "the workflow update the Slack button sends, as the signed-in person")
	assert.Equal(t, workflows.RequestWorkflowID("c1"), r.acts.wfID[0])

	resp, _ = sam.Form("/requests/RB-CCCC-0001/action", url.Values{"action": {workflows.ActionClaim}})
	_, page = sam.Get(resp.Header.Get("Location"))
	assert.Contains(t, page, "Not done: already claimed by sam", "a refusal is shown to the person")

	resp, _ = sam.Form("/requests/RB-CCCC-0001/action", url.Values{"action": {workflows.ActionCantAction}, "reason": {"  "}})
	_, page = sam.Get(resp.Header.Get("Location"))
	assert.Contains(t, page, "Say why it can")
	assert.Len(t, r.acts.got, 1, "Can't action needs a typed reason")
	sam.Form("/requests/RB-CCCC-0001/action", url.Values{"action": {workflows.ActionCantAction}, "reason": {"patient has moved away"}})
	require.Len(t, r.acts.got, 2)
	assert.Equal(t, "patient has moved away", r.acts.got[1].Note)

	resp, _ = sam.Form("/requests/RB-CCCC-0001/action", url.Values{"action": {"delete"}})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestPatientDetailsOnlyOnRequestAndEachViewAudited(t *testing.T) {
	r := newRig(t, patients{})
	sam := webclient.New(t, r.srv.URL).SignIn("sam")
	_, list := sam.Get("/requests")
	_, page := sam.Get("/requests/RB-CCCC-0001")
	for _, p := range []string{list, page} {
		assert.NotContains(t, p, "943 476 5919")
		assert.NotContains(t, p, "Lovelace")
	}
	resp, page := sam.Form("/requests/RB-CCCC-0001/patient", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, "943 476 5919")
	assert.Contains(t, page, "Ada Lovelace")
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	trail, err := r.st.AuditTrail(context.Background(), workflows.RequestWorkflowID("c1"))
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, "sam", trail[0].Actor)
	assert.Equal(t, dashboard.ActionViewedPatient, trail[0].Action)
	_, page = sam.Get("/requests/RB-CCCC-0001")
	assert.Contains(t, page, dashboard.ActionViewedPatient, "the view is on the request's timeline")

	// PKB refuses: the page says so, and the attempt is still audited.
	r2 := newRig(t, patients{err: errors.New("PKB said 503")})
	sam = webclient.New(t, r2.srv.URL).SignIn("sam")
	_, page = sam.Form("/requests/RB-CCCC-0001/patient", nil)
	assert.Contains(t, page, "PKB did not give the patient&#39;s details")
	assert.NotContains(t, page, "Lovelace")

	// Once retention has redacted the closed request, its patient is not
	// looked up: the page says why, and keeps the timeline.
	ctx := context.Background()
	_, err = r.st.Pool().Exec(ctx, `UPDATE requests SET closed_at = now() - interval '100 days' WHERE ref = 'RB-CCCC-0001'`)
	require.NoError(t, err)
	n, err := r.st.RedactClosed(ctx, time.Now().AddDate(0, 0, -90), 10, 90)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	sam = webclient.New(t, r.srv.URL).SignIn("sam")
	_, page = sam.Form("/requests/RB-CCCC-0001/patient", nil)
	assert.Contains(t, page, "patient identifiers were removed on")
	assert.NotContains(t, page, "Lovelace")
	assert.Contains(t, page, dashboard.ActionViewedPatient, "the earlier view is still on the timeline")
	after, err := r.st.AuditTrail(ctx, workflows.RequestWorkflowID("c1"))
	require.NoError(t, err)
	assert.Equal(t, store.ActionRedacted, after[len(after)-1].Action, "no view is recorded of details not shown")
}

func TestReportPageAndCSVAgreeWithTheStore(t *testing.T) {
	r := newRig(t, patients{})
	olive := webclient.New(t, r.srv.URL).SignIn("olive")
	today := time.Now().Format("2006-01-02")
	q := "from=" + time.Now().AddDate(0, 0, -7).Format("2006-01-02") + "&to=" + today + "&by=team&every=day"
	resp, page := olive.Get("/reports?" + q)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, "<svg", "the chart is drawn on the page")
	assert.Contains(t, page, "Cardiology")

	resp, body := olive.Get("/reports.csv?" + q)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(t, err)
	from, _ := time.Parse("2006-01-02", time.Now().AddDate(0, 0, -7).Format("2006-01-02"))
	to, _ := time.Parse("2006-01-02", today)
	rows, err := r.st.Report(context.Background(), store.ReportQuery{From: from, To: to.AddDate(0, 0, 1), By: "team", Every: "day"})
	require.NoError(t, err)
	want := [][]string{report.Header("team")}
	for _, row := range rows {
		want = append(want, report.Record(row))
	}
	assert.Equal(t, want, recs)
	total := 0
	for _, row := range rows {
		total += row.Requests
	}
	assert.Equal(t, 4, total)

	resp, _ = olive.Get("/reports/chart.svg?" + q)
	assert.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"))
	resp, _ = olive.Get("/reports?by=clinic")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestAdminPageAndGrantLink(t *testing.T) {
	r := newRig(t, patients{})
	ctx := context.Background()
	require.NoError(t, r.st.ReplaceRules(ctx, []store.Rule{{Specialty: "Cardiology", Team: "Cardiology", SlackChannel: "rebook-cardiology", SLAHours: 48},
		{Team: "Central", SlackChannel: "rebook-central", SLAHours: 96}}))
	for _, who := range []string{"sam", "olive"} {
		c := webclient.New(t, r.srv.URL).SignIn(who)
		resp, _ := c.Get("/admin")
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, who)
		resp, _ = c.Form("/admin/grant-link", nil)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, who)
	}
	ada := webclient.New(t, r.srv.URL).SignIn("ada")
	resp, page := ada.Get("/admin")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, "#rebook-cardiology")
	assert.Contains(t, page, "No grant yet")
	resp, page = ada.Form("/admin/grant-link", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m := regexp.MustCompile(`oauth/start\?link=([A-Za-z0-9_-]+)`).FindStringSubmatch(page)
	require.NotNil(t, m, "the page shows the link")
	who, err := r.st.ConsumeGrantLink(ctx, m[1], "rebook-test")
	require.NoError(t, err, "the link is live and single use")
	assert.Equal(t, "ada", who)
	trail, err := r.st.AuditTrail(ctx, "pkb-grant/rebook-test")
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, dashboard.ActionGrantLinkIssued, trail[0].Action)
	assert.Equal(t, "ada", trail[0].Actor)
}

// The web request page asks "Is this the rebooking?" while the request's
// question is open (from its audit trail) and sends the answer, with the
// booking it is about, through the same workflow update as Slack's
// buttons; once answered, the question is gone.
func TestRebookingQuestionOnTheWeb(t *testing.T) {
	r := newRig(t, patients{})
	ctx := context.Background()
	wid := workflows.RequestWorkflowID("c2")
	sam := webclient.New(t, r.srv.URL).SignIn("sam")
	_, page := sam.Get("/requests/RB-CCCC-0002")
	assert.NotContains(t, page, "Is this the rebooking?", "no question asked")

	require.NoError(t, r.st.Audit(ctx, store.AuditEntry{Actor: "rebook", Action: workflows.AuditRebookingAsked, Subject: wid,
		Detail: map[string]string{"appointment": "appt-new-1", "when": "Tue 9 Mar 2027 at 10:30", "clinic": "Cardiology Outpatients", "why": "another request of this patient in this specialty is waiting"}}))
	_, page = sam.Get("/requests/RB-CCCC-0002")
	assert.Contains(t, page, "Is this the rebooking?")
	assert.Contains(t, page, "Tue 9 Mar 2027 at 10:30, Cardiology Outpatients")
	assert.Contains(t, page, "another request of this patient in this specialty is waiting")

	resp, _ := sam.Form("/requests/RB-CCCC-0002/action", url.Values{"action": {workflows.ActionRebookingNo}, "candidate": {"appt-new-1"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Len(t, r.acts.got, 1)
	assert.Equal(t, workflows.StaffAction{Action: workflows.ActionRebookingNo, User: "sam", Candidate: "appt-new-1"}, r.acts.got[0])
	assert.Equal(t, wid, r.acts.wfID[0])

	// The workflow audits the answer; the page no longer asks.
	require.NoError(t, r.st.Audit(ctx, store.AuditEntry{Actor: "sam", Action: workflows.ActionRebookingNo, Subject: wid, Detail: map[string]string{"appointment": "appt-new-1"}}))
	_, page = sam.Get("/requests/RB-CCCC-0002")
	assert.NotContains(t, page, "Is this the rebooking?")
}

// Issue 23, finding 2: a staff member whose sign-in names no team (an
// identity provider that left the groups claim out) sees no team's
// requests, and is told to ask an admin; the filters cannot widen it.
func TestSecurityStaffWithoutTeamsSeeNothing(t *testing.T) {
	r := newRig(t, patients{})
	nat := webclient.New(t, r.srv.URL).SignIn("nat")
	for _, path := range []string{"/requests", "/requests?team=Cardiology", "/requests?part=rows", "/requests?state=any"} {
		resp, page := nat.Get(path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		for _, ref := range []string{"RB-CCCC-0001", "RB-CCCC-0002", "RB-DDDD-0001", "RB-TTTT-0001"} {
			assert.NotContains(t, page, ref, "%s shows %s", path, ref)
		}
	}
	_, page := nat.Get("/requests")
	assert.Contains(t, page, "names no team")
	resp, _ := nat.Get("/requests/RB-CCCC-0001")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

// Issue 23, finding 10: text in the URL is never shown as the page's own;
// what an action did reaches the next page in a sealed message, once.
func TestSecurityPageMessagesAreRebooksOwn(t *testing.T) {
	r := newRig(t, patients{})
	sam := webclient.New(t, r.srv.URL).SignIn("sam")
	const lure = "Call IT on 0800 000 0000 with your password"
	_, page := sam.Get("/requests/RB-CCCC-0001?said=" + url.QueryEscape(lure) + "&problem=" + url.QueryEscape(lure))
	assert.NotContains(t, page, "0800 000 0000", "the URL's text is not the page's")

	resp, _ := sam.Form("/requests/RB-CCCC-0001/action", url.Values{"action": {workflows.ActionClaim}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/requests/RB-CCCC-0001", resp.Header.Get("Location"), "the outcome is not in the URL")
	_, page = sam.Get(resp.Header.Get("Location"))
	assert.Contains(t, page, "You have claimed it.")
	_, page = sam.Get("/requests/RB-CCCC-0001")
	assert.NotContains(t, page, "You have claimed it.", "shown once")
}

// Issue 23, finding 14: a reference two requests share (only the old
// 32-bit ones can) shows neither patient; a reference typed in lower case
// or without its dashes finds its request.
func TestSecurityAmbiguousReferenceShowsNoRequest(t *testing.T) {
	r := newRig(t, patients{})
	for _, id := range []string{"c8", "c9"} {
		require.NoError(t, r.st.SaveRequest(context.Background(), store.Request{MessageID: id, WorkflowID: workflows.RequestWorkflowID(id),
			Ref: "RB-0A1B2C3D", Team: "Cardiology", Specialty: "Cardiology", RequestType: "cancel", State: workflows.StateRouted, ReceivedAt: time.Now()}))
	}
	sam := webclient.New(t, r.srv.URL).SignIn("sam")
	resp, page := sam.Get("/requests/RB-0A1B2C3D")
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Contains(t, page, "two requests share this older reference")
	resp, page = sam.Get("/requests/rb-cccc-0001")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, "RB-CCCC-0001")
}

// Finding 6: sessions are rows in PostgreSQL, so an admin's "sign out
// everyone" ends every one at once (their own too), with an audit row;
// staff cannot press it.
func TestSecurityAdminSignsEveryoneOut(t *testing.T) {
	r := newRig(t, patients{})
	ctx := context.Background()
	sam := webclient.New(t, r.srv.URL).SignIn("sam")
	olive := webclient.New(t, r.srv.URL).SignIn("olive")
	resp, _ := sam.Form("/admin/sign-out-everyone", nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "staff cannot")
	resp, _ = sam.Get("/requests")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	ada := webclient.New(t, r.srv.URL).SignIn("ada")
	_, page := ada.Get("/admin")
	assert.Contains(t, page, "Sign out everyone")
	resp, _ = ada.Form("/admin/sign-out-everyone", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	for name, c := range map[string]*webclient.Client{"sam": sam, "olive": olive, "ada": ada} {
		resp, _ = c.Get("/requests")
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s is signed out", name)
	}
	trail, err := r.st.AuditTrail(ctx, "sessions")
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, dashboard.ActionSignedOutEveryone, trail[0].Action)
	assert.Equal(t, "ada", trail[0].Actor)
	assert.Equal(t, "3", trail[0].Detail["sessions"], "sam's, olive's and ada's")
}

// Finding 15: a press on the web is audited with the stable subject of
// whoever pressed it, applied or refused.
func TestSecurityWebPressesNameTheStableSubject(t *testing.T) {
	r := newRig(t, patients{})
	sam := webclient.New(t, r.srv.URL).SignIn("sam")
	resp, _ := sam.Form("/requests/RB-CCCC-0001/action", url.Values{"action": {workflows.ActionClaim}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, _ = sam.Form("/requests/RB-CCCC-0001/action", url.Values{"action": {workflows.ActionClaim}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	trail, err := r.st.AuditTrail(context.Background(), workflows.RequestWorkflowID("c1"))
	require.NoError(t, err)
	var presses []store.AuditEntry
	for _, e := range trail {
		if e.Action == dashboard.ActionWebPress {
			presses = append(presses, e)
		}
	}
	require.Len(t, presses, 2)
	for i, want := range []string{"applied", "refused"} {
		assert.Equal(t, "sam", presses[i].Actor)
		assert.Equal(t, "local:sam", presses[i].Detail["subject"])
		assert.Equal(t, want, presses[i].Detail["outcome"])
	}
}
