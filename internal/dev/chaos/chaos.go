// Package chaos runs requests through the real stack while it breaks it:
// the worker is killed again and again, the Temporal server and
// PostgreSQL are restarted, PKB answers 5xx, 429 and slowly, Slack
// answers 429, and the grant is revoked once and granted again. Then it
// checks that nothing was lost or doubled. `starter chaos` (make chaos)
// runs it; a smoke run is in make test.
//
// Every process it breaks is one it started: a Temporal dev server on its
// own SQLite file, a PostgreSQL server in its own data directory, the
// worker and the front door (`starter serve`) from this tree's binaries.
// The PKB simulator and the fake Slack run inside it.
package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/child"
	"github.com/rebookhq/rebook/internal/dev/clinician"
	"github.com/rebookhq/rebook/internal/dev/devserver"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/feed"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/schedules"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// Options set a run.
type Options struct {
	Requests int     // requests run through; 1,000 if zero
	Rate     float64 // their arrivals a second; 5 if zero
	// FaultEvery is the spacing of the faults; each lasts half of it. 8 s
	// if zero.
	FaultEvery time.Duration
	// WorkerBinary and StarterBinary are this tree's builds.
	WorkerBinary, StarterBinary string
	// RepoRoot finds the pinned Temporal CLI.
	RepoRoot string
	// Timeout bounds the whole run; 30 minutes if zero.
	Timeout time.Duration
	Log     io.Writer
	// Cluster, when set, is the frontend of the production-shaped cluster
	// (make cluster, started by the run through tools/cluster.sh): the run
	// takes a namespace of its own there, and its Temporal fault kills
	// and restarts one service after another instead of a dev server.
	Cluster string
	// Workers and Doors are how many worker and front door processes run
	// (1 each if zero); the worker and front door faults take each in turn.
	Workers, Doors int
}

// Fault kinds, as Result.Faults counts them.
const (
	FaultWorkerKilled    = "worker SIGKILL"
	FaultTemporalRestart = "Temporal server restart"
	FaultPostgresRestart = "PostgreSQL crash and restart"
	FaultPKB5xx          = "PKB 5xx"
	FaultPKB429          = "PKB 429 with Retry-After"
	FaultPKBSlow         = "PKB slow (2 s a call)"
	FaultSlack429        = "Slack 429"
	FaultGrantRevoked    = "grant revoked, then granted again"
	FaultDoorKilled      = "front door SIGKILL"
)

// Result is what a run did and found.
type Result struct {
	Requests int `json:"requests"`
	// Completed requests' workflows ended Completed; Failed ended any
	// other way (failed, terminated, timed out); Open had not ended when
	// the run stopped; Lost are messages with no workflow at all.
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	Open      int `json:"open"`
	Lost      int `json:"lost"`
	// DuplicateCards are requests with more than one root message in
	// Slack; MissingCards requests with none.
	DuplicateCards int `json:"duplicate_cards"`
	MissingCards   int `json:"missing_cards"`
	// ReadModelDisagrees are requests whose row in PostgreSQL is missing,
	// open, or in a state other than the workflow's.
	ReadModelDisagrees int `json:"read_model_disagrees"`
	// Faults counts each fault as it was applied.
	Faults map[string]int `json:"faults"`
	// What the faults caused, as the simulator and the fake Slack counted.
	PKB5xxAnswered   int64   `json:"pkb_5xx_answered"`
	PKB429Answered   int64   `json:"pkb_429_answered"`
	Slack429Answered int64   `json:"slack_429_answered"`
	StaffPresses     int     `json:"staff_presses"`
	Seconds          float64 `json:"seconds"`
	// DoorPeakRSSMiB is the front door's high-water resident set over the
	// run (presses, the PAS feed, the grant's pages), for sizing it.
	DoorPeakRSSMiB float64 `json:"door_peak_rss_mib"`
	// Problems names each request that is not as it should be (by its
	// reference, RB-…), at most 20.
	Problems []string `json:"problems,omitempty"`
}

// OK says whether every request completed, once, and the read model
// agrees.
func (r Result) OK() bool {
	return r.Completed == r.Requests && r.Failed == 0 && r.Open == 0 && r.Lost == 0 &&
		r.DuplicateCards == 0 && r.MissingCards == 0 && r.ReadModelDisagrees == 0
}

