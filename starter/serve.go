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
	"github.com/rebookhq/rebook/internal/frontdoor"
	"github.com/rebookhq/rebook/internal/grantflow"
	"github.com/rebookhq/rebook/internal/interactions"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

func runServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	ui := fs.String("temporal-ui", "http://127.0.0.1:8233", "Temporal Web UI base URL, for links and the codec's CORS origin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.FromEnv(config.EncryptionKey, config.SlackBotToken)
	if err != nil {
		return err
	}
	if cfg.SlackSigningSecret == "" && cfg.SlackAppToken == "" {
		return errors.New("config: SLACK_SIGNING_SECRET is not set (or set SLACK_APP_TOKEN for Socket Mode)")
	}
	return serveFrontDoor(ctx, cfg, *ui, slog.Default())
}

// serveFrontDoor runs `starter serve` until ctx ends.
func serveFrontDoor(ctx context.Context, cfg config.Config, ui string, log *slog.Logger) error {
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.EncryptionKey)
	if err != nil {
		return err
	}
	defer st.Close()
	tc, err := app.Temporal(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	ih := &interactions.Handler{Temporal: tc, Slack: app.Slack(cfg), SigningSecret: cfg.SlackSigningSecret, Log: log}
	var grant *grantflow.Handler
	if cfg.PKBBaseURL != "" && cfg.PKBClientID != "" && cfg.PKBRedirectURL != "" {
		grant = &grantflow.Handler{Store: st, OAuth: app.OAuth(cfg), Log: log, Granted: func(ctx context.Context, clientID string) error {
			return tc.SignalWorkflow(ctx, workflows.TokenKeeperID(clientID), "", workflows.SignalGrantReceived, nil)
		}}
	} else {
		log.Warn("PKB_BASE_URL, PKB_CLIENT_ID or PKB_REDIRECT_URL not set: /oauth/start is off")
	}
	h, err := frontdoor.New(frontdoor.Options{
		Store: st, Interactions: ih, Grant: grant, EncryptionKey: cfg.EncryptionKey, CodecOrigin: ui,
		TemporalUI: ui, Namespace: cfg.TemporalNamespace, Log: log,
	})
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
	log.Info("front door listening", "addr", l.Addr().String(), "public_url", cfg.PublicURL)
	err = serve(ctx, l, h)
	ih.Wait()
	return err
}
