package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// asLogin is dbURL with another user.
func asLogin(t *testing.T, dbURL, login string) string {
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	u.User = url.User(login)
	return u.String()
}

func denied(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501" // insufficient_privilege
}

// Finding 16: `starter migrate` (the owner, with DDL rights) leaves an
// application role with rows but no schema rights; its login cannot
// migrate, cannot update or delete an audit row (nobody can delete one,
// the owner included), and redacts only through retention's function;
// the reporting views carry no workflow id and no staff names.
func TestSecurityLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	owner, dbURL := open(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	login := "rebook_test_login_" + hex.EncodeToString(b)
	require.NoError(t, owner.EnsureLogin(ctx, login, ""))
	t.Cleanup(func() {
		// The role is the server's, not the test database's.
		_, _ = owner.Pool().Exec(context.Background(), `REASSIGN OWNED BY `+pgx.Identifier{login}.Sanitize()+` TO CURRENT_USER`)
		_, _ = owner.Pool().Exec(context.Background(), `DROP OWNED BY `+pgx.Identifier{login}.Sanitize())
		_, _ = owner.Pool().Exec(context.Background(), `DROP ROLE `+pgx.Identifier{login}.Sanitize())
	})

	app, err := store.Connect(ctx, asLogin(t, dbURL, login), key)
	require.NoError(t, err)
	t.Cleanup(app.Close)
	require.NoError(t, app.CheckSchema(ctx), "the login reads the schema's version")
	_, err = app.Pool().Exec(ctx, `CREATE TABLE intruder (x int)`)
	assert.True(t, denied(err), "no DDL: %v", err)

	// Rows: the app's everyday work.
	id := "m1"
	wid := workflows.RequestWorkflowID(id)
	closed := time.Now().Add(-200 * 24 * time.Hour)
	require.NoError(t, app.SaveRequest(ctx, store.Request{MessageID: id, WorkflowID: wid, Ref: "RB-AAAA-0001", PatientID: "p-1", Team: "Cardiology",
		State: workflows.StateCompleted, ReceivedAt: closed.Add(-time.Hour), ClosedAt: &closed}))
	require.NoError(t, app.Audit(ctx, store.AuditEntry{Actor: "sam", Action: "test-entry", Subject: wid, Detail: map[string]string{"note": "patient rang", "team": "Cardiology"}}))

	// The audit log is append-only for the app.
	_, err = app.Pool().Exec(ctx, `UPDATE audit_log SET actor = 'someone else'`)
	assert.True(t, denied(err), "update: %v", err)
	_, err = app.Pool().Exec(ctx, `DELETE FROM audit_log`)
	assert.True(t, denied(err), "delete: %v", err)
	_, err = app.Pool().Exec(ctx, `TRUNCATE audit_log`)
	assert.True(t, denied(err), "truncate: %v", err)
	// ... and for the owner too, but through redaction.
	_, err = owner.Pool().Exec(ctx, `DELETE FROM audit_log`)
	assert.ErrorContains(t, err, "never deleted")
	_, err = owner.Pool().Exec(ctx, `UPDATE audit_log SET detail = '{}'`)
	assert.ErrorContains(t, err, "only through retention")
	_, err = owner.Pool().Exec(ctx, `SELECT set_config('rebook.redacting', 'on', false); UPDATE audit_log SET actor = 'x'`)
	assert.ErrorContains(t, err, "detail only", "even redaction touches nothing but the detail")

	// Retention's redaction, as the app.
	n, err := app.RedactClosed(ctx, time.Now().Add(-90*24*time.Hour), 10, 90)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	trail, err := app.AuditTrail(ctx, wid)
	require.NoError(t, err)
	require.NotEmpty(t, trail)
	assert.Equal(t, "sam", trail[0].Actor)
	assert.Empty(t, trail[0].Detail["note"], "free text redacted")
	assert.Equal(t, "Cardiology", trail[0].Detail["team"])

	// Reporting: teams, not people; no workflow id.
	rows, err := owner.Pool().Query(ctx, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'reporting'`)
	require.NoError(t, err)
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var tbl, col string
		err := r.Scan(&tbl, &col)
		return tbl + "." + col, err
	})
	require.NoError(t, err)
	assert.Contains(t, cols, "requests.team")
	for _, bad := range []string{"requests.workflow_id", "requests.claimed_by", "requests.closed_by", "transitions.actor"} {
		assert.NotContains(t, cols, bad)
	}
}
