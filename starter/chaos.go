package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/rebookhq/rebook/internal/dev/chaos"
	"github.com/rebookhq/rebook/internal/dev/devserver"
)

// runChaos is `starter chaos` (make chaos): requests through the real
// stack while it kills and restarts its parts; exits 1 unless every
// request completed, once.
func runChaos(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	var o chaos.Options
	fs.IntVar(&o.Requests, "requests", 1000, "requests run through while the faults are applied")
	fs.Float64Var(&o.Rate, "rate", 5, "their arrivals a second")
	fs.DurationVar(&o.FaultEvery, "fault-every", 8*time.Second, "spacing of the faults; each lasts half of it")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "limit on the whole run")
	fs.StringVar(&o.WorkerBinary, "worker", "bin/worker", "Rebook's worker binary (make chaos builds it)")
	fs.StringVar(&o.StarterBinary, "starter", "bin/starter", "Rebook's starter binary, run as the front door (make chaos builds it)")
	temporal := fs.String("temporal", "dev", "dev: a Temporal dev server of the run's own; cluster: the production-shaped cluster (make cluster), started by the run, one service at a time killed")
	fs.IntVar(&o.Workers, "workers", 0, "worker processes (1; 3 with --temporal cluster)")
	fs.IntVar(&o.Doors, "doors", 0, "front door processes (1; 2 with --temporal cluster)")
	out := fs.String("json", "", "also write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if o.RepoRoot, err = devserver.RepoRoot(wd); err != nil {
		return err
	}
	for _, b := range []*string{&o.WorkerBinary, &o.StarterBinary} {
		if *b, err = filepath.Abs(*b); err != nil {
			return err
		}
	}
	switch *temporal {
	case "dev":
	case "cluster":
		o.Cluster = "127.0.0.1:7233"
		if o.Workers == 0 {
			o.Workers = 3
		}
		if o.Doors == 0 {
			o.Doors = 2
		}
	default:
		return fmt.Errorf("chaos: --temporal is dev or cluster, not %q", *temporal)
	}
	o.Log = os.Stderr
	res, err := chaos.Run(ctx, o)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "requests\t%d\n", res.Requests)
	fmt.Fprintf(tw, "completed\t%d\n", res.Completed)
	fmt.Fprintf(tw, "lost (no workflow)\t%d\n", res.Lost)
	fmt.Fprintf(tw, "failed or still open\t%d\n", res.Failed+res.Open)
	fmt.Fprintf(tw, "duplicate Slack cards\t%d\n", res.DuplicateCards)
	fmt.Fprintf(tw, "requests with no card\t%d\n", res.MissingCards)
	fmt.Fprintf(tw, "read model disagrees\t%d\n", res.ReadModelDisagrees)
	names := make([]string, 0, len(res.Faults))
	for n := range res.Faults {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(tw, "fault: %s\t%d times\n", n, res.Faults[n])
	}
	fmt.Fprintf(tw, "PKB answered 5xx / 429\t%d / %d\n", res.PKB5xxAnswered, res.PKB429Answered)
	fmt.Fprintf(tw, "Slack answered 429\t%d\n", res.Slack429Answered)
	fmt.Fprintf(tw, "staff presses (triage Done)\t%d\n", res.StaffPresses)
	fmt.Fprintf(tw, "run took\t%.0f s\n", res.Seconds)
	fmt.Fprintf(tw, "front door peak RSS\t%.0f MiB\n", res.DoorPeakRSSMiB)
	_ = tw.Flush()
	for _, p := range res.Problems {
		fmt.Println("  " + p)
	}
	if *out != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if !res.OK() {
		return errors.New("not every request completed exactly once; see above")
	}
	return nil
}
