// Package store is Rebook's PostgreSQL state: routing rules, the request
// read model, the poll cursor, the PKB grant (tokens sealed), OAuth states
// and the audit log. All SQL lives in this package.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"

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
	pool *pgxpool.Pool
	box  *secret.Box
}

// Open creates the database if it is missing, connects, and brings the
// schema up to date. key seals tokens; nil leaves grant storage unusable.
func Open(ctx context.Context, databaseURL string, key []byte) (*Store, error) {
	if err := EnsureDatabase(ctx, databaseURL); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{pool: pool}
	if key != nil {
		if s.box, err = secret.New(key); err != nil {
			pool.Close()
			return nil, err
		}
	}
	if err := s.Migrate(ctx); err != nil {
		pool.Close()
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
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer func() { _ = db.Close() }()
	p, err := goose.NewProvider(goose.DialectPostgres, db, mustSub(migrations, "migrations"), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
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
