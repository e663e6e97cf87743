package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ScheduleCheck sets when a waiting request's patient is next asked about,
// and the spacing of the asks from then; due is when its SLA runs out
// (zero: unchanged).
func (s *Store) ScheduleCheck(ctx context.Context, messageID string, at time.Time, every time.Duration, due time.Time) error {
	var dueAt *time.Time
	if !due.IsZero() {
		dueAt = &due
	}
	_, err := s.pool.Exec(ctx, `UPDATE requests SET next_check_at = $2, check_every_s = $3, due_at = COALESCE($4, due_at) WHERE message_id = $1`,
		messageID, at, int(every/time.Second), dueAt)
	if err != nil {
		return fmt.Errorf("store: schedule check: %w", err)
	}
	return nil
}

// SetSeenDigest records the digest of what the watcher has just told a
// waiting request. Routing the request again clears it (SaveRequest).
func (s *Store) SetSeenDigest(ctx context.Context, messageID, digest string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE requests SET seen_digest = $2 WHERE message_id = $1`, messageID, digest); err != nil {
		return fmt.Errorf("store: set seen digest: %w", err)
	}
	return nil
}

// DuePatients are the patients with a waiting, matched request whose next
// check is due by now, the longest overdue first, at most limit.
func (s *Store) DuePatients(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT patient_id FROM requests
		WHERE closed_at IS NULL AND patient_id <> '' AND appointment_id <> '' AND next_check_at <= $1
		GROUP BY patient_id ORDER BY min(next_check_at), patient_id LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("store: due patients: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Waiting is a waiting request as the watcher sees it.
type Waiting struct {
	Request
	NextCheckAt *time.Time
	CheckEvery  time.Duration
	DueAt       *time.Time
	// SeenDigest is the digest of what the watcher last told the request
	// (SetSeenDigest); empty since it was routed.
	SeenDigest string
}

// WaitingOf returns a patient's waiting, matched requests.
func (s *Store) WaitingOf(ctx context.Context, patientID string) ([]Waiting, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+requestColumns+`, next_check_at, check_every_s, due_at, seen_digest FROM requests
		WHERE closed_at IS NULL AND patient_id = $1 AND appointment_id <> ''`, patientID)
	if err != nil {
		return nil, fmt.Errorf("store: waiting of patient: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Waiting, error) {
		var w Waiting
		var every int
		dest := append(requestDest(&w.Request), &w.NextCheckAt, &every, &w.DueAt, &w.SeenDigest)
		err := row.Scan(dest...)
		w.CheckEvery = time.Duration(every) * time.Second
		return w, err
	})
}

// WaitingByPlacer returns the waiting requests about the trust's
// appointment with this placer id.
func (s *Store) WaitingByPlacer(ctx context.Context, placerID string) ([]Request, error) {
	return s.requests(ctx, "waiting by placer id", `WHERE closed_at IS NULL AND placer_id = $1 AND placer_id <> ''`, placerID)
}

// WaitingByAppointment returns the waiting requests about a PKB
// appointment.
func (s *Store) WaitingByAppointment(ctx context.Context, appointmentID string) ([]Request, error) {
	return s.requests(ctx, "waiting by appointment", `WHERE closed_at IS NULL AND appointment_id = $1 AND appointment_id <> ''`, appointmentID)
}

// CountRequests counts every request in the read model.
func (s *Store) CountRequests(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM requests`).Scan(&n)
	return n, err
}

// OverdueChecks are waiting, matched requests whose next check was due
// before cutoff and whose admins' notice (key check-overdue/<workflow id>)
// has not been posted, at most limit.
func (s *Store) OverdueChecks(ctx context.Context, cutoff time.Time, limit int) ([]Request, error) {
	return s.requests(ctx, "overdue checks", `
		WHERE closed_at IS NULL AND appointment_id <> '' AND next_check_at < $1
		  AND NOT EXISTS (SELECT 1 FROM slack_notices n WHERE n.key = 'check-overdue/' || requests.workflow_id AND n.ts <> '')
		ORDER BY next_check_at LIMIT $2`, cutoff, limit)
}

// Known is an appointment Rebook knows PKB holds, and when PKB last
// updated it as Rebook saw.
type Known struct {
	AppointmentID string
	UpdatedAt     time.Time
}

// KnownAppointment is the waiting request's appointment PKB updated most
// recently as Rebook saw it at match time; ErrNotFound when none.
func (s *Store) KnownAppointment(ctx context.Context) (Known, error) {
	var k Known
	err := s.pool.QueryRow(ctx, `SELECT appointment_id, appointment_updated_at FROM requests
		WHERE closed_at IS NULL AND appointment_id <> '' AND appointment_updated_at IS NOT NULL
		ORDER BY appointment_updated_at DESC LIMIT 1`).Scan(&k.AppointmentID, &k.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Known{}, ErrNotFound
	}
	if err != nil {
		return Known{}, fmt.Errorf("store: known appointment: %w", err)
	}
	return k, nil
}
