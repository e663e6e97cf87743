package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/rebookhq/rebook/internal/dev/bench"
	"github.com/rebookhq/rebook/internal/dev/devserver"
	"github.com/rebookhq/rebook/internal/dev/testdb"
)

// runBench is `starter bench` (make bench): Rebook against the floor of
// bare Temporal workflows on this machine.
func runBench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o bench.Options
	fs.IntVar(&o.Requests, "requests", 2000, "the backlog drained from PKB to Slack (and the floor's workflow count)")
	fs.IntVar(&o.Arrivals, "arrivals", 300, "requests arriving at --rate after the drain, for latency")
	fs.Float64Var(&o.Rate, "rate", 5, "arrivals a second")
	fs.StringVar(&o.WorkerBinary, "worker", "bin/worker", "Rebook's worker binary (make bench builds it)")
	fs.DurationVar(&o.Timeout, "timeout", 15*time.Minute, "limit on each phase")
	out := fs.String("json", "", "also write the figures as JSON to this file")
	fs.BoolVar(&o.NoFloor, "no-floor", false, "skip the floor (for the cost of waiting: --requests 10000 --no-floor)")
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
	if _, err := os.Stat(o.WorkerBinary); err != nil {
		return fmt.Errorf("--worker %s: %w (go build -o bin/worker ./worker, or make bench)", o.WorkerBinary, err)
	}
	o.ServerURL, o.Log = testdb.ServerURL(), os.Stderr
	res, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\t%d CPUs, %s\n", res.CPUs, res.GoVersion)
	fmt.Fprintf(tw, "floor (%d no-op activities)\t%.1f workflows/s (%d in %.1f s)\n", res.FloorActivities, res.FloorPerSecond, res.Requests, res.FloorSeconds)
	fmt.Fprintf(tw, "rebook (PKB to Slack)\t%.1f requests/s (%d in %.1f s)\n", res.RebookPerSecond, res.Requests, res.RebookSeconds)
	fmt.Fprintf(tw, "ratio to the floor\t%.2f\n", res.Ratio)
	fmt.Fprintf(tw, "latency, message to post\tmedian %.2f s, p95 %.2f s, p99 %.2f s (%d at %.1f/s)\n", res.LatencyMedian, res.LatencyP95, res.LatencyP99, res.Arrivals, res.ArrivalRate)
	fmt.Fprintf(tw, "history events per request\t%.1f\n", res.HistoryEventsPerRequest)
	fmt.Fprintf(tw, "PKB calls per request\t%.2f\n", res.PKBCallsPerRequest)
	fmt.Fprintf(tw, "Slack calls per request\t%.2f\n", res.SlackCallsPerRequest)
	fmt.Fprintf(tw, "PostgreSQL round trips per request\t%.1f\n", res.DBRoundTripsPerRequest)
	fmt.Fprintf(tw, "worker peak RSS\t%.0f MiB\n", res.WorkerPeakRSSMiB)
	fmt.Fprintf(tw, "worker RSS with %d waiting\t%.0f MiB\n", res.Requests+res.Arrivals, res.WorkerWaitingRSSMiB)
	_ = tw.Flush()
	if *out != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*out, append(b, '\n'), 0o644)
	}
	return nil
}
