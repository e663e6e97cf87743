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
	_, err := db.Exec(ctx, `INSERT INTO audit_log (actor, action, subject, detail) VALUES ($1, $2, $3, $4)`,
		e.Actor, e.Action, e.Subject, detail)
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
