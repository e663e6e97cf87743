package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/frontdoor"
	"github.com/rebookhq/rebook/internal/subject"
)

// The simulator's client when PKB_* are unset; .env.example uses the same.
const (
	simDefaultClientID = "rebook-local"
	simDefaultRedirect = "http://127.0.0.1:8080/oauth/callback"
)

var simDefaultClientSecret = config.Shipped[config.PKBClientSecret]

type simFlags struct {
	addr        string
	scenario    string
	seed        uint64
	requests    int
	autoApprove bool
	autoPAS     time.Duration
	tokenTTL    time.Duration
	sessionTTL  time.Duration
	pageSize    int
	apptsFrom   string
	orgWide     bool
	feedURL     string
	feedToken   string
}

func (f *simFlags) register(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&f.scenario, prefix+"scenario", "demo", "scenario to load: demo, small or empty")
	fs.Uint64Var(&f.seed, prefix+"seed", 1, "seed for the scenario generator and fault dice")
	fs.IntVar(&f.requests, prefix+"requests", 0, "number of patient messages (0: the scenario's default; demo has 240)")
	fs.DurationVar(&f.tokenTTL, prefix+"token-ttl", 1800*time.Second, "access token lifetime")
	fs.DurationVar(&f.sessionTTL, prefix+"session-ttl", 0, "grant session lifetime; 0 means unlimited")
	fs.IntVar(&f.pageSize, prefix+"page-size", 100, "messages per page")
	fs.StringVar(&f.apptsFrom, prefix+"appointments-from", "2027-03-01", "first day appointments are booked on (YYYY-MM-DD, UK time); they span 60 days")
	fs.StringVar(&f.feedURL, prefix+"pas-feed-url", "", "also send each PAS update as a FHIR Appointment to this URL (Rebook's POST /feed/fhir/Appointment), as an integration engine would")
	fs.StringVar(&f.feedToken, prefix+"pas-feed-token", "", "bearer secret for --pas-feed-url (REBOOK_FEED_TOKEN)")
	fs.BoolVar(&f.orgWide, prefix+"org-wide-search", false, "emulate a server that answers Appointment searches naming no patient (PKB documents the patient as required and answers 400)")
}

// listen builds the simulator and opens its address.
func (f *simFlags) listen(cfg config.Config) (*pkbsim.Server, net.Listener, error) {
	sim, err := f.server(cfg, slog.Default())
	if err != nil {
		return nil, nil, err
	}
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("PKB simulator: listen on %s: %w", f.addr, err)
	}
	return sim, l, nil
}

func (f *simFlags) server(cfg config.Config, log *slog.Logger) (*pkbsim.Server, error) {
	n, ok := pkbsim.Scenarios[f.scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (demo, small or empty)", f.scenario)
	}
	if f.requests > 0 {
		n = f.requests
	}
	from, err := time.ParseInLocation("2006-01-02", f.apptsFrom, subject.London())
	if err != nil {
		return nil, fmt.Errorf("--appointments-from must be YYYY-MM-DD")
	}
	ds := pkbsim.Generate(pkbsim.ScenarioOptions{
		Name: f.scenario, Seed: f.seed, Requests: n, AppointmentsFrom: from,
		// The last message arrives a minute before start-up, so requests
		// look fresh whenever the simulator is started.
		MessagesUntil: time.Now().Add(-time.Minute).Truncate(time.Second),
	})
	return pkbsim.New(pkbsim.Config{
		ClientID: cfg.PKBClientID, ClientSecret: cfg.PKBClientSecret, RedirectURL: cfg.PKBRedirectURL,
		AccessTTL: f.tokenTTL, SessionTTL: f.sessionTTL, PageSize: f.pageSize,
		AutoApprove: f.autoApprove, AutoPAS: f.autoPAS, Seed: f.seed, Logger: log, OrgWideSearch: f.orgWide,
		FeedURL: f.feedURL, FeedToken: f.feedToken,
	}, ds), nil
}

// simClient fills in the simulator's OAuth client where PKB_* are unset, so
// `starter sim` runs with no settings at all.
func simClient(cfg *config.Config) {
	if cfg.PKBClientID == "" {
		cfg.PKBClientID = simDefaultClientID
		slog.Info("PKB_CLIENT_ID not set: the simulator registers the local client", "client_id", cfg.PKBClientID)
	}
	if cfg.PKBClientSecret == "" {
		cfg.PKBClientSecret = simDefaultClientSecret
	}
	if cfg.PKBRedirectURL == "" {
		cfg.PKBRedirectURL = simDefaultRedirect
	}
}

func runSim(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	var f simFlags
	fs.StringVar(&f.addr, "addr", "127.0.0.1:18080", "address to listen on")
	fs.BoolVar(&f.autoApprove, "auto-approve", false, "approve authorization requests without showing the page")
	fs.DurationVar(&f.autoPAS, "auto-pas", 0, "act as the trust's PAS on each request this long after it is first read (0: off)")
	f.register(fs, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	simClient(&cfg)
	sim, l, err := f.listen(cfg)
	if err != nil {
		return err
	}
	base := "http://" + l.Addr().String()
	fmt.Fprintf(os.Stderr, "PKB simulator listening\n  PKB_BASE_URL=%s\n  PKB_FHIR_BASE_URL=%s/fhir\n  authorize:  %s/apiAuthorize.action\n  admin API:  %s/admin (docs/simulator.md)\n  client_id:  %s\n  redirect:   %s\n",
		base, base, base, base, cfg.PKBClientID, cfg.PKBRedirectURL)
	return serve(ctx, l, sim)
}

// serve runs h on l until ctx ends, then drains for up to 5 s.
func serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := frontdoor.Server(h)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
