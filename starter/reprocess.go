package main

import (
	"context"
	"errors"
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
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
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
	reopen := fs.Bool("reopen", false, "also reprocess requests the read model shows closed (audited); with --mode restart, only those named by --ids")
	ids := fs.String("ids", "", "comma-separated request workflow ids: only these")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (quote the query)", fs.Args())
	}
	if *mode != reprocess.Reset && *mode != reprocess.Restart {
		return fmt.Errorf("--mode %q: use %s or %s", *mode, reprocess.Reset, reprocess.Restart)
	}
	var named []string
	for _, id := range strings.Split(*ids, ",") {
		if id = strings.TrimSpace(id); id != "" {
			named = append(named, id)
		}
	}
	if *reopen && *mode == reprocess.Restart && len(named) == 0 {
		return errors.New("--reopen with --mode restart starts closed requests again from their PKB message: name each one with --ids")
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
	if len(named) > 0 {
		var or []string
		for _, id := range named {
			or = append(or, "WorkflowId = '"+strings.ReplaceAll(id, "'", `\'`)+"'")
		}
		q = "(" + q + ") AND (" + strings.Join(or, " OR ") + ")"
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
	// The read model says which requests have closed: a run of one is
	// left alone unless --reopen.
	st, err := store.Connect(ctx, cfg.DatabaseURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	o := reprocess.Options{Namespace: cfg.TemporalNamespace, Failure: *failure, Limit: *limit, Mode: *mode, PerSecond: *perSecond, Reopen: *reopen,
		Closed: func(ctx context.Context, workflowID string) (bool, string, error) {
			id, ok := workflows.MessageIDFromWorkflowID(workflowID)
			if !ok {
				return false, "", nil
			}
			r, err := st.Request(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return false, "", nil
			}
			if err != nil {
				return false, "", err
			}
			return r.ClosedAt != nil, r.State, nil
		}}
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
	var auditErr error
	sum, err := reprocess.Run(ctx, tc, dc, cands, o, func(out reprocess.Outcome) {
		_ = bar.Add(1)
		if out.Err != nil {
			failed = append(failed, out)
		}
		if id, ok := workflows.MessageIDFromWorkflowID(out.WorkflowID); ok && out.Err == nil && out.Done != "" {
			// The new run knows only what its history up to the reset
			// point holds: the watcher tells it PKB's snapshot afresh.
			if derr := st.SetSeenDigest(ctx, id, ""); derr != nil && auditErr == nil {
				auditErr = derr
			}
		}
		if out.Err == nil && out.Done != "" && out.ClosedAs != "" {
			e := store.AuditEntry{Actor: "starter reprocess", Action: "reopened", Subject: out.WorkflowID,
				Detail: map[string]string{"mode": *mode, "was": out.ClosedAs, "run": out.NewRun}}
			if aerr := st.Audit(ctx, e); aerr != nil && auditErr == nil {
				auditErr = aerr
			}
		}
	})
	_ = bar.Finish()
	for _, f := range failed {
		fmt.Fprintf(stdout, "FAILED %s run %s: %v\n", f.WorkflowID, f.RunID, f.Err)
	}
	fmt.Fprintf(stdout, "%d selected: %d reset, %d restarted, %d skipped (already reprocessed, closed or nothing to reset to), %d failed\n",
		len(cands), sum.Reset, sum.Restarted, sum.Skipped, sum.Failed)
	if sum.Closed > 0 {
		fmt.Fprintf(stdout, "%d skipped because the read model shows the request closed (--reopen to reprocess them)\n", sum.Closed)
	}
	if sum.Reopened > 0 {
		fmt.Fprintf(stdout, "%d closed request(s) reopened on purpose (audited)\n", sum.Reopened)
	}
	if err == nil {
		err = auditErr
	}
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
