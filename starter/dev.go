package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"github.com/rebookhq/rebook/internal/feed"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/devserver"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/schedules"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var f simFlags
	stateDir := fs.String("state-dir", ".rebook-dev", "where the dev stack keeps Temporal's SQLite file, logs and the dev encryption key")
	uiPort := fs.Int("ui-port", 8233, "Temporal Web UI port")
	fs.StringVar(&f.addr, "sim-addr", "127.0.0.1:18080", "PKB simulator address")
	fs.DurationVar(&f.autoPAS, "auto-pas", 20*time.Second, "simulated PAS acts on each request this long after Rebook reads it (0: off)")
	pollEvery := fs.Duration("poll-every", 10*time.Second, "how often PollMessages runs")
	watchEvery := fs.Duration("watch-every", 15*time.Second, "how often WatchAppointments runs")
	workerAddr := fs.String("worker-addr", "127.0.0.1:8081", "the worker's GET /healthz and GET /metrics")
	f.register(fs, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.autoApprove = true

	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := devserver.RepoRoot(wd)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(*stateDir) {
		*stateDir = filepath.Join(root, *stateDir)
	}
	if err := os.MkdirAll(*stateDir, 0o700); err != nil {
		return err
	}

	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	if err := devDefaults(&cfg, f.addr, *stateDir); err != nil {
		return err
	}

	// Postgres first: it is the one piece dev does not start itself.
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	st, err := store.Open(pctx, cfg.DatabaseURL, cfg.EncryptionKey, cfg.OldEncryptionKeys...)
	cancel()
	if err != nil {
		return fmt.Errorf("%w\n  Is PostgreSQL running? Locally: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; or set DATABASE_URL", err)
	}
	defer st.Close()
	rules, err := st.Rules(ctx)
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		if rules, err = routing.ReadCSV(strings.NewReader(routing.DemoCSV)); err != nil {
			return err
		}
		if err := importRules(ctx, st, rules, "starter dev"); err != nil {
			return err
		}
		slog.Info("seeded the demo routing rules (starter rules list)")
	}
	slog.Info("postgres reachable and migrated")

	if cfg.SlackBotToken == "" {
		var fake *slackfake.Server
		fake = slackfake.New(func(m slackfake.Message) { printSlack(fake, m) })
		defer fake.Stop()
		for _, r := range rules {
			fake.AddChannel(r.SlackChannel)
		}
		fake.AddChannel(cfg.TriageChannel)
		fake.AddChannel(cfg.AdminChannel)
		cfg.SlackBotToken, cfg.SlackAPIURL = config.Shipped[config.SlackBotToken], fake.GetAPIURL()
		if cfg.SlackSigningSecret == "" {
			cfg.SlackSigningSecret = config.Shipped[config.SlackSigningSecret]
		}
		slog.Info("SLACK_BOT_TOKEN not set: Slack messages are printed here instead")
	}

	_, portStr, err := net.SplitHostPort(cfg.TemporalAddress)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portStr)
	slog.Info("building or locating the pinned Temporal CLI (first run builds it: a minute or two)")
	bin, err := devserver.Binary(ctx, root)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(*stateDir, "temporal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = logf.Close() }()
	// A new Temporal state beside an old read model: the poll would take
	// every message it recorded before as already started and skip it.
	if _, err := os.Stat(filepath.Join(*stateDir, "temporal.db")); errors.Is(err, os.ErrNotExist) {
		if n, err := st.CountRequests(ctx); err == nil && n > 0 {
			slog.Warn("Temporal's state is new but the database already holds requests from an earlier run: "+
				"their messages will not be started again; for a clean demo stop and drop the database (psql -c 'DROP DATABASE rebook') first",
				"requests", n)
		}
	}
	temporal, err := devserver.Start(ctx, devserver.Options{
		Binary: bin, Port: port, UIPort: *uiPort,
		DBFile: filepath.Join(*stateDir, "temporal.db"), Log: logf,
		SearchAttributes: workflows.SearchAttributes, UICodecEndpoint: cfg.PublicURL + "/codec",
	})
	if err != nil {
		return err
	}
	defer func() {
		slog.Info("stopping Temporal dev server")
		temporal.Stop()
	}()

	// The simulated PAS sends its copies to the front door's feed, as a
	// trust's integration engine would, unless told otherwise.
	if f.feedURL == "" {
		f.feedURL, f.feedToken = cfg.PublicURL+feed.FHIRPath, cfg.FeedToken
	}
	sim, l, err := f.listen(cfg)
	if err != nil {
		return err
	}
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- serve(simCtx, l, sim) }()
	defer func() {
		stopSim()
		<-simDone
		slog.Info("PKB simulator stopped")
	}()

	if err := pkbauth.AutoGrant(ctx, app.OAuth(cfg), st); err != nil {
		return fmt.Errorf("granting access on the simulator: %w", err)
	}
	wm := app.Metrics(cfg, st, slog.Default())
	tc, err := app.Temporal(ctx, cfg, slog.Default(), wm)
	if err != nil {
		return err
	}
	defer tc.Close()
	// Search attributes already exist on a dev server that was started
	// before with this state; registering is a no-op then.
	if err := app.RegisterSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		return err
	}
	if _, err := app.Retention(ctx, tc, cfg.TemporalNamespace, app.TemporalRetention); err != nil {
		return err
	}
	w, err := app.Worker(cfg, st, tc, app.WorkerOptions{Metrics: wm})
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	wl, err := net.Listen("tcp", *workerAddr)
	if err != nil {
		return fmt.Errorf("worker's health and metrics: listen on %s: %w", *workerAddr, err)
	}
	wctx, stopWorkerHTTP := context.WithCancel(ctx)
	defer stopWorkerHTTP()
	go func() { _ = serve(wctx, wl, app.WorkerHTTP(cfg, st, tc, wm)) }()
	defer func() {
		w.Stop()
		slog.Info("worker stopped")
	}()
	doorCtx, stopDoor := context.WithCancel(ctx)
	doorDone := make(chan error, 1)
	go func() { doorDone <- serveFrontDoor(doorCtx, cfg, temporal.UIURL, slog.Default()) }()
	defer func() {
		stopDoor()
		<-doorDone
	}()
	if err := schedules.Ensure(ctx, tc, *pollEvery, *watchEvery); err != nil {
		return err
	}
	if err := app.StartTokenKeeper(ctx, tc, cfg); err != nil {
		return err
	}

	fmt.Printf(`
Rebook dev stack is up. Ctrl-C stops everything it started.

  Temporal Web UI    %s
  Temporal gRPC      %s  (namespace %s)
  PKB simulator      %s  (FHIR at %s, admin API at %s/admin)
  PostgreSQL         %s
  Dashboard          %s/requests  (sign in as "dev", operator and admin, or "cardiology", staff of the cardiology teams)
  Front door         %s  (Slack interactions, /codec for a signed-in operator, /signin)
  Worker             task queue %s; schedules poll every %s, watch every %s
  Metrics            %s/metrics (front door), http://%s/metrics (worker)
  State and logs     %s

Requests in the Web UI: %s/namespaces/%s/workflows?query=WorkflowType%%3D%%22AppointmentRequest%%22
Payloads are encrypted; the Web UI shows them decoded to an operator: sign in to the dashboard as "dev"
in the same browser, then in the Web UI's Codec Server settings turn on "Include cross-origin credentials".

`, temporal.UIURL, temporal.Address, cfg.TemporalNamespace, cfg.PKBBaseURL, cfg.PKBFHIRBaseURL, cfg.PKBBaseURL, redactURL(cfg.DatabaseURL),
		cfg.PublicURL, cfg.PublicURL, workflows.TaskQueue, *pollEvery, *watchEvery, cfg.PublicURL, *workerAddr, *stateDir, temporal.UIURL, cfg.TemporalNamespace)

	select {
	case <-ctx.Done():
		fmt.Println("\nshutting down")
		return nil
	case <-temporal.Exited():
		return errors.New("the Temporal dev server stopped unexpectedly; see " + filepath.Join(*stateDir, "temporal.log"))
	case err := <-simDone:
		simDone <- err
		return fmt.Errorf("PKB simulator stopped: %v", err)
	case err := <-doorDone:
		doorDone <- err
		return fmt.Errorf("front door stopped: %v", err)
	}
}

