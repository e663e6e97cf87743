package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// nhsPlace binds NHS-number digests to their use.
const nhsPlace = "requests/nhs_digest"

// PatientDigest is the keyed digest of an NHS number (already normalised)
// that a request's row keeps: it can be compared with a feed update's
// number, never read back. Empty without a key.
func (s *Store) PatientDigest(nhs string) string {
	if s.box == nil || nhs == "" {
		return ""
	}
	return s.box.Digest(nhsPlace, nhs)
}

// PatientDigests are nhs's digests under every key, current first.
func (s *Store) PatientDigests(nhs string) []string {
	if s.box == nil || nhs == "" {
		return nil
	}
	return s.box.Digests(nhsPlace, nhs)
}

// WaitingOfPatient returns the waiting, matched requests of the patient
// whose NHS number has these digests (PatientDigests).
func (s *Store) WaitingOfPatient(ctx context.Context, ds []string) ([]Request, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	return s.requests(ctx, "waiting of patient", `WHERE closed_at IS NULL AND appointment_id <> '' AND nhs_digest = ANY($1)`, ds)
}

// CheckSoon brings the next PKB check of these requests forward to now:
// the watcher asks about their patients in its next run, inside its
// budget.
func (s *Store) CheckSoon(ctx context.Context, messageIDs []string) error {
	_, err := s.pool.Exec(ctx, `UPDATE requests SET next_check_at = LEAST(COALESCE(next_check_at, now()), now())
		WHERE message_id = ANY($1) AND closed_at IS NULL`, messageIDs)
	if err != nil {
		return fmt.Errorf("store: check soon: %w", err)
	}
	return nil
}

// AdvanceFeed records that a feed update of the PAS's time at applies to
// a request, and says false, changing nothing, when it is stale: older
// than the last update applied, or than PKB's lastUpdated of the
// appointment when the request was matched. An update of the same time
// (the engine's resend) applies again.
func (s *Store) AdvanceFeed(ctx context.Context, messageID string, at time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE requests SET feed_at = $2
		WHERE message_id = $1 AND (feed_at IS NULL OR feed_at <= $2) AND (appointment_updated_at IS NULL OR appointment_updated_at <= $2)`,
		messageID, at)
	if err != nil {
		return false, fmt.Errorf("store: advance feed: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// pendingKeep is how long a feed update that named no request is kept.
const pendingKeep = 7 * 24 * time.Hour

// KeepPending stores a feed update that named no request yet, for
// TakePending when a request with its placer id is routed. u is stored
// as JSON and must hold no patient data in clear.
func (s *Store) KeepPending(ctx context.Context, placerID string, u any) error {
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO feed_pending (placer_id, update) VALUES ($1, $2)`, placerID, b); err != nil {
		return fmt.Errorf("store: keep pending: %w", err)
	}
	return nil
}

// SweepPending forgets kept updates older than a week, which PendingFor
// no longer returns: the daily retention run calls it, not each update.
func (s *Store) SweepPending(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM feed_pending WHERE received_at < $1`, time.Now().Add(-pendingKeep)); err != nil {
		return fmt.Errorf("store: sweep pending: %w", err)
	}
	return nil
}

// PendingFor reads the kept updates for a placer id, oldest first, into
// a slice made by each (one call per update).
func (s *Store) PendingFor(ctx context.Context, placerID string, each func(raw []byte) error) error {
	if placerID == "" {
		return nil
	}
	rows, err := s.pool.Query(ctx, `SELECT update FROM feed_pending WHERE placer_id = $1 AND received_at >= $2 ORDER BY id`,
		placerID, time.Now().Add(-pendingKeep))
	if err != nil {
		return fmt.Errorf("store: pending for: %w", err)
	}
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return fmt.Errorf("store: pending for: %w", err)
	}
	for _, raw := range raws {
		if err := each(raw); err != nil {
			return err
		}
	}
	return nil
}

// DropPending removes the kept updates for a placer id once applied.
func (s *Store) DropPending(ctx context.Context, placerID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM feed_pending WHERE placer_id = $1`, placerID); err != nil {
		return fmt.Errorf("store: drop pending: %w", err)
	}
	return nil
}
