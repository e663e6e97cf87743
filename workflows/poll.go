package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
)

// The scheduled workflows' names and their schedules' ids.
const (
	PollMessagesWorkflow      = "PollMessages"
	WatchAppointmentsWorkflow = "WatchAppointments"
	PollScheduleID            = "rebook-poll-messages"
	WatchScheduleID           = "rebook-watch-appointments"
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
	ctx = workflow.WithActivityOptions(ctx, scheduledRun)
	var res PollResult
	var after int64
	if err := workflow.ExecuteActivity(ctx, pollActs.LoadCursor).Get(ctx, &after); err != nil {
		return res, err
	}
	for res.Pages < maxPagesPerPoll {
		var page []activities.MessageRef
		if err := workflow.ExecuteActivity(ctx, pollActs.ReadMessages, after).Get(ctx, &page); err != nil {
			return res, err
		}
		if len(page) == 0 {
			break
		}
		res.Pages++
		var n int
		if err := workflow.ExecuteActivity(ctx, pollActs.StartRequests, page).Get(ctx, &n); err != nil {
			return res, err
		}
		res.Started += n
		after = page[len(page)-1].Timestamp
		if err := workflow.ExecuteActivity(ctx, pollActs.AdvanceCursor, after).Get(ctx, nil); err != nil {
			return res, err
		}
	}
	return res, nil
}

// WatchAppointments runs the watcher once; its result says how it watched
// (patient by patient, or across all patients where PKB allows it) and
// what it did, for operators in the Web UI.
func WatchAppointments(ctx workflow.Context) (activities.WatchResult, error) {
	ctx = workflow.WithActivityOptions(ctx, scheduledRun)
	var res activities.WatchResult
	err := workflow.ExecuteActivity(ctx, apptActs.WatchAppointments).Get(ctx, &res)
	return res, err
}
