package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// runTemporalSchema is `starter temporal-schema`: a self-hosted Temporal's
// two databases (persistence and visibility) on PostgreSQL, created when
// missing, set up when empty and brought up to the pinned server's schema
// by the server's own SQL tool; safe to repeat. Compose's temporal-schema
// step and tools/cluster.sh run it.
func runTemporalSchema(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("temporal-schema", flag.ContinueOnError)
	tool := fs.String("sql-tool", "/usr/local/bin/temporal-sql-tool", "the Temporal server's SQL tool")
	schema := fs.String("schema", "/etc/temporal/schema/postgresql/v12", "the server's PostgreSQL schema directory (temporal/ and visibility/)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := func(k, d string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return d
	}
	base := []string{"--plugin", "postgres12", "--ep", env("TEMPORAL_DB_HOST", "127.0.0.1"), "-p", env("TEMPORAL_DB_PORT", "5432"),
		"-u", env("TEMPORAL_DB_USER", "postgres")}
	if pw := os.Getenv("TEMPORAL_DB_PASSWORD"); pw != "" {
		base = append(base, "--pw", pw)
	}
	run := func(db string, more ...string) error {
		cmd := exec.CommandContext(ctx, *tool, append(append(append([]string{}, base...), "--db", db), more...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("temporal-sql-tool %s on %s: %w\n%s", more[0], db, err, out.String())
		}
		return nil
	}
	for _, d := range []struct{ db, dir string }{
		{env("TEMPORAL_DB", "temporal"), "temporal"}, {env("TEMPORAL_VISIBILITY_DB", "temporal_visibility"), "visibility"},
	} {
		versioned := filepath.Join(*schema, d.dir, "versioned")
		_ = run(d.db, "create-database") // exists already after the first run
		// update-schema applies what is missing on a set-up database; a
		// new one is marked at 0.0 first.
		if err := run(d.db, "update-schema", "-d", versioned); err != nil {
			if err := run(d.db, "setup-schema", "-v", "0.0"); err != nil {
				return err
			}
			if err := run(d.db, "update-schema", "-d", versioned); err != nil {
				return err
			}
		}
		fmt.Printf("%s: schema up to date (%s)\n", d.db, d.dir)
	}
	return nil
}
