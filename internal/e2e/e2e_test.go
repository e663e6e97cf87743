// Package e2e runs Rebook end to end: the real worker code against a
// Temporal dev server, PostgreSQL, the PKB simulator over HTTP and a Slack
// API built on slack-go's slacktest, with staff acting through signed Slack
// interactions.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/devserver"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/teamsfake"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/metrics"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/schedules"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

const (
	signingSecret = "e2e-signing-secret"
	triage        = "rebook-triage"
	admin         = "rebook-admin"
)

// stack is everything one end-to-end run needs, started.
type stack struct {
	cfg   config.Config
	st    *store.Store
	sim   *pkbsim.Server
	ds    pkbsim.Dataset
	slack *slackfake.Server
	tc    client.Client
	// worker runs Rebook's workflows and activities; a test may stop it
	// and run another build
	worker worker.Worker
	key    []byte
	door   string
	// the worker's and the front door's series
	workerMetrics, doorMetrics *metrics.Registry
	dbURL                      string
	rules                      []store.Rule
	// teams, when a test sets it, holds the cards posted to Teams.
	teams *teamsfake.Server
}

// start runs the whole stack over n open requests; tune adjusts the
// configuration before anything uses it.
func start(t *testing.T, n int, tune ...func(*config.Config)) *stack {
	t.Helper()
	return startLogged(t, n, nil, tune...)
}

// startLogged is start with every log line of every level, from Rebook and
// the Temporal SDK, also written to logs.
func startLogged(t *testing.T, n int, logs io.Writer, tune ...func(*config.Config)) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("end to end: starts a Temporal dev server")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if logs != nil {
		log = slog.New(slog.NewMultiHandler(log.Handler(), slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		was := slog.Default()
		slog.SetDefault(log)
		t.Cleanup(func() { slog.SetDefault(was) })
	}
	temporalAddr, namespace := clusterNamespace(t, ctx)
	if temporalAddr == "" {
		srv := devServer(t, devserver.Options{SearchAttributes: workflows.SearchAttributes})
		temporalAddr, namespace = srv.Address, "default"
	}

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &stack{ds: pkbsim.Pending(n)}
	dbURL := testdb.URL(t)
	var err error
	s.st, err = store.Open(ctx, dbURL, key)
	require.NoError(t, err)
	t.Cleanup(s.st.Close)
	s.rules, err = routing.ReadCSV(strings.NewReader(routing.DemoCSV))
	require.NoError(t, err)
	require.NoError(t, s.st.ReplaceRules(ctx, s.rules))

	s.slack = slackfake.New(nil)
	t.Cleanup(s.slack.Stop)
	for _, r := range s.rules {
		s.slack.AddChannel(r.SlackChannel)
	}
	s.slack.AddChannel(triage)
	s.slack.AddChannel(admin)

	door := httptest.NewUnstartedServer(nil)
	doorURL := "http://" + door.Listener.Addr().String()
	s.sim = pkbsim.New(pkbsim.Config{ClientID: "rebook-e2e", ClientSecret: "e2e-secret", RedirectURL: doorURL + "/oauth/callback", AutoApprove: true, Seed: 1}, s.ds)
	pkbSrv := httptest.NewServer(s.sim)
	t.Cleanup(pkbSrv.Close)

	s.cfg = config.Config{
		TemporalAddress: temporalAddr, TemporalNamespace: namespace, PKBBaseURL: pkbSrv.URL, PKBFHIRBaseURL: pkbSrv.URL + "/fhir",
		PKBClientID: "rebook-e2e", PKBClientSecret: "e2e-secret", PKBRedirectURL: doorURL + "/oauth/callback",
		SlackBotToken: "xoxb-e2e", SlackAPIURL: s.slack.GetAPIURL(), SlackSigningSecret: signingSecret,
		EncryptionKey: key, PublicURL: doorURL, TriageChannel: triage, AdminChannel: admin,
		// The simulator serves PKB's documented API: the watcher asks one
		// patient at a time, here with a budget and first check that suit
		// a test of seconds.
		PKBCallsPerHour: 360_000, FirstCheckAfter: 2 * time.Second, TriageSLAHours: 24, RetentionDays: 90,
	}
	for _, f := range tune {
		f(&s.cfg)
	}
	require.NoError(t, pkbauth.AutoGrant(ctx, app.OAuth(s.cfg), s.st))

	s.workerMetrics, s.doorMetrics = app.Metrics(s.cfg, s.st, log), app.Metrics(s.cfg, s.st, log)
	s.tc, err = app.Temporal(ctx, s.cfg, log, s.workerMetrics)
	require.NoError(t, err)
	t.Cleanup(s.tc.Close)
	// Production's options: requests waiting for a grant retry every 20 s.
	w, err := app.Worker(s.cfg, s.st, s.tc, app.WorkerOptions{Metrics: s.workerMetrics})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	t.Cleanup(func() { s.worker.Stop() })
	s.worker, s.key = w, key
	s.recordHistories(t, key)
	require.NoError(t, app.StartTokenKeeper(ctx, s.tc, s.cfg))

	h, ih, err := app.FrontDoor(context.Background(), s.cfg, s.st, s.tc, nil, s.doorMetrics, "http://127.0.0.1:8233", log)
	require.NoError(t, err)
	door.Config.Handler = h
	door.Start()
	t.Cleanup(func() { door.Close(); ih.Wait() })
	s.door = door.URL
	s.dbURL = dbURL
	return s
}

// press sends a signed block_actions interaction, as Slack would.
func (s *stack) press(t *testing.T, action, workflowID, user string, at time.Time, secret string) int {
	t.Helper()
	status, err := slackfake.Press(http.DefaultClient, s.door+"/slack/interactions", secret, triage, user, action, workflowID, at)
	require.NoError(t, err)
	return status
}

func (s *stack) startSchedules(ctx context.Context) error {
	return schedules.Ensure(ctx, s.tc, 2*time.Second, 2*time.Second)
}

func (s *stack) count(t *testing.T, query string) int64 {
	t.Helper()
	resp, err := s.tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Namespace: s.cfg.TemporalNamespace, Query: query})
	require.NoError(t, err)
	return resp.Count
}

