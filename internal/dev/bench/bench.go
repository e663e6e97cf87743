// Package bench measures Rebook against the floor the machine sets: on
// one Temporal dev server, bare workflows of as many no-op activities as
// a request runs before its Slack post, then the real worker draining a
// backlog of requests from the PKB simulator to a fake Slack, then
// requests arriving at a steady rate. `starter bench` (make bench) runs it;
// a smoke run is in make test.
package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/child"
	"github.com/rebookhq/rebook/internal/dev/devserver"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/replay"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/schedules"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// FloorActivities is how many activities AppointmentRequest runs before
// its card is in Slack: fetch-message, match-appointment,
// resolve-national-ID, route-to-team.
const FloorActivities = 4

// Options set a run.
type Options struct {
	Requests int     // the backlog drained; 2,000 if zero
	Arrivals int     // requests arriving at Rate after the drain; 300 if zero
	Rate     float64 // arrivals a second; 5 if zero
	// WorkerBinary is Rebook's worker, built from this tree.
	WorkerBinary string
	// RepoRoot finds the pinned Temporal CLI.
	RepoRoot string
	// ServerURL is a PostgreSQL maintenance database; the run makes and
	// drops a database of its own beside it.
	ServerURL string
	// Timeout bounds each phase; 10 minutes if zero.
	Timeout time.Duration
	// NoFloor skips the floor: for measuring the cost of waiting only.
	NoFloor bool
	// Settle is how long after the last card the waiting worker's memory
	// is read; 30 s if zero.
	Settle time.Duration
	Log    io.Writer
}

// Result is what a run measured.
type Result struct {
	Requests        int     `json:"requests"`
	FloorActivities int     `json:"floor_activities"`
	FloorSeconds    float64 `json:"floor_seconds"`
	FloorPerSecond  float64 `json:"floor_workflows_per_second"`
	RebookSeconds   float64 `json:"rebook_seconds"`
	RebookPerSecond float64 `json:"rebook_requests_per_second"`
	// Ratio is Rebook's rate over the floor's: 1.0 means the pipeline
	// costs no more than bare workflows of as many activities.
	Ratio float64 `json:"ratio_to_floor"`

	Arrivals      int     `json:"arrivals"`
	ArrivalRate   float64 `json:"arrival_rate_per_second"`
	LatencyMedian float64 `json:"latency_median_seconds"`
	LatencyP95    float64 `json:"latency_p95_seconds"`
	LatencyP99    float64 `json:"latency_p99_seconds"`

	HistoryEventsPerRequest float64 `json:"history_events_per_request"`
	PKBCallsPerRequest      float64 `json:"pkb_calls_per_request"`
	SlackCallsPerRequest    float64 `json:"slack_calls_per_request"`
	DBRoundTripsPerRequest  float64 `json:"db_round_trips_per_request"`
	WorkerPeakRSSMiB        float64 `json:"worker_peak_rss_mib"`
	// WorkerWaitingRSSMiB is the worker's resident set Settle after the
	// last card, with every request waiting.
	WorkerWaitingRSSMiB float64 `json:"worker_waiting_rss_mib"`

	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
	Started   string `json:"started"`
}