func (o *Options) defaults() {
	if o.Requests <= 0 {
		o.Requests = 1000
	}
	if o.Rate <= 0 {
		o.Rate = 5
	}
	if o.FaultEvery <= 0 {
		o.FaultEvery = 8 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	o.Workers, o.Doors = max(o.Workers, 1), max(o.Doors, 1)
}

const (
	triageChannel = "rebook-triage"
	adminChannel  = "rebook-admin"
	clientID      = "rebook-chaos"
	clientSecret  = "chaos-secret"
	signing       = "chaos-signing-secret"
)

// run is one run's stack.
type run struct {
	o       Options
	say     func(string, ...any)
	tmp     string
	pg      *postgres
	st      *store.Store
	sim     *pkbsim.Server
	ds      pkbsim.Dataset
	slack   *slackfake.Server
	tsOpts  devserver.Options
	ts      *devserver.Server
	tc      client.Client
	cfg     config.Config
	workers []*child.Process
	doors   []*child.Process
	// doorURL is the first front door's, which PKB and the links name;
	// doorURLs are every front door's, which staff press through in turn.
	doorURL  string
	doorURLs []string
	// workerMetrics answer once each worker is up.
	workerMetrics []string
	namespace     string
	// turn picks the next worker, front door and cluster service a fault
	// takes.
	turn map[string]int

	mu     sync.Mutex
	res    Result
	closed map[string]bool // workflow ids staff need not press for again
}

// Run runs the fault suite and returns what it found; an error means the
// run itself could not be made, not that a check failed (see Result.OK).
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &run{o: o, say: func(format string, a ...any) { fmt.Fprintf(o.Log, "chaos: "+format+"\n", a...) },
		res: Result{Requests: o.Requests, Faults: map[string]int{}}, closed: map[string]bool{}, turn: map[string]int{}}
	t0 := time.Now()
	var err error
	if r.tmp, err = os.MkdirTemp("", "rebook-chaos-"); err != nil {
		return r.res, err
	}
	err = r.up(ctx)
	if err == nil {
		err = r.drive(ctx)
	}
	if err == nil {
		err = r.check(context.WithoutCancel(ctx))
	}
	for _, d := range r.doors {
		r.res.DoorPeakRSSMiB = max(r.res.DoorPeakRSSMiB, d.Status("VmHWM:"))
	}
	r.stop()
	r.res.Seconds = time.Since(t0).Seconds()
	// The processes' logs are kept when something went wrong.
	if err != nil || !r.res.OK() {
		r.say("logs kept in %s (worker.log, door.log, temporal.log, postgres.log)", r.tmp)
	} else {
		_ = os.RemoveAll(r.tmp)
	}
	return r.res, err
}

