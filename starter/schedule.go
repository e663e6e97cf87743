package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/schedules"
	"github.com/rebookhq/rebook/workflows"
)

func runSchedule(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("schedule", flag.ContinueOnError)
	every := fs.Duration("every", 30*time.Second, "how often PollMessages reads new requests from PKB")
	watch := fs.Duration("watch-every", 2*time.Minute, "how often WatchAppointments asks PKB for changed appointments")
	attrs := fs.Bool("search-attributes", true, "register Rebook's search attributes in the namespace if missing")
	create := fs.Bool("create-namespace", false, "create TEMPORAL_NAMESPACE when the cluster has none (a self-hosted cluster's first start), keeping closed histories for --retention or "+app.TemporalRetention.String())
	retention := fs.Duration("retention", 0, "set how long the namespace keeps closed workflows' histories, such as 720h (Rebook's advice: "+app.TemporalRetention.String()+"); 0 leaves it as it is")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.FromEnv(config.EncryptionKey, config.PKBClientID)
	if err != nil {
		return err
	}
	tc, err := app.Temporal(ctx, cfg, slog.Default(), nil)
	if err != nil {
		return err
	}
	defer tc.Close()
	if *create {
		keep := *retention
		if keep == 0 {
			keep = app.TemporalRetention
		}
		made, err := app.EnsureNamespace(ctx, tc, cfg.TemporalNamespace, keep)
		if err != nil {
			return err
		}
		if made {
			fmt.Printf("namespace %s created\n", cfg.TemporalNamespace)
		}
	}
	if *attrs {
		register := app.RegisterSearchAttributes
		if *create {
			register = app.RegisterSearchAttributesWhenReady
		}
		if err := register(ctx, tc, cfg.TemporalNamespace); err != nil {
			return fmt.Errorf("%w (on Temporal Cloud, add them with tcld; see README)", err)
		}
	}
	kept, err := app.Retention(ctx, tc, cfg.TemporalNamespace, *retention)
	if err != nil {
		return fmt.Errorf("%w (on Temporal Cloud, set the namespace's retention in its console or with tcld)", err)
	}
	fmt.Printf("namespace %s keeps closed workflows' histories for %s\n", cfg.TemporalNamespace, days(kept))
	if kept > time.Duration(cfg.RetentionDays)*24*time.Hour {
		fmt.Printf("note: that is longer than %s (%d days): the encrypted message facts in Temporal outlive the identifiers PostgreSQL keeps\n", config.RetentionDays, cfg.RetentionDays)
	}
	if err := schedules.Ensure(ctx, tc, *every, *watch); err != nil {
		return err
	}
	if err := app.StartTokenKeeper(ctx, tc, cfg); err != nil {
		return err
	}
	fmt.Printf("token keeper running: %s\n", workflows.TokenKeeperID(cfg.PKBClientID))
	fmt.Printf("schedules ready: %s every %s, %s every %s, %s every %s, %s every %s (overlaps skipped)\n", workflows.PollScheduleID, *every, workflows.WatchScheduleID, *watch,
		workflows.ReconcileScheduleID, schedules.ReconcileEvery, workflows.RetentionScheduleID, schedules.RetentionEvery)
	return nil
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.String()
}