func (o *Options) defaults() {
	if o.Requests <= 0 {
		o.Requests = 2000
	}
	if o.Arrivals <= 0 {
		o.Arrivals = 300
	}
	if o.Rate <= 0 {
		o.Rate = 5
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Run runs the benchmark.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	res := Result{Requests: o.Requests, FloorActivities: FloorActivities, Arrivals: o.Arrivals, ArrivalRate: o.Rate,
		CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Started: time.Now().UTC().Format(time.RFC3339)}
	say := func(format string, a ...any) { fmt.Fprintf(o.Log, "bench: "+format+"\n", a...) }
	tmp, err := os.MkdirTemp("", "rebook-bench-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	// Temporal, persisted as `make dev` runs it.
	bin, err := devserver.Binary(ctx, o.RepoRoot)
	if err != nil {
		return res, err
	}
	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin, UIPort: -1, SearchAttributes: workflows.SearchAttributes,
		DBFile: filepath.Join(tmp, "temporal.db")})
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	say("Temporal dev server at %s", srv.Address)

	dbURL, drop, err := testdb.Scratch(o.ServerURL, "rebook_bench_")
	if err != nil {
		return res, err
	}
	defer func() { _ = drop() }()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	st, err := store.Open(ctx, dbURL, key)
	if err != nil {
		return res, err
	}
	defer st.Close()
	rules, err := routing.ReadCSV(strings.NewReader(routing.DemoCSV))
	if err != nil {
		return res, err
	}
	if err := st.ReplaceRules(ctx, rules); err != nil {
		return res, err
	}

	// Slack: each root card's arrival time, by reference.
	var mu sync.Mutex
	posted := map[string]time.Time{}
	slack := slackfake.New(func(m slackfake.Message) {
		if m.ThreadTS != "" || m.Edits > 0 || len(m.Blocks.BlockSet) == 0 {
			return
		}
		if i := strings.Index(m.Text, " RB-"); i >= 0 {
			ref := strings.TrimSuffix(strings.Fields(m.Text[i+1:])[0], ":")
			mu.Lock()
			if _, ok := posted[ref]; !ok {
				posted[ref] = time.Now()
			}
			mu.Unlock()
		}
	})
	defer slack.Stop()
	for _, r := range rules {
		slack.AddChannel(r.SlackChannel)
	}
	cfg := config.Config{TriageChannel: "rebook-triage", AdminChannel: "rebook-admin"}
	slack.AddChannel(cfg.TriageChannel)
	slack.AddChannel(cfg.AdminChannel)
	countPosted := func() int { mu.Lock(); defer mu.Unlock(); return len(posted) }

	// PKB: the backlog, and the arrivals held back until released.
	ds := pkbsim.Pending(o.Requests + o.Arrivals)
	stamps := make([]int64, len(ds.Messages))
	for i, m := range ds.Messages {
		stamps[i] = m.Timestamp
	}
	slices.Sort(stamps)
	const clientID, secret = "rebook-bench", "bench-secret"
	sim := pkbsim.New(pkbsim.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: "http://127.0.0.1:1/oauth/callback", AutoApprove: true, Seed: 1}, ds)
	sim.HoldMessagesFrom(stamps[o.Requests])
	pkbSrv := httptest.NewServer(sim)
	defer pkbSrv.Close()

	cfg.TemporalAddress, cfg.TemporalNamespace, cfg.DatabaseURL = srv.Address, "default", dbURL
	cfg.PKBBaseURL, cfg.PKBFHIRBaseURL, cfg.PKBClientID, cfg.PKBClientSecret = pkbSrv.URL, pkbSrv.URL+"/fhir", clientID, secret
	cfg.PKBRedirectURL, cfg.EncryptionKey = "http://127.0.0.1:1/oauth/callback", key
	if err := pkbauth.AutoGrant(ctx, app.OAuth(cfg), st); err != nil {
		return res, err
	}

	tc, err := app.Temporal(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return res, err
	}
	defer tc.Close()

	// The floor.
	if !o.NoFloor {
		say("floor: %d workflows of %d no-op activities", o.Requests, FloorActivities)
		res.FloorSeconds, err = floor(ctx, tc, o.Requests, o.Timeout)
		if err != nil {
			return res, err
		}
		res.FloorPerSecond = float64(o.Requests) / res.FloorSeconds
		say("floor: %.1f s, %.1f workflows/s", res.FloorSeconds, res.FloorPerSecond)
	}

	// Rebook's worker, the real binary, as a process of its own.
	cfg.SlackBotToken, cfg.SlackAPIURL = "xoxb-bench", slack.GetAPIURL()
	w, workerMetrics, err := startWorker(ctx, o.WorkerBinary, tmp, cfg)
	if err != nil {
		return res, err
	}
	defer w.Stop()
	if err := schedules.Ensure(ctx, tc, time.Second, time.Hour); err != nil {
		return res, err
	}
	t0 := time.Now()
	say("rebook: draining %d requests", o.Requests)
	if err := child.Until(ctx, o.Timeout, func() bool { return countPosted() >= o.Requests }); err != nil {
		return res, fmt.Errorf("rebook: %d of %d posted: %w", countPosted(), o.Requests, err)
	}
	mu.Lock()
	var last time.Time
	for _, at := range posted {
		if at.After(last) {
			last = at
		}
	}
	mu.Unlock()
	res.RebookSeconds = last.Sub(t0).Seconds()
	res.RebookPerSecond = float64(o.Requests) / res.RebookSeconds
	if res.FloorPerSecond > 0 {
		res.Ratio = res.RebookPerSecond / res.FloorPerSecond
	}
	say("rebook: %.1f s, %.1f requests/s, %.2f of the floor", res.RebookSeconds, res.RebookPerSecond, res.Ratio)

	time.Sleep(2 * time.Second) // the last routes' writes land
	m, err := workerMetrics(ctx)
	if err != nil {
		return res, err
	}
	n := float64(o.Requests)
	res.PKBCallsPerRequest = m["rebook_pkb_calls_total"] / n
	res.SlackCallsPerRequest = m["rebook_slack_calls_total"] / n
	res.DBRoundTripsPerRequest = m["rebook_db_queries_total"] / n

	// Steady arrivals.
	say("arrivals: %d at %.1f a second", o.Arrivals, o.Rate)
	released := map[string]time.Time{}
	// Released by message id; posted by reference, read back from the
	// read model once every card is up.
	byStamp := map[int64]string{}
	for _, msg := range ds.Messages {
		byStamp[msg.Timestamp] = msg.ID
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / o.Rate))
	for i := o.Requests; i < len(stamps); i++ {
		<-tick.C
		if i+1 < len(stamps) {
			sim.HoldMessagesFrom(stamps[i+1])
		} else {
			sim.HoldMessagesFrom(0)
		}
		released[byStamp[stamps[i]]] = time.Now()
	}
	tick.Stop()
	if err := child.Until(ctx, o.Timeout, func() bool { return countPosted() >= o.Requests+o.Arrivals }); err != nil {
		return res, fmt.Errorf("arrivals: %d of %d posted: %w", countPosted()-o.Requests, o.Arrivals, err)
	}
	rows, err := st.AllRequests(ctx)
	if err != nil {
		return res, err
	}
	refOf := make(map[string]string, len(rows))
	for _, row := range rows {
		refOf[row.MessageID] = row.Ref
	}
	var lat []float64
	mu.Lock()
	for id, at := range released {
		if p, ok := posted[refOf[id]]; ok {
			lat = append(lat, p.Sub(at).Seconds())
		}
	}
	mu.Unlock()
	slices.Sort(lat)
	res.LatencyMedian, res.LatencyP95, res.LatencyP99 = quantile(lat, .5), quantile(lat, .95), quantile(lat, .99)

	// History per request, across its runs.
	var events int64
	err = forEachRequest(ctx, tc, func(n int64) { events += n })
	if err != nil {
		return res, err
	}
	res.HistoryEventsPerRequest = float64(events) / float64(o.Requests+o.Arrivals)
	say("waiting: %d requests wait; the worker's memory %s on", o.Requests+o.Arrivals, o.Settle)
	time.Sleep(o.Settle)
	res.WorkerWaitingRSSMiB, res.WorkerPeakRSSMiB = w.Status("VmRSS:"), w.Status("VmHWM:")
	return res, nil
}