// printSlack shows what Rebook would post, when no real Slack is set up.
func printSlack(fake *slackfake.Server, m slackfake.Message) {
	what := "post"
	switch {
	case m.Edits > 0:
		what = "edit"
	case m.ThreadTS != "":
		what = "reply"
	}
	fmt.Printf("[slack %s #%s] %s\n", what, fake.Name(m.Channel), m.Text)
}

// devDefaults points Rebook at the simulator and gives it a local
// encryption key, wherever the environment leaves a setting unset.
func devDefaults(cfg *config.Config, simAddr, stateDir string) error {
	cfg.Demo = true // the simulator's client and the fake Slack's secrets are the shipped ones
	if cfg.PKBBaseURL == "" {
		cfg.PKBBaseURL = "http://" + simAddr
	}
	if cfg.PKBFHIRBaseURL == "" {
		cfg.PKBFHIRBaseURL = cfg.PKBBaseURL + "/fhir"
	}
	if cfg.PKBRedirectURL == "" {
		cfg.PKBRedirectURL = cfg.PublicURL + "/oauth/callback"
	}
	simClient(cfg)
	// The demo's simulated PAS acts within seconds: check sooner and
	// spend more than a trust's PKB budget would allow, unless set.
	if os.Getenv(config.FirstCheckAfter) == "" {
		cfg.FirstCheckAfter = 30 * time.Second
	}
	if os.Getenv(config.PKBCallsPerHour) == "" {
		cfg.PKBCallsPerHour = 36_000
	}
	if cfg.FeedToken == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		cfg.FeedToken = hex.EncodeToString(b)
	}
	// Sign-in without an identity provider: an operator and admin, and a
	// member of one demo team, unless set.
	if cfg.LocalUsers == nil && cfg.OIDCIssuer == "" {
		cfg.LocalUsers = devUsers
	}
	if cfg.EncryptionKey == nil {
		key, err := devKey(filepath.Join(stateDir, "encryption.key"))
		if err != nil {
			return err
		}
		cfg.EncryptionKey = key
	}
	return nil
}

// devUsers sign in to the local dashboard (REBOOK_LOCAL_USERS replaces
// them).
var devUsers = []signin.LocalUser{
	{Name: "dev", Roles: []string{signin.Operator, signin.Admin}},
	{Name: "cardiology", Roles: []string{signin.Staff}, Teams: []string{"Cardiology bookings", "Cardiology cancellations"}},
}

// devKey reads the local stack's key, making one on first use. Production
// sets REBOOK_ENCRYPTION_KEY instead.
func devKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		return config.DecodeKey(strings.TrimSpace(string(b)))
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return key, nil
}

func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.Index(s[i+3:], "@"); j >= 0 {
			userinfo := s[i+3 : i+3+j]
			if k := strings.Index(userinfo, ":"); k >= 0 {
				return s[:i+3] + userinfo[:k] + ":***" + s[i+3+j:]
			}
		}
	}
	return s
}
