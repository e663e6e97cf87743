package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/reprocess"
)

// runReprocess is `starter reprocess`: put failed request workflows back
// to work in bulk, after a fix is deployed.
func runReprocess(ctx context.Context, args []string) error {
	return reprocessCmd(ctx, args, os.Stdout, os.Stderr, nil)
}

// reprocessCmd is runReprocess with its output and configuration given
// (tests pass cfg; nil reads the environment).
func reprocessCmd(ctx context.Context, args []string, stdout, stderr io.Writer, cfg *config.Config) error {
	fs := flag.NewFlagSet("reprocess", flag.ContinueOnError)
	fs.SetOutput(stderr)
	query := fs.String("query", "", "visibility query selecting the request workflows (instead of the flags below)")
	statuses := fs.String("status", "Failed", "comma-separated: "+strings.Join(reprocess.Statuses, ", "))
	from := fs.String("from", "", "started on or after (2006-01-02 or RFC 3339)")
	to := fs.String("to", "", "started before (2006-01-02 or RFC 3339)")
	typ := fs.String("type", "", "request type: cancel or change")
	specialty := fs.String("specialty", "", "specialty, as on the request")
	failure := fs.String("failure", "", "only runs whose failure type or message contains this (e.g. PKB:server, terminated)")
	mode := fs.String("mode", reprocess.Reset, "reset: to the last good point, re-running the step that failed; restart: a new run from the PKB message")
	dry := fs.Bool("dry-run", false, "list what would be done, and do nothing")
	perSecond := fs.Float64("rate", 2, "at most this many resets or restarts a second")
	limit := fs.Int("limit", 0, "at most this many workflows (0: all selected)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (quote the query)", fs.Args())
	}
	if *mode != reprocess.Reset && *mode != reprocess.Restart {
		return fmt.Errorf("--mode %q: use %s or %s", *mode, reprocess.Reset, reprocess.Restart)
	}
	q := *query
	if q == "" {
		f := reprocess.Filter{Type: *typ, Specialty: *specialty}
		for _, s := range strings.Split(*statuses, ",") {
			if s = strings.TrimSpace(s); s != "" {
				f.Statuses = append(f.Statuses, s)
			}
		}
		var err error
		if f.From, err = day(*from); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		if f.To, err = day(*to); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		if q, err = f.Query(); err != nil {
			return fmt.Errorf("--status: %w", err)
		}
	}
	if cfg == nil {
		c, err := config.FromEnv(config.EncryptionKey)
		if err != nil {
			return err
		}
		cfg = &c
	}
	tc, dc, err := sealedTemporal(ctx, *cfg)
	if err != nil {
		return err
	}
	defer tc.Close()
	o := reprocess.Options{Namespace: cfg.TemporalNamespace, Failure: *failure, Limit: *limit, Mode: *mode, PerSecond: *perSecond}
	fmt.Fprintf(stderr, "selecting: %s\n", q)
	cands, err := reprocess.Select(ctx, tc, q, o)
	if err != nil {
		return err
	}
	if *dry {
		printCandidates(stdout, cands, *mode)
		return nil
	}
	if len(cands) == 0 {
		fmt.Fprintln(stdout, "nothing to reprocess")
		return nil
	}
	bar := progressbar.NewOptions(len(cands), progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(*mode),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
	var failed []reprocess.Outcome
	sum, err := reprocess.Run(ctx, tc, dc, cands, o, func(out reprocess.Outcome) {
		_ = bar.Add(1)
		if out.Err != nil {
			failed = append(failed, out)
		}
	})
	_ = bar.Finish()
	for _, f := range failed {
		fmt.Fprintf(stdout, "FAILED %s run %s: %v\n", f.WorkflowID, f.RunID, f.Err)
	}
	fmt.Fprintf(stdout, "%d selected: %d reset, %d restarted, %d skipped (already reprocessed or nothing to reset to), %d failed\n",
		len(cands), sum.Reset, sum.Restarted, sum.Skipped, sum.Failed)
	if err != nil {
		return err
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d could not be reprocessed; running the same command again retries them and skips the rest", sum.Failed)
	}
	return nil
}

func printCandidates(w io.Writer, cands []reprocess.Candidate, mode string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tRUN\tSTATUS\tSTARTED\tFAILURE\tWOULD")
	would := 0
	for _, c := range cands {
		action := c.Skip
		switch {
		case action != "":
		case mode == reprocess.Restart:
			action, would = "restart from the PKB message", would+1
		case c.ResetTo == 0:
			action = "skip: no workflow task completed to reset to (use --mode restart)"
		default:
			action, would = fmt.Sprintf("reset to event %d, re-running %s", c.ResetTo, c.Step), would+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.WorkflowID, c.RunID, c.Status, c.Started.UTC().Format(time.RFC3339), short(c.Failure), action)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d selected, %d would be %s (dry run: nothing done)\n", len(cands), would, map[string]string{reprocess.Reset: "reset", reprocess.Restart: "restarted"}[mode])
}

func short(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	if s == "" {
		return "-"
	}
	return s
}

// day reads 2006-01-02 (midnight UTC) or RFC 3339; empty is zero.
func day(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}