// up starts the stack: PostgreSQL, Temporal, Slack, PKB, the front door
// and the worker, with the poller, the watcher and the token keeper.
func (r *run) up(ctx context.Context) error {
	var err error
	if r.pg, err = newPostgres(ctx, r.tmp); err != nil {
		return err
	}
	if err := r.pg.start(ctx); err != nil {
		return err
	}
	r.say("PostgreSQL of its own at 127.0.0.1:%d (data in %s)", r.pg.port, r.pg.data)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if r.st, err = store.Open(ctx, r.pg.URL(), key); err != nil {
		return err
	}
	rules, err := routing.ReadCSV(strings.NewReader(routing.DemoCSV))
	if err != nil {
		return err
	}
	if err := r.st.ReplaceRules(ctx, rules); err != nil {
		return err
	}

	r.slack = slackfake.New(nil)
	for _, rule := range rules {
		r.slack.AddChannel(rule.SlackChannel)
	}
	r.slack.AddChannel(triageChannel)
	r.slack.AddChannel(adminChannel)

	ports := make([]int, 1+r.o.Doors+r.o.Workers)
	for i := range ports {
		if ports[i], err = devserver.FreePort("127.0.0.1"); err != nil {
			return err
		}
	}
	var doorAddrs, workerAddrs []string
	for i := range r.o.Doors {
		doorAddrs = append(doorAddrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1+i])))
		r.doorURLs = append(r.doorURLs, "http://"+doorAddrs[i])
	}
	for i := range r.o.Workers {
		workerAddrs = append(workerAddrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1+r.o.Doors+i])))
	}
	doorAddr := doorAddrs[0]
	r.doorURL = r.doorURLs[0]
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	feedToken := hex.EncodeToString(tok)

	// PKB, with every message held back until the run releases it. The
	// simulated PAS acts on each request 3 s after Rebook reads it, and
	// sends its copy to the front door's feed, as an integration engine
	// would; what the feed misses, the watcher finds.
	r.ds = pkbsim.Pending(r.o.Requests)
	r.sim = pkbsim.New(pkbsim.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: r.doorURL + "/oauth/callback",
		AutoApprove: true, AutoPAS: 3 * time.Second, FeedURL: r.doorURL + feed.FHIRPath, FeedToken: feedToken, Seed: 1}, r.ds)
	r.sim.HoldMessagesFrom(1)
	pkbSrv := httptest.NewServer(r.sim)
	go func() { <-ctx.Done(); pkbSrv.Close() }()

	temporalAddr, namespace := "", "default"
	if r.o.Cluster != "" {
		if err := r.clusterScript(ctx, "up"); err != nil {
			return err
		}
		temporalAddr = r.o.Cluster
		if namespace, err = devserver.FreshNamespace(ctx, r.o.Cluster, "chaos-"); err != nil {
			return err
		}
		r.say("Temporal cluster at %s, namespace %s (each service its own process)", temporalAddr, namespace)
	} else {
		bin, err := devserver.Binary(ctx, r.o.RepoRoot)
		if err != nil {
			return err
		}
		tlog, err := os.Create(filepath.Join(r.tmp, "temporal.log"))
		if err != nil {
			return err
		}
		r.tsOpts = devserver.Options{Binary: bin, Port: ports[0], UIPort: -1, SearchAttributes: workflows.SearchAttributes,
			DBFile: filepath.Join(r.tmp, "temporal.db"), Log: tlog}
		if r.ts, err = devserver.Start(ctx, r.tsOpts); err != nil {
			return err
		}
		temporalAddr = r.ts.Address
		r.say("Temporal dev server at %s (persisted to %s)", r.ts.Address, r.tsOpts.DBFile)
	}
	r.namespace = namespace

	r.cfg = config.Config{
		TemporalAddress: temporalAddr, TemporalNamespace: namespace, DatabaseURL: r.pg.URL(),
		PKBBaseURL: pkbSrv.URL, PKBFHIRBaseURL: pkbSrv.URL + "/fhir", PKBClientID: clientID, PKBClientSecret: clientSecret,
		PKBRedirectURL: r.doorURL + "/oauth/callback", EncryptionKey: key,
		SlackBotToken: "xoxb-chaos", SlackAPIURL: r.slack.GetAPIURL(), SlackSigningSecret: signing,
		TriageChannel: triageChannel, AdminChannel: adminChannel, HTTPAddr: doorAddr, PublicURL: r.doorURL, FeedToken: feedToken,
		// A run of minutes: the watcher checks soon and often.
		PKBCallsPerHour: 360_000, FirstCheckAfter: 2 * time.Second, TriageSLAHours: 24,
	}
	if err := pkbauth.AutoGrant(ctx, app.OAuth(r.cfg), r.st); err != nil {
		return err
	}
	if r.tc, err = app.Temporal(ctx, r.cfg, slog.New(slog.DiscardHandler), nil); err != nil {
		return err
	}

	if r.o.Cluster != "" {
		if err := app.RegisterSearchAttributes(ctx, r.tc, namespace); err != nil {
			return err
		}
	}
	for i, addr := range doorAddrs {
		cfg := r.cfg
		cfg.HTTPAddr = addr
		d, err := child.Start(r.o.StarterBinary, []string{"serve", "--temporal-ui", "http://127.0.0.1:1"}, child.Env(cfg),
			filepath.Join(r.tmp, fmt.Sprintf("door%d.log", i+1)))
		if err != nil {
			return err
		}
		r.doors = append(r.doors, d)
		if err := r.healthy(ctx, d, r.doorURLs[i]+"/healthz"); err != nil {
			return err
		}
	}
	for i, addr := range workerAddrs {
		w, err := child.Start(r.o.WorkerBinary, []string{"--health-addr", addr}, child.Env(r.cfg),
			filepath.Join(r.tmp, fmt.Sprintf("worker%d.log", i+1)))
		if err != nil {
			return err
		}
		r.workers = append(r.workers, w)
		r.workerMetrics = append(r.workerMetrics, "http://"+addr+"/metrics")
		if err := r.healthy(ctx, w, r.workerMetrics[i]); err != nil {
			return err
		}
	}
	if err := schedules.Ensure(ctx, r.tc, time.Second, 2*time.Second); err != nil {
		return err
	}
	return app.StartTokenKeeper(ctx, r.tc, r.cfg)
}

