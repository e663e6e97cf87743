package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/metrics"
)

// The retention workflow's name and its schedule's id.
const (
	RedactClosedRequestsWorkflow = "RedactClosedRequests"
	RetentionScheduleID          = "rebook-retention"
)

// maxRedactBatches bounds one run's history; what is left is redacted by
// the next day's run.
const maxRedactBatches = 200

// RedactResult says what one retention run did.
type RedactResult struct {
	Batches  int
	Redacted int
}

// RedactClosedRequests removes, batch by batch, the patient identifiers
// and free text of requests closed longer ago than the retention period,
// keeping each request's audit trail. It runs daily on a Schedule.
func RedactClosedRequests(ctx workflow.Context) (RedactResult, error) {
	ctx = workflow.WithActivityOptions(ctx, scheduledRun)
	var res RedactResult
	for res.Batches < maxRedactBatches {
		var b activities.RedactResult
		if err := workflow.ExecuteActivity(ctx, retainActs.RedactClosed).Get(ctx, &b); err != nil {
			return res, err
		}
		res.Batches++
		res.Redacted += b.Redacted
		if !b.More {
			break
		}
	}
	workflow.GetMetricsHandler(ctx).Counter(metrics.RequestsRedacted).Inc(int64(res.Redacted))
	return res, nil
}
