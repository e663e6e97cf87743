package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

var key = bytes.Repeat([]byte{0x42}, 32)

func open(t *testing.T) (*store.Store, string) {
	t.Helper()
	url := testdb.URL(t)
	s, err := store.Open(context.Background(), url, key)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s, url
}

func TestOpenCreatesDatabaseAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, url := open(t)
	// A second process opening the same database migrates nothing new.
	again, err := store.Open(ctx, url, key)
	require.NoError(t, err)
	again.Close()
	var n int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('routing_rules','requests','poll_cursors','pkb_grants','oauth_states','audit_log')`).Scan(&n))
	assert.Equal(t, 6, n)
}

func TestOpenUnreachableNamesTheProblem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := store.Open(ctx, "postgres://postgres@127.0.0.1:1/rebook?sslmode=disable&connect_timeout=2", key)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot reach PostgreSQL at 127.0.0.1:1")
}

func TestCursorOnlyMovesForward(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	ms, err := s.Cursor(ctx, "messages")
	require.NoError(t, err)
	assert.Zero(t, ms)
	require.NoError(t, s.AdvanceCursor(ctx, "messages", 1000))
	require.NoError(t, s.AdvanceCursor(ctx, "messages", 500))
	ms, err = s.Cursor(ctx, "messages")
	require.NoError(t, err)
	assert.EqualValues(t, 1000, ms)
	require.NoError(t, s.AdvanceCursor(ctx, "messages", 2000))
	ms, _ = s.Cursor(ctx, "messages")
	assert.EqualValues(t, 2000, ms)
}

func TestReplaceRulesIsAllOrNothing(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	good := []store.Rule{
		{Specialty: "Cardiology", Team: "Cardiology bookings", SlackChannel: "cardio-bookings", SLAHours: 48},
		{Team: "Central appointments", SlackChannel: "appointments", SLAHours: 72},
	}
	require.NoError(t, s.ReplaceRules(ctx, good))
	got, err := s.Rules(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, good, got)

	bad := []store.Rule{
		{Specialty: "Dermatology", Team: "Derm", SlackChannel: "derm", SLAHours: 24},
		{Specialty: "Dermatology", Team: "Derm again", SlackChannel: "derm2", SLAHours: 24},
	}
	err = s.ReplaceRules(ctx, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rule 2")
	got, _ = s.Rules(ctx)
	assert.ElementsMatch(t, good, got, "a failed import changes nothing")

	err = s.ReplaceRules(ctx, []store.Rule{{RequestType: "postpone", Team: "x", SlackChannel: "y", SLAHours: 1}})
	assert.Error(t, err)
	err = s.ReplaceRules(ctx, []store.Rule{{Team: "x", SlackChannel: "y", SLAHours: 0}})
	assert.Error(t, err)
}

func TestRequestsReadModel(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	_, err := s.Request(ctx, "msg-1")
	assert.ErrorIs(t, err, store.ErrNotFound)
	recv := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	r := store.Request{MessageID: "msg-1", WorkflowID: workflows.RequestWorkflowID("msg-1"), State: workflows.StateRouted, RequestType: "cancel", Specialty: "Cardiology", ReceivedAt: recv}
	require.NoError(t, s.SaveRequest(ctx, r))
	closed := recv.Add(time.Hour)
	r.State, r.ClosedAt = workflows.StateCompleted, &closed
	require.NoError(t, s.SaveRequest(ctx, r))
	got, err := s.Request(ctx, "msg-1")
	require.NoError(t, err)
	assert.Equal(t, workflows.StateCompleted, got.State)
	assert.True(t, got.ReceivedAt.Equal(recv))
	require.NotNil(t, got.ClosedAt)
	assert.True(t, got.ClosedAt.Equal(closed))
	counts, err := s.CountRequestsByState(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{workflows.StateCompleted: 1}, counts)
}

func TestGrantTokensAreSealed(t *testing.T) {
	s, url := open(t)
	ctx := context.Background()
	_, err := s.Grant(ctx, "client")
	assert.ErrorIs(t, err, store.ErrNotFound)
	exp := time.Now().Add(30 * time.Minute).Truncate(time.Microsecond)
	g := store.Grant{ClientID: "client", AccessToken: "access-AAAA-1234", RefreshToken: "refresh-BBBB-5678", AccessExpiresAt: exp, Status: store.GrantHealthy}
	require.NoError(t, s.SaveGrant(ctx, g))
	got, err := s.Grant(ctx, "client")
	require.NoError(t, err)
	assert.Equal(t, g.AccessToken, got.AccessToken)
	assert.Equal(t, g.RefreshToken, got.RefreshToken)
	assert.True(t, exp.Equal(got.AccessExpiresAt))

	// What PostgreSQL holds does not contain either token.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	var raw string
	require.NoError(t, conn.QueryRow(ctx, `SELECT row_to_json(g)::text FROM pkb_grants g`).Scan(&raw))
	assert.NotContains(t, raw, "AAAA-1234")
	assert.NotContains(t, raw, "BBBB-5678")
	var at, rt []byte
	require.NoError(t, conn.QueryRow(ctx, `SELECT access_token, refresh_token FROM pkb_grants`).Scan(&at, &rt))
	assert.False(t, bytes.Contains(at, []byte("AAAA-1234")))

	// Another key cannot open them; nor can a swapped column.
	other, err := store.Open(ctx, url, bytes.Repeat([]byte{1}, 32))
	require.NoError(t, err)
	defer other.Close()
	_, err = other.Grant(ctx, "client")
	assert.Error(t, err)
	_, err = conn.Exec(ctx, `UPDATE pkb_grants SET access_token = refresh_token`)
	require.NoError(t, err)
	_, err = s.Grant(ctx, "client")
	assert.Error(t, err, "sealed values are bound to their column")

	now := time.Now()
	require.NoError(t, s.SaveGrant(ctx, store.Grant{ClientID: "client", Status: store.GrantNeedsGrant, NeededSince: &now, LastError: "invalid_grant"}))
	got, err = s.Grant(ctx, "client")
	require.NoError(t, err)
	assert.Equal(t, store.GrantNeedsGrant, got.Status)
	assert.Empty(t, got.AccessToken)
	assert.Error(t, s.SaveGrant(ctx, store.Grant{ClientID: "client", Status: "fine"}))

	nokey, err := store.Open(ctx, url, nil)
	require.NoError(t, err)
	defer nokey.Close()
	assert.ErrorIs(t, nokey.SaveGrant(ctx, g), store.ErrNoKey)
}

func TestOAuthStateSingleUseAndExpiry(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	st, err := s.NewOAuthState(ctx, "client", "starter grant-link", time.Minute)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(st), 40)
	id, by, err := s.ConsumeOAuthState(ctx, st)
	require.NoError(t, err)
	assert.Equal(t, "client", id)
	assert.Equal(t, "starter grant-link", by)
	_, _, err = s.ConsumeOAuthState(ctx, st)
	assert.ErrorIs(t, err, store.ErrStateUnknown, "replay refused")
	_, _, err = s.ConsumeOAuthState(ctx, "forged")
	assert.ErrorIs(t, err, store.ErrStateUnknown)

	old, err := s.NewOAuthState(ctx, "client", "", -time.Second)
	require.NoError(t, err)
	_, _, err = s.ConsumeOAuthState(ctx, old)
	assert.ErrorIs(t, err, store.ErrStateExpired)

	// The next state sweeps the expired ones.
	stale, err := s.NewOAuthState(ctx, "client", "", -time.Second)
	require.NoError(t, err)
	_, err = s.NewOAuthState(ctx, "client", "", time.Minute)
	require.NoError(t, err)
	_, _, err = s.ConsumeOAuthState(ctx, stale)
	assert.ErrorIs(t, err, store.ErrStateUnknown, "swept at expiry")
}

func TestAuditTrail(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	require.NoError(t, s.Audit(ctx, store.AuditEntry{Actor: "worker", Action: workflows.StateRouted, Subject: workflows.RequestWorkflowID("msg-1"), Detail: map[string]string{"team": "Cardiology"}}))
	require.NoError(t, s.Audit(ctx, store.AuditEntry{Actor: "U123", Action: workflows.StateClaimed, Subject: workflows.RequestWorkflowID("msg-1")}))
	require.NoError(t, s.Audit(ctx, store.AuditEntry{Actor: "worker", Action: workflows.StateRouted, Subject: workflows.RequestWorkflowID("msg-2")}))
	trail, err := s.AuditTrail(ctx, workflows.RequestWorkflowID("msg-1"))
	require.NoError(t, err)
	require.Len(t, trail, 2)
	assert.Equal(t, workflows.StateRouted, trail[0].Action)
	assert.Equal(t, "Cardiology", trail[0].Detail["team"])
	assert.Equal(t, workflows.StateClaimed, trail[1].Action)
}

// The reporting role reads the reporting views and nothing else: a trust's
// BI connects with it and cannot see the tables (or patient ids) behind.
func TestReportingRoleReadsOnlyTheViews(t *testing.T) {
	s, url := open(t)
	ctx := context.Background()
	require.NoError(t, s.SaveRequest(ctx, store.Request{MessageID: "m1", WorkflowID: workflows.RequestWorkflowID("m1"), Ref: "RB-1",
		State: workflows.StateRouted, RequestType: "cancel", Specialty: "Cardiology", Team: "Cardio", PatientID: "pat-1", ReceivedAt: time.Now()}))

	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer func() { _ = admin.Close(ctx) }()
	reader := fmt.Sprintf("bi_reader_%d", time.Now().UnixNano())
	_, err = admin.Exec(ctx, "CREATE ROLE "+reader+" LOGIN IN ROLE rebook_reporting")
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+reader) })

	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg.User = reader
	bi, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer func() { _ = bi.Close(ctx) }()
	var n int
	require.NoError(t, bi.QueryRow(ctx, `SELECT count(*) FROM reporting.requests WHERE specialty = 'Cardiology'`).Scan(&n))
	assert.Equal(t, 1, n)
	require.NoError(t, bi.QueryRow(ctx, `SELECT coalesce(sum(requests), 0) FROM reporting.requests_per_day`).Scan(&n))
	assert.Equal(t, 1, n)
	_, err = bi.Exec(ctx, `SELECT patient_id FROM public.requests`)
	assert.ErrorContains(t, err, "permission denied", "the table behind the view is refused")
	_, err = bi.Exec(ctx, `SELECT patient_id FROM reporting.requests`)
	assert.Error(t, err, "the view has no patient id")
	_, err = bi.Exec(ctx, `SELECT * FROM public.pkb_grants`)
	assert.ErrorContains(t, err, "permission denied")
}