// healthy waits for a process's page to answer 200.
func (r *run) healthy(ctx context.Context, p *child.Process, u string) error {
	err := child.Until(ctx, time.Minute, func() bool {
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		return fmt.Errorf("chaos: %s did not come up: %w; see %s", u, err, p.Log())
	}
	return nil
}

// stop stops what up started, whatever state the run left it in.
func (r *run) stop() {
	for _, p := range append(slices.Clone(r.workers), r.doors...) {
		p.Stop()
	}
	if r.tc != nil {
		r.tc.Close()
	}
	if r.ts != nil {
		r.ts.Stop()
	}
	if r.slack != nil {
		r.slack.Stop()
	}
	if r.st != nil {
		r.st.Close()
	}
	if r.pg != nil {
		r.pg.stop()
	}
}

// drive releases the messages at the rate asked while it applies the
// faults in turn, has staff close what only staff can, and then waits
// for every request to end.
func (r *run) drive(ctx context.Context) error {
	stamps := make([]int64, len(r.ds.Messages))
	for i, m := range r.ds.Messages {
		stamps[i] = m.Timestamp
	}
	slices.Sort(stamps)
	released := make(chan struct{})
	go func() {
		defer close(released)
		tick := time.NewTicker(time.Duration(float64(time.Second) / r.o.Rate))
		defer tick.Stop()
		for i := range stamps {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if i+1 < len(stamps) {
				r.sim.HoldMessagesFrom(stamps[i+1])
			} else {
				r.sim.HoldMessagesFrom(0)
			}
		}
	}()
	staffCtx, stopStaff := context.WithCancel(ctx)
	defer stopStaff()
	go r.staff(staffCtx)

	r.say("%d requests arriving at %.1f a second; a fault every %s", r.o.Requests, r.o.Rate, r.o.FaultEvery)
	faults := r.faults()
	for i := 0; ; i++ {
		select {
		case <-released:
			if i >= len(faults) {
				r.say("all %d released and every fault applied; faults off, waiting for every request to end", r.o.Requests)
				return r.finish(ctx)
			}
		default:
		}
		f := faults[i%len(faults)]
		if f.once && r.res.Faults[f.name] > 0 {
			continue
		}
		if err := r.apply(ctx, f); err != nil {
			return err
		}
	}
}

type fault struct {
	name string
	once bool
	// seen, if set, counts the calls the fault has refused: the fault
	// lasts until one more is counted (at most faultReachWait more), so
	// that it reaches Rebook however the pace of calls falls.
	seen func() int64
	// on breaks something and returns how to mend it, or nil if it mends
	// itself.
	on func(ctx context.Context) (func(context.Context) error, error)
}

// faults are applied in this order, over and over; the worker is killed
// between each of the others.
func (r *run) faults() []fault {
	pkb := func(f pkbsim.Faults) func(context.Context) (func(context.Context) error, error) {
		return func(context.Context) (func(context.Context) error, error) {
			r.sim.SetFaults(f)
			return func(context.Context) error { r.sim.SetFaults(pkbsim.Faults{}); return nil }, nil
		}
	}
	kill := fault{name: FaultWorkerKilled, on: func(ctx context.Context) (func(context.Context) error, error) {
		i := r.next(FaultWorkerKilled, len(r.workers))
		w := r.workers[i]
		w.Kill()
		// The next fault starts once the worker is back, so that it meets
		// work in flight.
		return func(ctx context.Context) error {
			t0 := time.Now()
			if err := w.Start(); err != nil {
				return err
			}
			err := r.healthy(ctx, w, r.workerMetrics[i])
			r.say("worker %d of %d back after %s", i+1, len(r.workers), time.Since(t0).Round(100*time.Millisecond))
			return err
		}, nil
	}}
	others := []fault{
		// PKB down: every answer 503.
		{name: FaultPKB5xx, on: pkb(pkbsim.Faults{ErrorRate: 1}), seen: r.pkbCounter(pkbsim.CounterFault5xx)},
		{name: FaultTemporalRestart, on: func(ctx context.Context) (func(context.Context) error, error) {
			r.ts.Stop()
			return func(ctx context.Context) error {
				var err error
				r.ts, err = devserver.Start(ctx, r.tsOpts)
				return err
			}, nil
		}},
		// PKB throttling: every answer 429.
		{name: FaultPKB429, on: pkb(pkbsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 2}), seen: r.pkbCounter(pkbsim.CounterFault429)},
		{name: FaultPostgresRestart, on: func(ctx context.Context) (func(context.Context) error, error) {
			r.pg.crash()
			return r.pg.start, nil
		}},
		{name: FaultPKBSlow, on: pkb(pkbsim.Faults{LatencyMS: 2000})},
		{name: FaultSlack429, on: func(context.Context) (func(context.Context) error, error) {
			r.slack.RateLimit(1, time.Second) // Slack refuses every call past a burst
			return func(context.Context) error { r.slack.RateLimit(0, 0); return nil }, nil
		}},
		{name: FaultGrantRevoked, once: true, on: func(ctx context.Context) (func(context.Context) error, error) {
			since := time.Now()
			r.sim.RevokeGrants()
			return func(ctx context.Context) error { return r.regrant(ctx, since) }, nil
		}},
	}
	if r.o.Cluster != "" {
		// The cluster's services instead of a dev server: each killed
		// (SIGKILL) and started again, in turn.
		others = slices.DeleteFunc(others, func(f fault) bool { return f.name == FaultTemporalRestart })
		for _, svc := range clusterServices {
			others = append(others, fault{name: "Temporal " + svc + " SIGKILL", on: func(ctx context.Context) (func(context.Context) error, error) {
				return nil, r.clusterScript(ctx, "restart", svc)
			}})
		}
	}
	if len(r.doors) > 1 {
		// A front door dies with presses and feed updates in flight; the
		// other keeps serving, as a load balancer's pool would.
		others = append(others, fault{name: FaultDoorKilled, on: func(ctx context.Context) (func(context.Context) error, error) {
			i := r.next(FaultDoorKilled, len(r.doors))
			d := r.doors[i]
			d.Kill()
			return func(ctx context.Context) error {
				if err := d.Start(); err != nil {
					return err
				}
				return r.healthy(ctx, d, r.doorURLs[i]+"/healthz")
			}, nil
		}})
	}
	var out []fault
	for _, f := range others {
		out = append(out, kill, f)
	}
	return out
}