// repoRoot is the repository's root, where its tools and scripts are.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := devserver.RepoRoot(wd)
	require.NoError(t, err)
	return root
}

// devServer starts the pinned Temporal dev server for the test (no Web
// UI), stopped when the test ends.
func devServer(t *testing.T, o devserver.Options) *devserver.Server {
	t.Helper()
	ctx := context.Background()
	bin, err := devserver.Binary(ctx, repoRoot(t))
	require.NoError(t, err)
	o.Binary, o.UIPort = bin, -1
	srv, err := devserver.Start(ctx, o)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	return srv
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		time.Sleep(2 * time.Second)
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// cards returns the root request cards in Slack (not reminders or
// escalations), by reference.
func (s *stack) cards() map[string][]slackfake.Message {
	out := map[string][]slackfake.Message{}
	for _, m := range s.slack.Roots("") {
		if len(m.Blocks.BlockSet) == 0 {
			continue // a notice, such as an escalation, names the request too
		}
		if i := strings.Index(m.Text, " RB-"); i >= 0 {
			ref := strings.TrimSuffix(strings.Fields(m.Text[i+1:])[0], ":")
			out[ref] = append(out[ref], m)
		}
	}
	return out
}

var refPattern = regexp.MustCompile(`RB-[0-9A-Z]{4}-[0-9A-Z]{4}|RB-[0-9a-f]{8}`)

// teamsCards are the request cards posted to Teams, by reference.
func (s *stack) teamsCards() map[string][]teamsfake.Thread {
	if s.teams == nil {
		return nil
	}
	out := map[string][]teamsfake.Thread{}
	for _, th := range s.teams.Threads("") {
		if th.Root.Card == nil {
			continue // a notice
		}
		b, _ := json.Marshal(th.Root.Card)
		if ref := refPattern.FindString(string(b)); ref != "" {
			out[ref] = append(out[ref], th)
		}
	}
	return out
}

func TestTwoHundredRequestsEndToEnd(t *testing.T) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("E2E_REQUESTS")); err == nil {
		n = v
	}
	s := start(t, n)
	ctx := context.Background()

	// A forged or stale interaction is refused before anything else runs.
	assert.Equal(t, http.StatusUnauthorized, s.press(t, slackmsg.ActionDone, workflows.RequestWorkflowID("x"), "U0", time.Now(), "not-the-secret"))
	assert.Equal(t, http.StatusUnauthorized, s.press(t, slackmsg.ActionDone, workflows.RequestWorkflowID("x"), "U0", time.Now().Add(-10*time.Minute), signingSecret))

	require.NoError(t, schedules.Ensure(ctx, s.tc, 2*time.Second, 2*time.Second))
	// Running Ensure again changes nothing and does not fail.
	require.NoError(t, schedules.Ensure(ctx, s.tc, 2*time.Second, 2*time.Second))

	waitFor(t, "every request routed to Slack", limit(5*time.Minute), func() bool {
		if os.Getenv("E2E_DEBUG") != "" {
			rows, _ := s.st.CountRequestsByState(ctx)
			t.Logf("cards %d; states %v; polls %d; running %d", len(s.cards()), rows, s.count(t, "WorkflowType = 'PollMessages'"), s.count(t, "ExecutionStatus = 'Running'"))
		}
		return len(s.cards()) >= n
	})
	cards := s.cards()
	require.Len(t, cards, n)

	// Where each went: the team its rules name, or triage with a reason.
	byMessage := map[string]pkbsim.Expectation{}
	for _, e := range s.ds.Expect {
		byMessage[e.MessageID] = e
	}
	rows, err := s.st.AllRequests(ctx)
	require.NoError(t, err)
	expect := map[string]pkbsim.Expectation{}
	for _, row := range rows {
		expect[row.Ref] = byMessage[row.MessageID]
	}
	triaged := 0
	for ref, ms := range cards {
		e, ok := expect[ref]
		require.True(t, ok, "card %s matches no request", ref)
		ch := s.slack.Name(ms[0].Channel)
		if e.Kind == pkbsim.KindRoutable {
			rule, ok := routing.Match(s.rules, e.Specialty, e.Clinic, string(e.RequestType))
			require.True(t, ok)
			assert.Equal(t, rule.SlackChannel, ch, "request %s (%s, %s) in the wrong channel", ref, e.Specialty, e.Clinic)
			continue
		}
		assert.Equal(t, triage, ch, "%s request %s not in triage", e.Kind, ref)
		triaged++
		req, err := s.st.RequestByRef(ctx, ref)
		require.NoError(t, err)
		assert.True(t, req.Triage)
		assert.NotEmpty(t, req.Reason, "triage carries its reason")
	}
	assert.Greater(t, triaged, n/20, "the scenario sends some requests to triage")

	cards = s.closeAll(t, n, limit(5*time.Minute))

	// The read model agrees with Temporal.
	rows, err = s.st.AllRequests(ctx)
	require.NoError(t, err)
	require.Len(t, rows, n)
	states := map[string]int{}
	for _, r := range rows {
		var o workflows.Outcome
		require.NoError(t, s.tc.GetWorkflow(ctx, r.WorkflowID, "").Get(ctx, &o))
		assert.Equal(t, o.State, r.State, r.WorkflowID)
		assert.NotNil(t, r.ClosedAt, r.WorkflowID)
		if e := expect[r.Ref]; e.Kind == pkbsim.KindRoutable {
			assert.Equal(t, workflows.StateCompleted, r.State, "routable %s closed by PKB", r.Ref)
		}
		states[r.State]++
		// Every card shows its final state.
		m := cards[r.Ref][0]
		assert.Positive(t, m.Edits, "card %s was edited to its final state", r.Ref)
	}
	t.Logf("final states: %v", states)
	assert.Equal(t, n, states[workflows.StateCompleted]+states[workflows.StateTriagedThenCompleted])

	// The worker's series count each request once, and the front door's
	// /metrics shows the read model and the grant.
	got, err := s.workerMetrics.Gather()
	require.NoError(t, err)
	t.Logf("worker metrics: started %v routed %v triaged %v completed %v pkb %v slack %v", got["rebook_requests_started_total"],
		got["rebook_requests_routed_total"], got["rebook_requests_triaged_total"], got["rebook_requests_completed_total"],
		got["rebook_pkb_calls_total"], got["rebook_slack_calls_total"])
	assert.EqualValues(t, n, got["rebook_requests_started_total"])
	assert.EqualValues(t, n, got["rebook_requests_routed_total"]+got["rebook_requests_triaged_total"])
	assert.EqualValues(t, triaged, got["rebook_requests_triaged_total"])
	assert.EqualValues(t, n, got["rebook_requests_completed_total"])
	assert.EqualValues(t, n, got["rebook_message_to_post_seconds_count"])
	assert.EqualValues(t, n, got["rebook_post_to_close_seconds_count"])
	assert.Greater(t, got["rebook_pkb_calls_total"], float64(3*n), "fetch, match and NHS number for each request at least")
	assert.GreaterOrEqual(t, got["rebook_slack_calls_total"], float64(2*n), "a post and an edit for each request at least")
	assert.Positive(t, got["temporal_workflow_completed_total"], "the SDK's own series")
	assert.EqualValues(t, 1, got["rebook_pkb_grant_healthy"])
	resp, err := http.Get(s.door + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "rebook_pkb_grant_healthy 1")
	assert.Contains(t, string(body), fmt.Sprintf(`rebook_requests{state=%q} %d`, workflows.StateCompleted, states[workflows.StateCompleted]))

	// No patient data in Slack: no NHS number, name or message text.
	for _, m := range s.slack.Messages() {
		for _, p := range s.ds.Patients {
			if p.NHSNumber != "" {
				require.NotContains(t, m.Text, p.NHSNumber)
			}
			require.NotContains(t, m.Text, p.FamilyName+",")
		}
	}

	// The forged press changed nothing: no request was closed by U0.
	for _, r := range rows {
		assert.NotEqual(t, "U0", r.ClosedBy)
	}
	calls := s.sim.Counters()
	t.Logf("PKB calls: %v", calls)
	// PKB's documented API: the watcher probed a search across all
	// patients once, was refused, and watched patient by patient with no
	// failed run.
	assert.LessOrEqual(t, calls[pkbsim.CounterOrgWideRefused], int64(1))
	assert.Zero(t, s.count(t, "WorkflowType = 'WatchAppointments' AND ExecutionStatus = 'Failed'"), "no watcher failure")

	// The daily runs, triggered now rather than at midnight: the
	// reconciliation finds nothing the poll missed, and retention nothing
	// closed long enough ago.
	var rec workflows.ReconcileResult
	s.runSchedule(t, workflows.ReconcileScheduleID, &rec)
	assert.Zero(t, rec.Started)
	var red workflows.RedactResult
	s.runSchedule(t, workflows.RetentionScheduleID, &red)
	assert.Equal(t, workflows.RedactResult{Batches: 1}, red)
	fmt.Fprintln(os.Stderr)
}

