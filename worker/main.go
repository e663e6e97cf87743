// Command worker is Rebook's Temporal worker: the workflows and their
// activities. It has no inbound HTTP beyond its health check; run as many
// as you like.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/workflows"
)

func main() {
	health := flag.String("health-addr", "127.0.0.1:8081", "address for GET /healthz and GET /metrics (empty: none)")
	migrate := flag.Bool("migrate", false, "bring the database schema up to date first (needs DDL rights; `starter migrate` is the usual way)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(log, *health, *migrate); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, healthAddr string, migrate bool) error {
	cfg, err := config.FromEnv(app.WorkerNeeds...)
	if err != nil {
		return err
	}
	if err := cfg.RefuseShipped(); err != nil {
		return err
	}
	conns, err := app.Connect(context.Background(), cfg, log, migrate)
	if err != nil {
		return err
	}
	defer conns.Close()
	w, err := app.Worker(cfg, conns.Store, conns.Temporal, app.WorkerOptions{Metrics: conns.Metrics})
	if err != nil {
		return err
	}
	// A keeper that was terminated, or never started, is started here: no
	// one has to run `starter schedule` to bring PKB access back.
	if cfg.PKBClientID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := app.StartTokenKeeper(ctx, conns.Temporal, cfg)
		cancel()
		if err != nil {
			return err
		}
	}
	if healthAddr != "" {
		l, err := net.Listen("tcp", healthAddr)
		if err != nil {
			return fmt.Errorf("health check: listen on %s: %w", healthAddr, err)
		}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: app.WorkerHTTP(cfg, conns.Store, conns.Temporal, conns.Metrics)}
		go func() { _ = srv.Serve(l) }()
		defer func() { _ = srv.Close() }()
	}
	log.Info("worker started", "task_queue", workflows.TaskQueue, "temporal", cfg.TemporalAddress, "namespace", cfg.TemporalNamespace)
	// Run returns on SIGINT or SIGTERM once in-flight tasks have stopped.
	err = w.Run(worker.InterruptCh())
	log.Info("worker stopped")
	return err
}
