package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rebookhq/rebook/internal/refs"
)

// Request is a row of the request read model. PatientID is PKB's opaque
// public id; no NHS number, name or message text is kept here.
type Request struct {
	MessageID        string
	WorkflowID       string
	Ref              string
	State            string
	RequestType      string
	Specialty        string
	SpecialtyCode    string
	Clinic           string
	Team             string
	SlackChannel     string
	SlackTS          string
	AppointmentID    string
	AppointmentStart *time.Time
	PatientID        string
	Triage           bool
	Flags            string
	Reason           string
	ClaimedBy        string
	ClosedBy         string
	CloseNote        string
	ReceivedAt       time.Time
	UpdatedAt        time.Time
	ClosedAt         *time.Time
	// PlacerID is the trust's appointment id (HL7 SCH-1).
	PlacerID string
	// DueAt is when the request's SLA runs out (read only: the watcher's
	// ScheduleCheck writes it).
	DueAt *time.Time
	// RedactedAt is when retention removed the request's patient
	// identifiers and free text (read only: RedactClosed writes it).
	RedactedAt *time.Time
	// NHSDigest is a keyed digest of the patient's NHS number
	// (PatientDigest): what a feed update's number must agree with.
	NHSDigest string
	// PlacerSystem is the placer id's identifier system, where PKB gives
	// one; AppointmentUpdatedAt is PKB's lastUpdated of the appointment
	// when the request was matched.
	PlacerSystem         string
	AppointmentUpdatedAt *time.Time
	// FeedAt is the PAS's time of the last feed update applied (read
	// only: AdvanceFeed writes it).
	FeedAt *time.Time
}

const requestColumns = `message_id, workflow_id, ref, state, request_type, specialty, specialty_code, clinic, team,
	slack_channel, slack_ts, appointment_id, appointment_start, patient_id, triage, flags, reason,
	claimed_by, closed_by, close_note, received_at, updated_at, closed_at, placer_id, due_at, redacted_at,
	nhs_digest, placer_system, appointment_updated_at, feed_at`

func requestDest(r *Request) []any {
	return []any{&r.MessageID, &r.WorkflowID, &r.Ref, &r.State, &r.RequestType, &r.Specialty, &r.SpecialtyCode, &r.Clinic, &r.Team,
		&r.SlackChannel, &r.SlackTS, &r.AppointmentID, &r.AppointmentStart, &r.PatientID, &r.Triage, &r.Flags, &r.Reason,
		&r.ClaimedBy, &r.ClosedBy, &r.CloseNote, &r.ReceivedAt, &r.UpdatedAt, &r.ClosedAt, &r.PlacerID, &r.DueAt, &r.RedactedAt,
		&r.NHSDigest, &r.PlacerSystem, &r.AppointmentUpdatedAt, &r.FeedAt}
}

func scanRequest(row pgx.Row) (Request, error) {
	var r Request
	err := row.Scan(requestDest(&r)...)
	return r, err
}

// SaveRequest inserts or updates a request's row. The Slack post columns
// are left alone: they belong to StartSlackPost and SetSlackPost.
func (s *Store) SaveRequest(ctx context.Context, r Request) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO requests (message_id, workflow_id, state, request_type, specialty, specialty_code, clinic, team,
		                      appointment_id, appointment_start, patient_id, triage, flags, reason,
		                      claimed_by, closed_by, close_note, received_at, closed_at, ref, placer_id,
		                      nhs_digest, placer_system, appointment_updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
		ON CONFLICT (message_id) DO UPDATE SET
		    ref = EXCLUDED.ref, state = EXCLUDED.state, request_type = EXCLUDED.request_type, specialty = EXCLUDED.specialty,
		    specialty_code = EXCLUDED.specialty_code, clinic = EXCLUDED.clinic, team = EXCLUDED.team,
		    appointment_id = EXCLUDED.appointment_id, appointment_start = EXCLUDED.appointment_start,
		    patient_id = EXCLUDED.patient_id, triage = EXCLUDED.triage, flags = EXCLUDED.flags,
		    reason = EXCLUDED.reason, claimed_by = EXCLUDED.claimed_by, closed_by = EXCLUDED.closed_by,
		    close_note = EXCLUDED.close_note, closed_at = EXCLUDED.closed_at, placer_id = EXCLUDED.placer_id,
		    nhs_digest = EXCLUDED.nhs_digest, placer_system = EXCLUDED.placer_system,
		    appointment_updated_at = EXCLUDED.appointment_updated_at,
		    state_seq = 0, seen_digest = '', redacted_at = NULL, updated_at = now()`,
		r.MessageID, r.WorkflowID, r.State, r.RequestType, r.Specialty, r.SpecialtyCode, r.Clinic, r.Team,
		r.AppointmentID, r.AppointmentStart, r.PatientID, r.Triage, r.Flags, r.Reason,
		r.ClaimedBy, r.ClosedBy, r.CloseNote, r.ReceivedAt, r.ClosedAt, r.Ref, r.PlacerID,
		r.NHSDigest, r.PlacerSystem, r.AppointmentUpdatedAt)
	if err != nil {
		return fmt.Errorf("store: save request: %w", err)
	}
	return nil
}

// RecordReceived inserts a request's first row, and leaves a row already
// there as it is.
func (s *Store) RecordReceived(ctx context.Context, r Request) error {
	_, err := s.RefFor(ctx, r)
	return err
}

// RefFor records the request as received, as RecordReceived does, and
// returns its reference: the one it already has, or a new one (r.Ref is
// ignored). A new reference that another request holds is drawn again.
func (s *Store) RefFor(ctx context.Context, r Request) (string, error) {
	for range 5 {
		var ref string
		err := s.pool.QueryRow(ctx, `
			INSERT INTO requests (message_id, workflow_id, ref, state, received_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (message_id) DO UPDATE SET ref = CASE WHEN requests.ref = '' THEN EXCLUDED.ref ELSE requests.ref END
			RETURNING ref`, r.MessageID, r.WorkflowID, refs.New(), r.State, r.ReceivedAt).Scan(&ref)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == uniqueViolation && pe.ConstraintName == "requests_ref_unique" {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("store: record received request: %w", err)
		}
		return ref, nil
	}
	return "", errors.New("store: record received request: five new references in a row were taken")
}

// KnownRequests says which of these message ids the read model has.
func (s *Store) KnownRequests(ctx context.Context, messageIDs []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT message_id FROM requests WHERE message_id = ANY($1)`, messageIDs)
	if err != nil {
		return nil, fmt.Errorf("store: known requests: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: known requests: %w", err)
	}
	known := make(map[string]bool, len(ids))
	for _, id := range ids {
		known[id] = true
	}
	return known, nil
}

// Request reads one request by its PKB message id.
func (s *Store) Request(ctx context.Context, messageID string) (Request, error) {
	r, err := scanRequest(s.pool.QueryRow(ctx, `SELECT `+requestColumns+` FROM requests WHERE message_id = $1`, messageID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Request{}, ErrNotFound
	}
	if err != nil {
		return Request{}, fmt.Errorf("store: read request: %w", err)
	}
	return r, nil
}

// uniqueViolation is PostgreSQL's SQLSTATE for a unique index refusing a row.
const uniqueViolation = "23505"

// ErrAmbiguousRef is a reference two requests share: only references made
// before they were unique can.
var ErrAmbiguousRef = errors.New("store: more than one request has this reference")

// RequestByRef reads one request by its reference, as staff typed it
// (refs.Forms). It refuses, with ErrAmbiguousRef, rather than pick one of
// two requests.
func (s *Store) RequestByRef(ctx context.Context, ref string) (Request, error) {
	forms := refs.Forms(ref)
	if len(forms) == 0 {
		return Request{}, ErrNotFound
	}
	rows, err := s.requests(ctx, "read request", `WHERE ref = ANY($1) LIMIT 2`, forms)
	switch {
	case err != nil:
		return Request{}, err
	case len(rows) == 0:
		return Request{}, ErrNotFound
	case len(rows) > 1:
		return Request{}, ErrAmbiguousRef
	}
	return rows[0], nil
}

// AllRequests returns every request, oldest first.
func (s *Store) AllRequests(ctx context.Context) ([]Request, error) {
	return s.requests(ctx, "list requests", `ORDER BY received_at, message_id`)
}

// RequestFilter selects requests for the dashboard. Empty fields select
// everything; Teams, when not nil, limits the rows to those teams.
type RequestFilter struct {
	Teams     []string
	Team      string
	Specialty string
	Type      string
	// State is a state's name, "any", or empty for every request not
	// yet closed.
	State string
	// OlderThan keeps requests received at least this long ago.
	OlderThan time.Duration
	Limit     int
}

// FindRequests lists the requests f selects, oldest first.
func (s *Store) FindRequests(ctx context.Context, f RequestFilter) ([]Request, error) {
	where := []string{"TRUE"}
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.Teams != nil {
		where = append(where, "lower(team) = ANY("+arg(lower(f.Teams))+")")
	}
	if f.Team != "" {
		where = append(where, "team = "+arg(f.Team))
	}
	if f.Specialty != "" {
		where = append(where, "specialty = "+arg(f.Specialty))
	}
	if f.Type != "" {
		where = append(where, "request_type = "+arg(f.Type))
	}
	switch f.State {
	case "":
		where = append(where, "closed_at IS NULL")
	case "any":
	default:
		where = append(where, "state = "+arg(f.State))
	}
	if f.OlderThan > 0 {
		where = append(where, "received_at <= now() - "+arg(interval(f.OlderThan))+"::interval")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 500
	}
	return s.requests(ctx, "find requests", `WHERE `+strings.Join(where, " AND ")+` ORDER BY received_at, message_id LIMIT `+arg(limit), args...)
}

// RequestFacets are the values the dashboard's filters offer.
type RequestFacets struct{ Teams, Specialties, States []string }

// Facets lists the teams, specialties and states the read model holds.
func (s *Store) Facets(ctx context.Context) (RequestFacets, error) {
	var f RequestFacets
	err := s.pool.QueryRow(ctx, `SELECT
		COALESCE(array_agg(DISTINCT team) FILTER (WHERE team <> ''), '{}'),
		COALESCE(array_agg(DISTINCT specialty) FILTER (WHERE specialty <> ''), '{}'),
		COALESCE(array_agg(DISTINCT state), '{}') FROM requests`).Scan(&f.Teams, &f.Specialties, &f.States)
	if err != nil {
		return f, fmt.Errorf("store: request facets: %w", err)
	}
	return f, nil
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// requests reads the requests a WHERE or ORDER BY clause (where) selects;
// what names the read in errors.
func (s *Store) requests(ctx context.Context, what, where string, args ...any) ([]Request, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+requestColumns+` FROM requests `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", what, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Request, error) { return scanRequest(r) })
}

// WaitingFor returns the open requests about an appointment, or, for a
// new booking, the open change requests of the same patient and specialty
// received before it was created.
func (s *Store) WaitingFor(ctx context.Context, appointmentID, patientID, specialtyCode string, bookedAt time.Time) ([]Request, error) {
	return s.requests(ctx, "waiting requests", `
		WHERE closed_at IS NULL AND (
		    (appointment_id <> '' AND appointment_id = $1)
		 OR (request_type = 'change' AND patient_id <> '' AND patient_id = $2 AND specialty_code = $3 AND received_at <= $4))`,
		appointmentID, patientID, specialtyCode, bookedAt)
}

// CountOpen counts requests not yet closed.
func (s *Store) CountOpen(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM requests WHERE closed_at IS NULL`).Scan(&n)
	return n, err
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

// SlackPost is where a request's Slack message is, or was being posted.
type SlackPost struct {
	Channel   string // channel id
	TS        string // empty until the post is known to have happened
	StartedAt *time.Time
}

// StartSlackPost records the intent to post to channel before posting, and
// returns what was recorded before: a TS means the post already happened;
// a StartedAt without TS means an earlier attempt may have posted and lost
// the answer.
func (s *Store) StartSlackPost(ctx context.Context, messageID, channel string) (SlackPost, error) {
	var before SlackPost
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT slack_channel, slack_ts, slack_post_started_at FROM requests WHERE message_id = $1 FOR UPDATE`, messageID).
			Scan(&before.Channel, &before.TS, &before.StartedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if before.StartedAt == nil {
			_, err = tx.Exec(ctx, `UPDATE requests SET slack_channel = $2, slack_post_started_at = now() WHERE message_id = $1`, messageID, channel)
		}
		return err
	})
	if err != nil {
		return SlackPost{}, fmt.Errorf("store: start slack post: %w", err)
	}
	return before, nil
}

// SetSlackPost records where the request's message is.
func (s *Store) SetSlackPost(ctx context.Context, messageID, channel, ts string) error {
	_, err := s.pool.Exec(ctx, `UPDATE requests SET slack_channel = $2, slack_ts = $3, updated_at = now() WHERE message_id = $1`, messageID, channel, ts)
	if err != nil {
		return fmt.Errorf("store: set slack post: %w", err)
	}
	return nil
}

// StateChange is one transition of a request.
type StateChange struct {
	MessageID string
	State     string
	ClaimedBy string
	ClosedBy  string
	CloseNote string
	Closed    bool
	// Seq is the writer's sequence number: the request's workflow numbers
	// its writes.
	Seq int64
	// TriageReason, when set, marks the request triaged with this reason.
	TriageReason string
}

// ChangeState records a transition in the read model and the audit log,
// in one transaction.
func (s *Store) ChangeState(ctx context.Context, c StateChange, audit AuditEntry) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A write older than the last one applied changes nothing; one
		// without a sequence number (Seq 0) is applied as it comes.
		_, err := tx.Exec(ctx, `
			UPDATE requests SET state = $2,
			    claimed_by = CASE WHEN $3 <> '' THEN $3 ELSE claimed_by END,
			    closed_by = CASE WHEN $4 <> '' THEN $4 ELSE closed_by END,
			    close_note = CASE WHEN $5 <> '' THEN $5 ELSE close_note END,
			    closed_at = CASE WHEN $6 THEN COALESCE(closed_at, now()) ELSE closed_at END,
			    state_seq = GREATEST(state_seq, $7),
			    triage = triage OR $8 <> '',
			    reason = CASE WHEN $8 <> '' THEN $8 ELSE reason END,
			    updated_at = now()
			WHERE message_id = $1 AND ($7 = 0 OR state_seq < $7)`, c.MessageID, c.State, c.ClaimedBy, c.ClosedBy, c.CloseNote, c.Closed, c.Seq, c.TriageReason)
		if err != nil {
			return fmt.Errorf("store: change state: %w", err)
		}
		return auditTx(ctx, tx, audit)
	})
}
