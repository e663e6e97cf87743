package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/replay"
)

// runReplay is `starter replay`: before a deploy, replay the namespace's
// histories (or recorded ones) on this build and name every one it could
// not carry on.
func runReplay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	query := fs.String("query", "", "visibility query selecting the workflows (default: every workflow on Rebook's task queue, "+replay.DefaultQuery+")")
	limit := fs.Int("limit", 0, "stop after this many histories (0: all the query selects)")
	dir := fs.String("dir", "", "replay recorded histories under this directory instead of a namespace's (each directory with a key file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: quote the query, as in --query \"WorkflowType = 'AppointmentRequest'\"", fs.Args())
	}
	var results []replay.Result
	var err error
	if *dir != "" {
		results, err = replay.Dir(*dir, nil)
	} else {
		cfg, cerr := config.FromEnv(config.EncryptionKey)
		if cerr != nil {
			return cerr
		}
		tc, dc, cerr := sealedTemporal(ctx, cfg)
		if cerr != nil {
			return cerr
		}
		defer tc.Close()
		fmt.Fprintf(os.Stderr, "replaying %s histories in namespace %s on this build\n", orAll(*query), cfg.TemporalNamespace)
		// A count that redraws itself, on a terminal only.
		fi, _ := os.Stderr.Stat()
		tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
		n := 0
		results, err = replay.Live(ctx, tc, dc, replay.Options{Namespace: cfg.TemporalNamespace, Query: *query, Limit: *limit,
			Each: func(replay.Result) {
				if n++; tty && n%50 == 0 {
					fmt.Fprintf(os.Stderr, "\r%d replayed", n)
				}
			}})
		if tty && n >= 50 {
			fmt.Fprintln(os.Stderr)
		}
	}
	if failed := printReplay(os.Stdout, results); failed > 0 {
		return fmt.Errorf("%d of %d histories do not replay on this build: do not deploy it until each change is behind workflow.GetVersion", failed, len(results))
	}
	return err
}

// sealedTemporal is a Temporal client for an operator's command, with the
// data converter that opens Rebook's sealed payloads.
func sealedTemporal(ctx context.Context, cfg config.Config) (client.Client, converter.DataConverter, error) {
	dc, err := codec.DataConverter(cfg.EncryptionKey, cfg.OldEncryptionKeys...)
	if err != nil {
		return nil, nil, err
	}
	tc, err := app.Temporal(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	return tc, dc, err
}

func orAll(q string) string {
	if q == "" {
		return "all Rebook"
	}
	return "the " + q
}

// printReplay prints each history that failed and a summary; it returns how
// many failed.
func printReplay(w io.Writer, results []replay.Result) int {
	failed, byType := 0, map[string]int{}
	for _, r := range results {
		byType[r.Type]++
		if r.Err == nil {
			continue
		}
		failed++
		why := "error"
		if replay.Nondeterministic(r.Err) {
			why = "NON-DETERMINISTIC"
		}
		id := r.WorkflowID
		if r.RunID != "" {
			id += " run " + r.RunID
		}
		if r.Source != "" && strings.HasSuffix(r.Source, ".json") {
			id = r.Source
		}
		msg, _, _ := strings.Cut(r.Err.Error(), "\n")
		fmt.Fprintf(w, "FAIL %s %s (%s): %s\n", why, id, r.Type, msg)
	}
	fmt.Fprintf(w, "%d replayed, %d failed", len(results), failed)
	for _, t := range slices.Sorted(maps.Keys(byType)) {
		fmt.Fprintf(w, "; %s %d", t, byType[t])
	}
	fmt.Fprintln(w)
	if len(results) == 0 {
		fmt.Fprintln(w, "nothing matched the query")
	}
	return failed
}
