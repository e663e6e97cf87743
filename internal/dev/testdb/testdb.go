// Package testdb gives each test its own PostgreSQL database on the server
// named by REBOOK_TEST_DATABASE_URL (default: the local server, user
// postgres), and drops it when the test ends.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerURL is the maintenance database tests connect to first.
func ServerURL() string {
	if v := os.Getenv("REBOOK_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// URL returns a connection URL for a new, not yet created database that is
// unique to this test; it is dropped at cleanup if anything created it.
// Under -short (make test-unit) the test is skipped: it needs PostgreSQL.
func URL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL (make test runs it)")
	}
	u, drop, err := Scratch(ServerURL(), "rebook_test_")
	if err != nil {
		t.Fatalf("testdb: REBOOK_TEST_DATABASE_URL: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("testdb: %v", err)
		}
	})
	return u
}

// Scratch names a new database on the server of serverURL, for whoever
// opens it first to create, and returns its URL and what drops it.
func Scratch(serverURL, prefix string) (string, func() error, error) {
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	u.Path = "/" + name
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
		return nil
	}
	return u.String(), drop, nil
}
