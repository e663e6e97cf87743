package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/wfclient"
)

// runFakeSlack is `starter fake-slack`: the local stack's Slack as a
// process of its own (docker compose's demo profile), printing each post.
func runFakeSlack(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fake-slack", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:18090", "address to serve Slack's Web API on (set SLACK_API_URL to http://ADDR/)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	var fake *slackfake.Server
	fake = slackfake.New(func(m slackfake.Message) { printSlack(fake, m) })
	defer fake.Stop()
	rules, err := routing.ReadCSV(strings.NewReader(routing.DemoCSV))
	if err != nil {
		return err
	}
	for _, r := range rules {
		fake.AddChannel(r.SlackChannel)
	}
	fake.AddChannel(cfg.TriageChannel)
	fake.AddChannel(cfg.AdminChannel)
	// slacktest listens on loopback only: a proxy serves it on addr.
	target, err := url.Parse(fake.GetAPIURL())
	if err != nil {
		return err
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	slog.Info("fake Slack: posts are printed here", "SLACK_API_URL", "http://"+l.Addr().String()+"/", "channels", len(rules)+2)
	return serve(ctx, l, proxy)
}

// runSimGrant is `starter sim-grant`: the PKB grant taken from a simulator
// that approves without asking, for a demo without a browser. A real PKB
// refuses it: it asks a clinician.
func runSimGrant(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sim-grant", flag.ContinueOnError)
	wait := fs.Duration("wait", time.Minute, "how long to wait for the simulator and the database to answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.FromEnv(config.PKBBaseURL, config.PKBClientID, config.PKBClientSecret, config.PKBRedirectURL, config.EncryptionKey)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(*wait)
	for {
		err = simGrant(ctx, cfg)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if err != nil {
		return fmt.Errorf("%w (sim-grant works only against the simulator started with --auto-approve)", err)
	}
	fmt.Println("PKB access granted on the simulator; the TokenKeeper keeps it fresh")
	return nil
}

func simGrant(ctx context.Context, cfg config.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	st, err := store.Connect(ctx, cfg.DatabaseURL, cfg.EncryptionKey, cfg.OldEncryptionKeys...)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	if g, err := st.Grant(ctx, cfg.PKBClientID); err == nil && g.Status == store.GrantHealthy {
		return nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := pkbauth.AutoGrant(ctx, app.OAuth(cfg), st); err != nil {
		return err
	}
	// A TokenKeeper already waiting for a grant hears of it at once, as
	// from the grant's callback page.
	tc, err := app.Temporal(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	defer tc.Close()
	err = wfclient.Client{Temporal: tc}.GrantReceived(ctx, cfg.PKBClientID)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil // no keeper yet: the worker starts it on a healthy grant
	}
	return err
}
