package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
)

// maxPagesPerPoll bounds one run's history; the next scheduled run goes on
// from the cursor.
const maxPagesPerPoll = 20

// PollResult says what one poll did.
type PollResult struct {
	Pages   int
	Started int
}

// PollMessages reads new requests after the cursor, page by page, starts
// one AppointmentRequest per message, and only then advances the cursor.
// A crash between the two repeats the starts, which are harmless
// (reject-duplicate ids), and never skips a message.
func PollMessages(ctx workflow.Context) (PollResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
	var res PollResult
	var after int64
	if err := workflow.ExecuteActivity(ctx, activities.NameLoadCursor).Get(ctx, &after); err != nil {
		return res, err
	}
	for res.Pages < maxPagesPerPoll {
		var page []activities.MessageRef
		if err := workflow.ExecuteActivity(ctx, activities.NameReadMessages, after).Get(ctx, &page); err != nil {
			return res, err
		}
		if len(page) == 0 {
			break
		}
		res.Pages++
		var n int
		if err := workflow.ExecuteActivity(ctx, activities.NameStartRequests, page).Get(ctx, &n); err != nil {
			return res, err
		}
		res.Started += n
		after = page[len(page)-1].Timestamp
		if err := workflow.ExecuteActivity(ctx, activities.NameAdvanceCursor, after).Get(ctx, nil); err != nil {
			return res, err
		}
	}
	return res, nil
}

// WatchAppointments runs the watcher once.
func WatchAppointments(ctx workflow.Context) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
	var n int
	err := workflow.ExecuteActivity(ctx, activities.NameWatchAppointments).Get(ctx, &n)
	return n, err
}
