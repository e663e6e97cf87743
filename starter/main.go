// Command starter is everything that starts or signals Rebook's workflows,
// and the tools around them. Run `starter help` for the subcommands.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{
	"sim":             {"run the PKB simulator (OAuth, messages, FHIR, admin API)", runSim},
	"dev":             {"run the whole local stack: Temporal, Postgres check, simulator, worker, front door, schedules", runDev},
	"serve":           {"the front door: Slack interactions, codec for the Web UI, request pages, health", runServe},
	"schedule":        {"create or update the PollMessages and WatchAppointments schedules (idempotent)", runSchedule},
	"rules":           {"routing rules: list | import FILE.csv | export [FILE.csv]", runRules},
	"grant-link":      {"print a single-use link, valid 30 minutes, that starts the PKB grant (the only way to start it besides the admins' Slack alert)", runGrantLink},
	"report":          {"requests per specialty or team per day, week or month: --from --to --by specialty|team --every day|week|month --format table|csv", runReport},
	"replay":          {"replay live histories (--query, default every Rebook workflow) or recorded ones (--dir) on this build; names each that fails: run before a deploy", runReplay},
	"reprocess":       {"reset (to the last good point) or restart failed request workflows in bulk: --dry-run first; --status --from --to --type --specialty --failure or --query; --rate; safe to repeat", runReprocess},
	"fake-slack":      {"a fake Slack Web API that prints each post (the compose demo's Slack; make dev runs one itself)", runFakeSlack},
	"sim-grant":       {"take the PKB grant from the simulator without a browser (the compose demo; a real PKB asks a clinician)", runSimGrant},
	"bench":           {"Rebook against bare Temporal workflows on this machine: drain rate and ratio, latency, per-request costs (make bench)", runBench},
	"chaos":           {"requests through the real stack while it kills the worker, restarts Temporal and PostgreSQL, and makes PKB and Slack fail; checks none is lost or doubled (make chaos)", runChaos},
	"rotate-key":      {"after a change of REBOOK_ENCRYPTION_KEY (the old key kept in REBOOK_ENCRYPTION_OLD_KEYS): re-seal the stored PKB tokens under the new key; safe to repeat", runRotateKey},
	"migrate":         {"create the database if missing, bring its schema up to date and grant rebook_app its rights (--login NAME: the services' login)", runMigrate},
	"deploy":          {"Worker Versioning: --build-id ID --ramp PERCENT, or --current, once `starter replay` passed on the new build (README, Shipping a workflow change)", runDeploy},
	"temporal-schema": {"a self-hosted Temporal's databases on PostgreSQL: created if missing and brought up to the pinned server's schema (compose; tools/cluster.sh); safe to repeat", runTemporalSchema},
	"teams-manifest":  {"write the Microsoft Teams app package (manifest.json and icons, zipped) a trust's Teams admin uploads: --out FILE", runTeamsManifest},
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: starter <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun `starter <command> -h` for a command's flags. Settings come from the environment: see README.md.")
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "starter: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "starter %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
