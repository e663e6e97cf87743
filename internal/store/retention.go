package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// ActionRedacted is the audit action of a retention redaction.
const ActionRedacted = "redacted"

// auditKept are the audit detail keys a redaction leaves: where a request
// went and how, never what it said or whom it was about.
var auditKept = []string{"team", "channel", "reason", "via", "ref", "need", "started_by", "count", "subject", "action", "outcome", "pkb_account", "sessions"}

// RedactClosed removes the patient identifiers (PKB patient id,
// appointment ids, the appointment's time) and free text (staff's close
// notes) from up to limit requests that closed before cutoff, oldest
// first, and trims their audit entries' details to ids and categories.
// Each row keeps its reference, team, specialty, state and times, for the
// reports; each request's audit trail keeps who did what and when, and
// gains an entry for the redaction. It returns how many it redacted: fewer
// than limit means none are left. Run again, it redacts nothing twice.
func (s *Store) RedactClosed(ctx context.Context, cutoff time.Time, limit int, afterDays int) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH picked AS (
			    SELECT message_id FROM requests
			    WHERE closed_at < $1 AND redacted_at IS NULL
			    ORDER BY closed_at LIMIT $2 FOR UPDATE SKIP LOCKED)
			UPDATE requests r SET patient_id = '', appointment_id = '', placer_id = '', appointment_start = NULL, close_note = '',
			    seen_digest = '', next_check_at = NULL, nhs_digest = '', redacted_at = now()
			FROM picked WHERE r.message_id = picked.message_id
			RETURNING r.workflow_id`, cutoff, limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		n = len(ids)
		if n == 0 {
			return nil
		}
		// The audit log changes only through this function (migration
		// 00014): no role Rebook runs as may update it directly.
		if _, err := tx.Exec(ctx, `SELECT redact_audit($1, $2)`, ids, auditKept); err != nil {
			return err
		}
		for _, id := range ids {
			if err := auditTx(ctx, tx, AuditEntry{Actor: "rebook", Action: ActionRedacted, Subject: id,
				Detail: map[string]string{"after_days": strconv.Itoa(afterDays)}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: redact closed requests: %w", err)
	}
	return n, nil
}
