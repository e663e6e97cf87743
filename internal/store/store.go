// Package store is Rebook's PostgreSQL state: routing rules, the request
// read model, the poll cursor, the PKB grant (tokens sealed), OAuth states
// and the audit log. All SQL lives in this package.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/rebookhq/rebook/internal/secret"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a row asked for by key does not exist.
var ErrNotFound = errors.New("store: not found")

// Store is a pool and the key that seals tokens.
type Store struct {
	pool    *pgxpool.Pool
	box     *secret.Box
	queries *atomic.Int64
}

// queryCounter counts the statements sent, for the metrics: a round trip
// each (a transaction's BEGIN and COMMIT included).
type queryCounter struct{ n *atomic.Int64 }

func (q queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}

func (queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Queries is how many statements this store has sent to PostgreSQL.
func (s *Store) Queries() int64 { return s.queries.Load() }

// Connect connects to an existing database without changing its schema:
// for processes that run as a role without DDL rights. key seals tokens;
// nil leaves grant storage unusable; old keys open tokens sealed before
// a rotation.
func Connect(ctx context.Context, databaseURL string, key []byte, old ...[]byte) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{queries: &atomic.Int64{}}
	cfg.ConnConfig.Tracer = queryCounter{n: s.queries}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.pool = pool
	if key != nil {
		if s.box, err = secret.New(key, old...); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return s, nil
}

// Open creates the database if it is missing, connects, and brings the
// schema up to date (Migrate): the worker and `starter migrate`.
func Open(ctx context.Context, databaseURL string, key []byte, old ...[]byte) (*Store, error) {
	if err := EnsureDatabase(ctx, databaseURL); err != nil {
		return nil, err
	}
	s, err := Connect(ctx, databaseURL, key, old...)
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the pool.
func (s *Store) Close() { s.pool.Close() }

// Pool is the connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that PostgreSQL answers, for health checks.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// EnsureDatabase creates the database named in databaseURL when it does
// not exist, connecting to the server's postgres database to do so.
func EnsureDatabase(ctx context.Context, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("store: DATABASE_URL: %w", err)
	}
	name := cfg.Database
	if name == "" || name == "postgres" {
		return nil
	}
	if conn, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		return conn.Close(ctx)
	} else if !isCode(err, "3D000") { // invalid_catalog_name: no such database
		return fmt.Errorf("store: cannot reach PostgreSQL at %s:%d: %w", cfg.Host, cfg.Port, unwrapPg(err))
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("store: database %q is missing and cannot be created: %w", name, unwrapPg(err))
	}
	defer func() { _ = conn.Close(ctx) }()
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !isCode(err, "42P04") { // duplicate_database: another process won the race
		return fmt.Errorf("store: create database %q: %w", name, unwrapPg(err))
	}
	return nil
}

// Migrate applies the embedded migrations, holding a Postgres advisory lock
// so that several workers starting at once do not race.
func (s *Store) Migrate(ctx context.Context) error {
	p, done, err := s.migrations(true)
	if err != nil {
		return err
	}
	defer done()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return s.grantApp(ctx)
}

// AppRole is the role whose members `serve` and the worker log in as:
// rows, not schema; the audit log append-only.
const AppRole = "rebook_app"

// grantApp gives AppRole what `serve` and the worker need and nothing
// more, on every table there is now: run after every migration, so a new
// table is covered the release it arrives.
func (s *Store) grantApp(ctx context.Context) error {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, AppRole).Scan(&exists); err != nil {
		return fmt.Errorf("store: grants: %w", err)
	}
	if !exists {
		return nil // the migration said to ask a DBA for it
	}
	role := pgx.Identifier{AppRole}.Sanitize()
	for _, q := range []string{
		`GRANT USAGE ON SCHEMA public TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + role,
		`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ` + role,
		`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON goose_db_version FROM ` + role,
		`REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM ` + role,
		`GRANT EXECUTE ON FUNCTION redact_audit(text[], text[]) TO ` + role,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("store: grants (%s): %w", q, err)
		}
	}
	return nil
}

// ErrSchemaBehind means migrations are waiting: run `starter migrate`, or
// start the worker with --migrate.
var ErrSchemaBehind = errors.New("store: the database schema is behind this release: run `starter migrate` first (or start the worker once with --migrate)")

// CheckSchema says whether the schema is this release's, changing nothing.
func (s *Store) CheckSchema(ctx context.Context) error {
	// goose would create its version table to answer: a database never
	// migrated is simply behind.
	var versions *string
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('goose_db_version')::text`).Scan(&versions); err != nil {
		return fmt.Errorf("store: schema: %w", err)
	}
	if versions == nil {
		return ErrSchemaBehind
	}
	p, done, err := s.migrations(false)
	if err != nil {
		return err
	}
	defer done()
	pending, err := p.HasPending(ctx)
	if err != nil {
		return fmt.Errorf("store: schema: %w", err)
	}
	if pending {
		return ErrSchemaBehind
	}
	return nil
}

func (s *Store) migrations(locked bool) (*goose.Provider, func(), error) {
	var opts []goose.ProviderOption
	if locked {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	db := stdlib.OpenDBFromPool(s.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"), opts...)
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("store: migrations: %w", err)
	}
	return p, func() { _ = db.Close() }, nil
}

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// unwrapPg keeps PostgreSQL's own message, which names the fault, without
// pgconn's connection-string preamble.
func unwrapPg(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return err
}

// EnsureLogin makes login a role that can log in, is a member of AppRole
// and nothing else Rebook grants, with password when one is given.
func (s *Store) EnsureLogin(ctx context.Context, login, password string) error {
	if login == AppRole || login == "" {
		return fmt.Errorf("store: the login must be its own role, not %q", login)
	}
	id := pgx.Identifier{login}.Sanitize()
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, login).Scan(&exists); err != nil {
		return fmt.Errorf("store: login %s: %w", login, err)
	}
	stmts := []string{}
	if !exists {
		stmts = append(stmts, `CREATE ROLE `+id+` LOGIN`)
	}
	if password != "" {
		// A role's password cannot be a bind parameter: quote it as a literal.
		stmts = append(stmts, `ALTER ROLE `+id+` LOGIN PASSWORD `+quoteLiteral(password))
	}
	stmts = append(stmts, `GRANT `+pgx.Identifier{AppRole}.Sanitize()+` TO `+id)
	for _, q := range stmts {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("store: login %s: %w", login, unwrapPg(err))
		}
	}
	return nil
}

func quoteLiteral(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }
