package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Request is a row of the request read model: ids and categories only.
type Request struct {
	MessageID     string
	WorkflowID    string
	State         string
	RequestType   string
	Specialty     string
	Clinic        string
	Team          string
	SlackChannel  string
	SlackTS       string
	AppointmentID string
	Reason        string
	ReceivedAt    time.Time
	UpdatedAt     time.Time
	ClosedAt      *time.Time
}

// SaveRequest inserts or updates a request's row.
func (s *Store) SaveRequest(ctx context.Context, r Request) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO requests (message_id, workflow_id, state, request_type, specialty, clinic, team,
		                      slack_channel, slack_ts, appointment_id, reason, received_at, closed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (message_id) DO UPDATE SET
		    state = EXCLUDED.state, request_type = EXCLUDED.request_type, specialty = EXCLUDED.specialty,
		    clinic = EXCLUDED.clinic, team = EXCLUDED.team, slack_channel = EXCLUDED.slack_channel,
		    slack_ts = EXCLUDED.slack_ts, appointment_id = EXCLUDED.appointment_id,
		    reason = EXCLUDED.reason, closed_at = EXCLUDED.closed_at, updated_at = now()`,
		r.MessageID, r.WorkflowID, r.State, r.RequestType, r.Specialty, r.Clinic, r.Team,
		r.SlackChannel, r.SlackTS, r.AppointmentID, r.Reason, r.ReceivedAt, r.ClosedAt)
	if err != nil {
		return fmt.Errorf("store: save request: %w", err)
	}
	return nil
}

// Request reads one request by its PKB message id.
func (s *Store) Request(ctx context.Context, messageID string) (Request, error) {
	var r Request
	err := s.pool.QueryRow(ctx, `
		SELECT message_id, workflow_id, state, request_type, specialty, clinic, team, slack_channel,
		       slack_ts, appointment_id, reason, received_at, updated_at, closed_at
		FROM requests WHERE message_id = $1`, messageID).Scan(
		&r.MessageID, &r.WorkflowID, &r.State, &r.RequestType, &r.Specialty, &r.Clinic, &r.Team,
		&r.SlackChannel, &r.SlackTS, &r.AppointmentID, &r.Reason, &r.ReceivedAt, &r.UpdatedAt, &r.ClosedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Request{}, ErrNotFound
	}
	if err != nil {
		return Request{}, fmt.Errorf("store: read request: %w", err)
	}
	return r, nil
}

// CountRequestsByState counts the read model's rows per state.
func (s *Store) CountRequestsByState(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM requests GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("store: count requests: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: count requests: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}
