package main

import (
	"bytes"
	"context"
	"encoding/csv"
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

// `starter report --by specialty --every week --format csv` prints one row
// per specialty and week whose counts equal the read model's.
func TestReportCountsEqualTheReadModel(t *testing.T) {
	url := testdb.URL(t)
	t.Setenv("DATABASE_URL", url)
	ctx := context.Background()
	st, err := store.Open(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	monday := time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)
	specialties := []string{"Cardiology", "Dermatology", "Neurology"}
	for i := range 40 {
		id := fmt.Sprintf("m%02d", i)
		received := monday.Add(time.Duration(i*9) * time.Hour) // over about 15 days
		typ := []string{"cancel", "change"}[i%2]
		r := store.Request{MessageID: id, WorkflowID: workflows.RequestWorkflowID(id), Ref: "RB-" + id, State: workflows.StateRouted,
			RequestType: typ, Specialty: specialties[i%3], Team: "T", ReceivedAt: received}
		if i%4 == 0 {
			closed := received.Add(time.Duration(i+1) * time.Hour)
			r.ClosedAt, r.State = &closed, workflows.StateCompleted
		}
		require.NoError(t, st.SaveRequest(ctx, r))
	}

	var out bytes.Buffer
	require.NoError(t, printReport(ctx, []string{"--from", "2027-03-01", "--to", "2027-03-31", "--by", "specialty", "--every", "week", "--format", "csv"}, &out))
	recs, err := csv.NewReader(&out).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	assert.Equal(t, []string{"period", "specialty", "requests", "cancel", "change", "closed_requests", "median_hours_to_close", "p90_hours_to_close", "sla_breaches"}, recs[0])

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer func() { _ = conn.Close(ctx) }()
	total := 0
	seen := map[string]bool{}
	for _, rec := range recs[1:] {
		key := rec[0] + "/" + rec[1]
		assert.False(t, seen[key], "one row per specialty and week: %s", key)
		seen[key] = true
		var want, closed int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*), count(closed_at) FROM requests
			WHERE specialty = $1 AND date_trunc('week', received_at AT TIME ZONE 'Europe/London')::date = $2::date`, rec[1], rec[0]).Scan(&want, &closed))
		assert.Equal(t, fmt.Sprint(want), rec[2], key)
		assert.Equal(t, fmt.Sprint(closed), rec[5], key)
		var n int
		_, _ = fmt.Sscan(rec[2], &n)
		total += n
	}
	assert.Equal(t, 40, total, "every request is counted once")
	assert.GreaterOrEqual(t, len(recs)-1, 6, "three specialties over at least two weeks")

	out.Reset()
	assert.Error(t, printReport(ctx, []string{"--by", "clinic"}, &out), "only specialty or team")
	assert.Error(t, printReport(ctx, []string{"--every", "year"}, &out))
}