// clusterServices are the cluster's services the run kills in turn.
var clusterServices = []string{"history", "matching", "frontend", "worker"}

// next is the index of the next of n that a kind of fault takes.
func (r *run) next(kind string, n int) int {
	i := r.turn[kind] % n
	r.turn[kind]++
	return i
}

// clusterScript runs tools/cluster.sh with args.
func (r *run) clusterScript(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(r.o.RepoRoot, "tools/cluster.sh"), args...)
	cmd.Dir = r.o.RepoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chaos: tools/cluster.sh %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// apply breaks something for half of FaultEvery, mends it, and waits the
// other half.
func (r *run) apply(ctx context.Context, f fault) error {
	r.say("fault: %s", f.name)
	var before int64
	if f.seen != nil {
		before = f.seen()
	}
	mend, err := f.on(ctx)
	if err != nil {
		return fmt.Errorf("chaos: %s: %w", f.name, err)
	}
	r.mu.Lock()
	r.res.Faults[f.name]++
	r.mu.Unlock()
	if err := sleep(ctx, r.o.FaultEvery/2); err != nil {
		return err
	}
	if f.seen != nil {
		if err := child.Until(ctx, faultReachWait, func() bool { return f.seen() > before }); err != nil && ctx.Err() == nil {
			r.say("fault: %s met no call in %s more", f.name, faultReachWait)
		}
	}
	if mend != nil {
		if err := mend(ctx); err != nil {
			return fmt.Errorf("chaos: mending %s: %w", f.name, err)
		}
	}
	return sleep(ctx, r.o.FaultEvery/2)
}

