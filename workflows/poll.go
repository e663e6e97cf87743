package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/metrics"
)

// The scheduled workflows' names and their schedules' ids.
const (
	PollMessagesWorkflow      = "PollMessages"
	WatchAppointmentsWorkflow = "WatchAppointments"
	ReconcileMessagesWorkflow = "ReconcileMessages"
	PollScheduleID            = "rebook-poll-messages"
	WatchScheduleID           = "rebook-watch-appointments"
	ReconcileScheduleID       = "rebook-reconcile-messages"
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
		page, n, err := readAndStart(ctx, after)
		if err != nil || len(page) == 0 {
			return res, err
		}
		res.Pages++
		res.Started += n
		after = page[len(page)-1].Timestamp
		if err := workflow.ExecuteActivity(ctx, pollActs.AdvanceCursor, after).Get(ctx, nil); err != nil {
			return res, err
		}
	}
	return res, nil
}

// readAndStart reads one page of open requests after a timestamp and
// starts a workflow for each Rebook has not seen; an empty page means
// there are no more. The poll and the reconciliation share it.
func readAndStart(ctx workflow.Context, after int64) ([]activities.MessageRef, int, error) {
	var page []activities.MessageRef
	if err := workflow.ExecuteActivity(ctx, pollActs.ReadMessages, after).Get(ctx, &page); err != nil || len(page) == 0 {
		return nil, 0, err
	}
	var n int
	err := workflow.ExecuteActivity(ctx, pollActs.StartRequests, page).Get(ctx, &n)
	return page, n, err
}

// ReconcileWindow is how far back the daily reconciliation reads PKB's
// open requests.
const ReconcileWindow = 7 * 24 * time.Hour

// maxPagesPerReconcile bounds a reconciliation's history (two activities
// a page); the window is read again the next day.
const maxPagesPerReconcile = 100

// ReconcileResult says what a reconciliation found.
type ReconcileResult struct {
	Pages   int
	Read    int // open requests PKB holds from the window
	Started int // of them, ones Rebook had never seen
}

// ReconcileMessages is the daily safety net under the poll: it reads
// every open request PKB holds from the last ReconcileWindow, starts any
// Rebook has never seen (a message PKB stored later than the poll's
// overlap), and tells the admins how many. Messages already known cost
// no call to Temporal; the cursor is not touched.
func ReconcileMessages(ctx workflow.Context) (ReconcileResult, error) {
	ctx = workflow.WithActivityOptions(ctx, scheduledRun)
	var res ReconcileResult
	after := workflow.Now(ctx).Add(-ReconcileWindow).UnixMilli()
	for res.Pages < maxPagesPerReconcile {
		page, n, err := readAndStart(ctx, after)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			break
		}
		res.Pages++
		res.Read += len(page)
		res.Started += n
		after = page[len(page)-1].Timestamp
	}
	workflow.GetMetricsHandler(ctx).Counter(metrics.RequestsReconciled).Inc(int64(res.Started))
	text := fmt.Sprintf("Daily check of PKB: %d open requests from the last %d days, all already known.", res.Read, int(ReconcileWindow.Hours()/24))
	if res.Started > 0 {
		text = fmt.Sprintf(":warning: Daily check of PKB: %d of %d open requests from the last %d days had been missed by the poll and are started now. They are routed as usual; their cards show the time the patient wrote.",
			res.Started, res.Read, int(ReconcileWindow.Hours()/24))
	}
	err := workflow.ExecuteActivity(withSlack(ctx), noticeActs.Notify, activities.NotifyInput{Text: text, ToAdmins: true}).Get(ctx, nil)
	return res, err
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
