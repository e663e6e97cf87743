package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/devserver"
	"github.com/rebookhq/rebook/internal/store"
)

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var f simFlags
	stateDir := fs.String("state-dir", ".rebook-dev", "where the dev stack keeps Temporal's SQLite file, logs and the dev encryption key")
	uiPort := fs.Int("ui-port", 8233, "Temporal Web UI port")
	fs.StringVar(&f.addr, "sim-addr", "127.0.0.1:18080", "PKB simulator address")
	fs.DurationVar(&f.autoPAS, "auto-pas", 20*time.Second, "simulated PAS acts on each request this long after Rebook reads it (0: off)")
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
	st, err := store.Open(pctx, cfg.DatabaseURL, cfg.EncryptionKey)
	cancel()
	if err != nil {
		return fmt.Errorf("%w\n  Is PostgreSQL running? Locally: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; or set DATABASE_URL", err)
	}
	st.Close()
	slog.Info("postgres reachable and migrated")

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
	temporal, err := devserver.Start(ctx, devserver.Options{
		Binary: bin, Port: port, UIPort: *uiPort,
		DBFile: filepath.Join(*stateDir, "temporal.db"), Log: logf,
	})
	if err != nil {
		return err
	}
	defer func() {
		slog.Info("stopping Temporal dev server")
		temporal.Stop()
	}()

	sim, err := f.server(cfg, slog.Default())
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("PKB simulator: listen on %s: %w", f.addr, err)
	}
	simCtx, stopSim := context.WithCancel(ctx)
	simDone := make(chan error, 1)
	go func() { simDone <- serve(simCtx, l, sim) }()
	defer func() {
		stopSim()
		<-simDone
		slog.Info("PKB simulator stopped")
	}()

	fmt.Printf(`
Rebook dev stack is up. Ctrl-C stops everything it started.

  Temporal Web UI    %s
  Temporal gRPC      %s  (namespace %s)
  PKB simulator      %s  (FHIR at %s, admin API at %s/admin)
  PostgreSQL         %s
  State and logs     %s

`, temporal.UIURL, temporal.Address, cfg.TemporalNamespace, cfg.PKBBaseURL, cfg.PKBFHIRBaseURL, cfg.PKBBaseURL, redactURL(cfg.DatabaseURL), *stateDir)

	select {
	case <-ctx.Done():
		fmt.Println("\nshutting down")
		return nil
	case <-temporal.Exited():
		return errors.New("the Temporal dev server stopped unexpectedly; see " + filepath.Join(*stateDir, "temporal.log"))
	case err := <-simDone:
		simDone <- err
		return fmt.Errorf("PKB simulator stopped: %v", err)
	}
}

// devDefaults points Rebook at the simulator and gives it a local
// encryption key, wherever the environment leaves a setting unset.
func devDefaults(cfg *config.Config, simAddr, stateDir string) error {
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
	if cfg.EncryptionKey == nil {
		key, err := devKey(filepath.Join(stateDir, "encryption.key"))
		if err != nil {
			return err
		}
		cfg.EncryptionKey = key
	}
	return nil
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
