package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
)

// runDeploy is `starter deploy`: the release steps of Worker Versioning.
// Workers of the new build run beside the old (REBOOK_BUILD_ID); after
// `starter replay` has passed on the new build, --ramp sends part of the
// work to it, --current all of it, and the old build's workers are
// stopped once none of its workflows remain (auto-upgrade moves waiting
// requests at their next task).
func runDeploy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	build := fs.String("build-id", "", "the build (REBOOK_BUILD_ID of its workers)")
	ramp := fs.Float64("ramp", 0, "send this percentage of new work to the build, beside the current one")
	current := fs.Bool("current", false, "make the build the current one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *build == "" || (*ramp == 0) == !*current || *ramp < 0 || *ramp > 100 {
		return errors.New("usage: starter deploy --build-id ID (--ramp PERCENT | --current)")
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	tc, err := app.Temporal(ctx, cfg, slog.Default(), nil)
	if err != nil {
		return err
	}
	defer tc.Close()
	if *current {
		if err := app.SetCurrentBuild(ctx, tc, *build); err != nil {
			return err
		}
		fmt.Printf("build %s is current\n", *build)
		return nil
	}
	if err := app.RampBuild(ctx, tc, *build, float32(*ramp)); err != nil {
		return err
	}
	fmt.Printf("build %s takes %.0f%% of new work\n", *build, *ramp)
	return nil
}