// runSchedule triggers a schedule's action now and waits for its result.
func (s *stack) runSchedule(t *testing.T, id string, out any) {
	t.Helper()
	ctx := context.Background()
	h := s.tc.ScheduleClient().GetHandle(ctx, id)
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var run *client.ScheduleWorkflowExecution
	waitFor(t, id+" to start its workflow", limit(time.Minute), func() bool {
		d, err := h.Describe(ctx)
		require.NoError(t, err)
		if n := len(d.Info.RecentActions); n > 0 {
			run = d.Info.RecentActions[n-1].StartWorkflowResult
		}
		return run != nil
	})
	require.NoError(t, s.tc.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, out))
}

// closeAll lets the trust's PAS act on every request it can and has staff
// close the triaged ones through signed interactions, then checks that all
// n requests completed, none failed, and each has exactly one card. It
// returns the cards.
func (s *stack) closeAll(t *testing.T, n int, wait time.Duration) map[string][]slackfake.Message {
	t.Helper()
	ctx := context.Background()
	s.sim.SetAutoPAS(time.Second)
	for _, ms := range s.slack.Roots(triage) {
		if wf := ms.Button(slackmsg.ActionDone); wf != "" {
			require.Equal(t, http.StatusOK, s.press(t, slackmsg.ActionDone, wf, "UTRIAGE", time.Now(), signingSecret))
		}
	}

	waitFor(t, "every request workflow closed", wait, func() bool {
		// A run a test terminated (and started again) is not one of the
		// n: counting it, the wait could end with one still running.
		done := s.count(t, "WorkflowType = 'AppointmentRequest' AND ExecutionStatus = 'Running'") == 0 &&
			s.count(t, "WorkflowType = 'AppointmentRequest' AND ExecutionStatus != 'Running' AND ExecutionStatus != 'ContinuedAsNew' AND ExecutionStatus != 'Terminated'") >= int64(n)
		if !done && os.Getenv("E2E_DEBUG") != "" {
			rows, _ := s.st.CountRequestsByState(ctx)
			t.Logf("states %v; watch runs %d; counters %v", rows, s.count(t, "WorkflowType = 'WatchAppointments'"), s.sim.Counters())
			all, _ := s.st.AllRequests(ctx)
			now := s.sim.Dataset()
			for _, r := range all {
				if r.ClosedAt == nil {
					var st []string
					for _, a := range now.Appointments {
						if a.PatientID == r.PatientID {
							st = append(st, a.ID+"/"+a.Status+"/"+a.SpecialtyCode+"/"+a.Start.Format(time.RFC3339)+"/"+a.Created.Format(time.RFC3339))
						}
					}
					t.Logf("open %s %s appt=%s code=%s recv=%s: %v", r.Ref, r.RequestType, r.AppointmentID, r.SpecialtyCode, r.ReceivedAt.Format(time.RFC3339), st)
				}
			}
		}
		return done
	})
	assert.EqualValues(t, n, s.count(t, "WorkflowType = 'AppointmentRequest' AND ExecutionStatus = 'Completed'"))
	assert.EqualValues(t, 0, s.count(t, "WorkflowType = 'AppointmentRequest' AND ExecutionStatus = 'Failed'"))

	// One root message per request, in Slack or Teams: no duplicates.
	cards, inTeams := s.cards(), s.teamsCards()
	assert.Equal(t, n, len(cards)+len(inTeams))
	for ref, ms := range cards {
		assert.Len(t, ms, 1, "request %s posted %d times", ref, len(ms))
		assert.NotContains(t, inTeams, ref, "request %s posted in both", ref)
	}
	for ref, ts := range inTeams {
		assert.Len(t, ts, 1, "request %s posted %d times in Teams", ref, len(ts))
	}
	return cards
}

func limit(d time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv("E2E_WAIT")); err == nil {
		return v
	}
	return d
}
