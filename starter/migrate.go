package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/store"
)

// runMigrate is `starter migrate`: the one command that changes the
// schema, run with a role that has DDL rights, so that `starter serve` can
// run with one that has none.
func runMigrate(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return errors.New("usage: starter migrate (DATABASE_URL names the database)")
	}
	cfg, err := config.FromEnv(config.DatabaseURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, cfg.DatabaseURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(ctx); err != nil {
		return err
	}
	fmt.Println("schema up to date")
	return nil
}
