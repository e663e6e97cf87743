package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/feed"
	"github.com/rebookhq/rebook/internal/frontdoor"
)

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	ui := fs.String("temporal-ui", "http://127.0.0.1:8233", "Temporal Web UI base URL, for links and the codec's CORS origin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.FromEnv(config.EncryptionKey)
	if err != nil {
		return err
	}
	if err := cfg.RefuseShipped(); err != nil {
		return err
	}
	if cfg.SlackBotToken == "" && cfg.TeamsAppID == "" {
		return app.ErrNoNotifier
	}
	if cfg.SlackBotToken != "" && cfg.SlackSigningSecret == "" && cfg.SlackAppToken == "" {
		return errors.New("config: SLACK_SIGNING_SECRET is not set (or set SLACK_APP_TOKEN for Socket Mode)")
	}
	return serveFrontDoor(ctx, cfg, *ui, slog.Default())
}

// serveFrontDoor runs `starter serve` until ctx ends.
func serveFrontDoor(ctx context.Context, cfg config.Config, ui string, log *slog.Logger) error {
	conns, err := app.Connect(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer conns.Close()
	if err := conns.Store.CheckSchema(ctx); err != nil {
		return err
	}
	// One feed serves both ways in (FHIR over HTTPS, HL7 over MLLP), so
	// its counts are the whole feed's.
	fd := app.Feed(cfg, conns.Store, conns.Temporal, log, conns.Metrics)
	h, ih, err := app.FrontDoor(ctx, cfg, conns.Store, conns.Temporal, fd, conns.Metrics, ui, log)
	if err != nil {
		return err
	}
	if cfg.SlackAppToken != "" {
		go func() {
			if err := ih.RunSocketMode(ctx, cfg.SlackBotToken, cfg.SlackAppToken, cfg.SlackAPIURL); ctx.Err() == nil {
				log.Error("slack socket mode stopped", "err", err)
			}
		}()
		log.Info("slack interactions over Socket Mode")
	}
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	l = frontdoor.LimitConns(l, frontdoor.MaxConns)
	mllpDone := make(chan error, 1)
	mctx, stopMLLP := context.WithCancel(ctx)
	defer stopMLLP()
	if cfg.MLLPAddr != "" {
		ml, how, err := feed.ListenMLLP(cfg.MLLPAddr, feed.MLLPSecurity{
			CertFile: cfg.MLLPTLSCert, KeyFile: cfg.MLLPTLSKey, ClientCAFile: cfg.MLLPClientCA, Plaintext: cfg.MLLPPlaintext,
		})
		if err != nil {
			_ = l.Close()
			return fmt.Errorf("listen on %s (%s): %w", cfg.MLLPAddr, config.MLLPAddr, err)
		}
		if cfg.MLLPTLSCert == "" {
			log.Warn("PAS feed: HL7 v2 over MLLP without TLS", "addr", ml.Addr().String(), "security", how)
		} else {
			log.Info("PAS feed: HL7 v2 over MLLP", "addr", ml.Addr().String(), "security", how)
		}
		go func() { mllpDone <- fd.ServeMLLP(mctx, ml) }()
	} else {
		close(mllpDone)
	}
	if cfg.FeedToken != "" {
		log.Info("PAS feed: FHIR Appointment", "path", "POST /feed/fhir/Appointment")
	}
	if cfg.MetricsAddr != "" {
		// The scraper's own address, off the public one.
		ml, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = l.Close()
			return fmt.Errorf("listen on %s (%s): %w", cfg.MetricsAddr, config.MetricsAddr, err)
		}
		ml = frontdoor.LimitConns(ml, 8) // a scraper or two
		log.Info("metrics", "addr", ml.Addr().String(), "token", cfg.MetricsToken != "")
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = serve(mctx, ml, app.MetricsHTTP(cfg, conns.Metrics)) }()
	}
	log.Info("front door listening", "addr", l.Addr().String(), "public_url", cfg.PublicURL)
	err = serve(ctx, l, h)
	stopMLLP()
	ih.Wait()
	if merr := <-mllpDone; err == nil {
		err = merr
	}
	return err
}