// faultReachWait is how much longer a fault with a count lasts, at most,
// for a call to meet it.
const faultReachWait = 15 * time.Second

// pkbCounter reads one of the simulator's counters.
func (r *run) pkbCounter(name string) func() int64 {
	return func() int64 { return r.sim.Counters()[name] }
}

// regrant does what an admin does when Rebook asks in Slack: follows the
// newest grant link posted since the revocation through PKB's consent
// (approved at once by the simulator) back to Rebook's callback.
func (r *run) regrant(ctx context.Context, since time.Time) error {
	var link string
	err := child.Until(ctx, 3*time.Minute, func() bool {
		for _, m := range r.slack.Roots(adminChannel) {
			if i := strings.Index(m.Text, r.doorURL+"/oauth/start"); i >= 0 && tsAfter(m.TS, since) {
				link = strings.Fields(m.Text[i:])[0]
				link = strings.TrimRight(link, ">|).")
			}
		}
		return link != ""
	})
	if err != nil {
		return fmt.Errorf("the admins were never asked to grant access again: %w", err)
	}
	r.say("the admins were asked to grant access %s after the revocation", time.Since(since).Round(time.Second))
	resp, body, err := clinician.ConfirmGrant(http.DefaultClient, link)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Access granted") {
		return fmt.Errorf("following the grant link: %s", resp.Status)
	}
	r.say("access granted again through the link posted in #%s", adminChannel)
	return nil
}

// tsAfter says whether a Slack timestamp ("seconds.micros") is after t.
func tsAfter(ts string, t time.Time) bool {
	sec, micro, _ := strings.Cut(ts, ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	us, _ := strconv.ParseInt(micro, 10, 64)
	return time.Unix(s, us*1000).After(t)
}

// staff close the triaged requests, as a triage team does: every 2 s
// they press Done on each triage card whose request is not yet closed,
// again if a press was lost to a fault.
func (r *run) staff(ctx context.Context) {
	pressed := map[string]time.Time{}
	for sleep(ctx, 2*time.Second) == nil {
		rows, err := r.st.AllRequests(ctx)
		if err != nil {
			continue // PostgreSQL is down: next time
		}
		closed := map[string]bool{}
		for _, row := range rows {
			if row.ClosedAt != nil {
				closed[row.WorkflowID] = true
			}
		}
		for _, m := range r.slack.Roots(triageChannel) {
			wf := m.Button(slackmsg.ActionDone)
			if wf == "" || closed[wf] || time.Since(pressed[wf]) < 20*time.Second {
				continue
			}
			door := r.doorURLs[r.next("press", len(r.doorURLs))]
			if _, err := slackfake.Press(http.DefaultClient, door+"/slack/interactions", signing, triageChannel, "UCHAOSSTAFF", slackmsg.ActionDone, wf, time.Now()); err == nil {
				pressed[wf] = time.Now()
				r.mu.Lock()
				r.res.StaffPresses++
				r.mu.Unlock()
			}
		}
	}
}

// finish waits, faults off, until every request's workflow has ended or
// the run's time is up.
func (r *run) finish(ctx context.Context) error {
	q := "WorkflowType = '" + workflows.AppointmentRequestWorkflow + "' AND ExecutionStatus = 'Running'"
	last := time.Now()
	// Once a second: the Temporal server is what the run is waiting on,
	// and visibility queries load it.
	err := child.UntilEvery(ctx, r.o.Timeout, time.Second, func() bool {
		resp, err := r.tc.CountWorkflow(ctx, r.countRequest(q))
		if err != nil {
			return false
		}
		total, err := r.tc.CountWorkflow(ctx, r.countRequest("WorkflowType = '"+workflows.AppointmentRequestWorkflow+"'"))
		if err != nil {
			return false
		}
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			r.say("%d requests still running", resp.GetCount())
		}
		// ContinuedAsNew runs count in the total: enough started, none
		// running.
		return resp.GetCount() == 0 && total.GetCount() >= int64(r.o.Requests)
	})
	if err != nil && ctx.Err() == nil {
		r.say("stopped waiting: %v", err)
	}
	return nil
}

