package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// AuditEntry records who did what to which request or grant. Detail holds
// ids and categories only, never patient data or tokens.
type AuditEntry struct {
	At      time.Time
	Actor   string
	Action  string
	Subject string
	Detail  map[string]string
	// Key, when set, makes the entry once-only: a retry that writes it
	// again adds nothing.
	Key string
}

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Audit appends an entry.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error { return auditTx(ctx, s.pool, e) }

func auditTx(ctx context.Context, db execer, e AuditEntry) error {
	detail := []byte("{}")
	if e.Detail != nil {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return err
		}
	}
	var key *string
	if e.Key != "" {
		key = &e.Key
	}
	_, err := db.Exec(ctx, `INSERT INTO audit_log (actor, action, subject, detail, dedupe_key) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING`,
		e.Actor, e.Action, e.Subject, detail, key)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// AuditTrail returns a subject's entries, oldest first.
func (s *Store) AuditTrail(ctx context.Context, subject string) ([]AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, actor, action, subject, detail FROM audit_log WHERE subject = $1 ORDER BY at, id`, subject)
	if err != nil {
		return nil, fmt.Errorf("store: audit trail: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := r.Scan(&e.At, &e.Actor, &e.Action, &e.Subject, &e.Detail)
		return e, err
	})
}