const floorQueue = "rebook-bench-floor"

// floorWorkflow is the floor: a request's activities, doing nothing.
func floorWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for range FloorActivities {
		if err := workflow.ExecuteActivity(ctx, "noop").Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func floor(ctx context.Context, tc client.Client, n int, timeout time.Duration) (float64, error) {
	w := worker.New(tc, floorQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(floorWorkflow, workflow.RegisterOptions{Name: "BenchFloor"})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "noop"})
	if err := w.Start(); err != nil {
		return 0, err
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Every workflow is started at once, as the poller starts a page of
	// requests, and the floor is the time until the last one completes.
	t0 := time.Now()
	runs := make([]client.WorkflowRun, n)
	var next atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bench-floor-" + strconv.FormatInt(i, 10), TaskQueue: floorQueue}, "BenchFloor")
				if err != nil {
					errs <- err
					return
				}
				runs[i] = run
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("floor: %w", err)
	}
	for _, run := range runs {
		if err := run.Get(ctx, nil); err != nil {
			return 0, fmt.Errorf("floor: %w", err)
		}
	}
	return time.Since(t0).Seconds(), nil
}

// forEachRequest gives the history length of every AppointmentRequest
// run: closed ones (continued as new) from visibility, open ones from
// Temporal, as visibility has no length for a running workflow.
func forEachRequest(ctx context.Context, tc client.Client, each func(events int64)) error {
	q := "WorkflowType = '" + workflows.AppointmentRequestWorkflow + "'"
	return replay.ForEach(ctx, tc, "default", q, func(e *workflowpb.WorkflowExecutionInfo) (bool, error) {
		n := e.GetHistoryLength()
		if e.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING || n == 0 {
			d, err := tc.DescribeWorkflowExecution(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
			if err != nil {
				return false, err
			}
			n = d.GetWorkflowExecutionInfo().GetHistoryLength()
		}
		each(n)
		return false, nil
	})
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// startWorker runs Rebook's worker binary as a process of its own, with
// its /metrics on a free port.
func startWorker(ctx context.Context, binary, dir string, cfg config.Config) (*child.Process, func(context.Context) (map[string]float64, error), error) {
	if binary == "" {
		return nil, nil, errors.New("bench: the worker binary is needed (go build -o bin/worker ./worker)")
	}
	port, err := devserver.FreePort("127.0.0.1")
	if err != nil {
		return nil, nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The watcher stays out of the drain: no request is due a check
	// within the run.
	cfg.FirstCheckAfter = time.Hour
	p, err := child.Start(binary, []string{"--health-addr", addr}, child.Env(cfg), filepath.Join(dir, "worker.log"))
	if err != nil {
		return nil, nil, err
	}
	metrics := func(ctx context.Context) (map[string]float64, error) {
		return child.Scrape(ctx, "http://"+addr+"/metrics")
	}
	if err := child.Until(ctx, time.Minute, func() bool { _, err := metrics(ctx); return err == nil }); err != nil {
		p.Stop()
		return nil, nil, fmt.Errorf("bench: the worker did not start; see %s", p.Log())
	}
	return p, metrics, nil
}
