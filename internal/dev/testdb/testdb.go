// Package testdb gives each test its own PostgreSQL database on the server
// named by REBOOK_TEST_DATABASE_URL (default: the local server, user
// postgres), and drops it when the test ends.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	cfg, err := pgx.ParseConfig(ServerURL())
	if err != nil {
		t.Fatalf("testdb: REBOOK_TEST_DATABASE_URL: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "rebook_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("testdb: REBOOK_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