// check compares what Temporal, Slack and PostgreSQL hold for each
// message PKB served.
func (r *run) check(ctx context.Context) error {
	c, p := r.sim.Counters(), &r.res
	p.PKB5xxAnswered, p.PKB429Answered, p.Slack429Answered = c[pkbsim.CounterFault5xx], c[pkbsim.CounterFault429], r.slack.RateLimited()
	cards := map[string]int{}
	for _, m := range r.slack.Roots("") {
		if len(m.Blocks.BlockSet) == 0 {
			continue // a notice names the request too
		}
		if i := strings.Index(m.Text, " RB-"); i >= 0 {
			cards[strings.TrimSuffix(strings.Fields(m.Text[i+1:])[0], ":")]++
		}
	}
	rows, err := r.st.AllRequests(ctx)
	if err != nil {
		return fmt.Errorf("chaos: reading the read model: %w", err)
	}
	byID := map[string]store.Request{}
	for _, row := range rows {
		byID[row.WorkflowID] = row
	}
	problem := func(format string, a ...any) {
		if len(p.Problems) < 20 {
			p.Problems = append(p.Problems, fmt.Sprintf(format, a...))
		}
	}
	for _, m := range r.ds.Messages {
		id := workflows.RequestWorkflowID(m.ID)
		ref := byID[id].Ref
		if ref == "" {
			ref = id // no row: named by its workflow
		}
		d, err := r.tc.DescribeWorkflowExecution(ctx, id, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			p.Lost++
			problem("%s: no workflow", ref)
			continue
		case err != nil:
			return fmt.Errorf("chaos: describing %s: %w", id, err)
		}
		info := d.GetWorkflowExecutionInfo()
		switch info.GetStatus() {
		case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			p.Completed++
		case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
			p.Open++
			problem("%s: still running (%s); PKB shows its appointment %s", ref, id, r.appointmentStatus(m.ID))
		default:
			p.Failed++
			problem("%s: ended %s", ref, info.GetStatus())
		}
		switch n := cards[ref]; {
		case n == 0:
			p.MissingCards++
			problem("%s: no card in Slack", ref)
		case n > 1:
			p.DuplicateCards++
			problem("%s: %d cards in Slack", ref, n)
		}
		var state string
		if f := info.GetSearchAttributes().GetIndexedFields()[workflows.RequestStateKey.GetName()]; f != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(f, &state)
		}
		row, ok := byID[id]
		switch {
		case !ok:
			p.ReadModelDisagrees++
			problem("%s: no row in PostgreSQL", ref)
		case row.ClosedAt == nil || row.State != state:
			p.ReadModelDisagrees++
			problem("%s: PostgreSQL says %q (closed %v), Temporal %q", ref, row.State, row.ClosedAt != nil, state)
		}
	}
	return nil
}

// appointmentStatus is what PKB holds of the appointment a message is
// about.
func (r *run) appointmentStatus(messageID string) string {
	now := r.sim.Dataset()
	for _, e := range now.Expect {
		if e.MessageID != messageID {
			continue
		}
		for _, a := range now.Appointments {
			if a.ID == e.AppointmentID {
				return fmt.Sprintf("%s %s (a %s request, %s)", a.ID, a.Status, e.RequestType, e.Kind)
			}
		}
		return "none (" + e.Kind + ")"
	}
	return "unknown"
}

func (r *run) countRequest(q string) *workflowservice.CountWorkflowExecutionsRequest {
	return &workflowservice.CountWorkflowExecutionsRequest{Namespace: r.namespace, Query: q}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
