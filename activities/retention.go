package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/internal/store"
)

// RetentionActivities remove patient identifiers and free text from
// requests closed longer ago than the retention period.
type RetentionActivities struct {
	Store *store.Store
	// Days is the retention period: how long after a request closes its
	// identifiers are kept (REBOOK_RETENTION_DAYS).
	Days int
}

// RedactBatch is how many requests one redact-closed call redacts at most,
// in one transaction.
const RedactBatch = 500

// RedactResult says what one redact-closed call did.
type RedactResult struct {
	Redacted int
	// More says the batch was full: more may be due.
	More bool
	// Cutoff is the close time before which requests were due.
	Cutoff time.Time
}

// RedactClosed redacts up to RedactBatch requests closed more than Days
// ago. The period is read here, not in the workflow, so a change of
// setting applies from the next run without touching the Schedule.
func (a *RetentionActivities) RedactClosed(ctx context.Context) (RedactResult, error) {
	if a.Days < 1 {
		// A period left at zero would redact every closed request at once.
		return RedactResult{}, temporal.NewNonRetryableApplicationError("retention: the period is not set (REBOOK_RETENTION_DAYS must be 1 or more); nothing was redacted", "RetentionUnset", nil)
	}
	// The feed's updates kept for requests never routed go after a week.
	if err := a.Store.SweepPending(ctx); err != nil {
		return RedactResult{}, err
	}
	cutoff := time.Now().Add(-time.Duration(a.Days) * 24 * time.Hour)
	n, err := a.Store.RedactClosed(ctx, cutoff, RedactBatch, a.Days)
	if err != nil {
		return RedactResult{}, err
	}
	return RedactResult{Redacted: n, More: n == RedactBatch, Cutoff: cutoff}, nil
}
