package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReportQuery asks for requests counted per period and per specialty or
// team, received in [From, To) (UK days).
type ReportQuery struct {
	From, To time.Time
	By       string // "specialty" or "team"
	Every    string // "day", "week" or "month"
}

// ReportRow is one period and specialty (or team).
type ReportRow struct {
	Period      time.Time // the period's first UK day
	Key         string    // the specialty or team
	Requests    int
	Cancel      int
	Change      int
	Closed      int
	MedianHours *float64 // time to close, of the closed ones; nil when none closed
	P90Hours    *float64
	SLABreaches int
}

// Report counts requests per period and specialty or team: volume, cancel
// versus change, time to close (median, 90th percentile) and SLA breaches.
func (s *Store) Report(ctx context.Context, q ReportQuery) ([]ReportRow, error) {
	col := map[string]string{"specialty": "specialty", "team": "team"}[q.By]
	if col == "" {
		return nil, fmt.Errorf("store: report by %q: want specialty or team", q.By)
	}
	switch q.Every {
	case "day", "week", "month":
	default:
		return nil, fmt.Errorf("store: report every %q: want day, week or month", q.Every)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT date_trunc($1, received_at AT TIME ZONE 'Europe/London')::date AS period, COALESCE(NULLIF(`+col+`, ''), 'unknown'),
		       count(*)::int,
		       (count(*) FILTER (WHERE request_type = 'cancel'))::int,
		       (count(*) FILTER (WHERE request_type = 'change'))::int,
		       (count(*) FILTER (WHERE closed_at IS NOT NULL))::int,
		       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - received_at) / 3600) FILTER (WHERE closed_at IS NOT NULL),
		       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - received_at) / 3600) FILTER (WHERE closed_at IS NOT NULL),
		       (count(*) FILTER (WHERE due_at IS NOT NULL AND COALESCE(closed_at, now()) > due_at))::int
		FROM requests
		WHERE (received_at AT TIME ZONE 'Europe/London')::date >= $2::date AND (received_at AT TIME ZONE 'Europe/London')::date < $3::date
		GROUP BY 1, 2 ORDER BY 1, 2`, q.Every, q.From.Format("2006-01-02"), q.To.Format("2006-01-02"))
	if err != nil {
		return nil, fmt.Errorf("store: report: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReportRow, error) {
		var x ReportRow
		err := r.Scan(&x.Period, &x.Key, &x.Requests, &x.Cancel, &x.Change, &x.Closed, &x.MedianHours, &x.P90Hours, &x.SLABreaches)
		return x, err
	})
}
