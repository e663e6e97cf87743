package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/store"
)

// runMigrate is `starter migrate`: the one command that changes the
// schema, run with a role that has DDL rights, so that `starter serve` and
// the worker can run with one that has none. It grants the application
// role (store.AppRole) what they need and, with --login, makes the login
// they use a member of it.
func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	login := fs.String("login", "", "also create (or update) this login role as a member of "+store.AppRole+", with the password "+config.DBLoginPassword+" names, for serve and the worker to use")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: starter migrate [--login NAME] (DATABASE_URL names the database, as a role with DDL rights)")
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
	if *login != "" {
		if err := st.EnsureLogin(ctx, *login, cfg.DBLoginPassword); err != nil {
			return err
		}
		fmt.Printf("login %s is a member of %s\n", *login, store.AppRole)
	}
	return nil
}
