// Package reprocess puts request workflows that failed, were terminated or
// timed out back to work in bulk: each is reset to its last good point
// (the workflow task before the step that failed), or restarted from its
// PKB message. Both are safe to repeat: a run that was already
// reprocessed is no longer its workflow's current run and is skipped, the
// server de-duplicates a repeated reset by its request id, and the
// activities that post to Slack find their earlier post in the store
// instead of posting again.
package reprocess

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"golang.org/x/time/rate"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/replay"
	"github.com/rebookhq/rebook/workflows"
)

// Modes.
const (
	Reset   = "reset"   // to the last good point, keeping what went before
	Restart = "restart" // a new run from the PKB message
)

// Filter selects request workflows when no query is given.
type Filter struct {
	// Statuses are visibility's ExecutionStatus values; Failed if empty.
	Statuses  []string
	From, To  time.Time // StartTime range, either may be zero
	Type      string    // RequestType: cancel or change
	Specialty string
}

// Statuses a filter may name, as visibility spells them.
var Statuses = []string{"Failed", "Terminated", "TimedOut", "Canceled", "Running"}

// Query is the visibility query for f.
func (f Filter) Query() (string, error) {
	parts := []string{"WorkflowType = " + quote(workflows.AppointmentRequestWorkflow)}
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []string{"Failed"}
	}
	var or []string
	for _, s := range statuses {
		canon := ""
		for _, known := range Statuses {
			if strings.EqualFold(s, known) {
				canon = known
			}
		}
		if canon == "" {
			return "", fmt.Errorf("status %q: use one of %s", s, strings.Join(Statuses, ", "))
		}
		or = append(or, "ExecutionStatus = "+quote(canon))
	}
	parts = append(parts, "("+strings.Join(or, " OR ")+")")
	if !f.From.IsZero() {
		parts = append(parts, "StartTime >= "+quote(f.From.UTC().Format(time.RFC3339)))
	}
	if !f.To.IsZero() {
		parts = append(parts, "StartTime < "+quote(f.To.UTC().Format(time.RFC3339)))
	}
	if f.Type != "" {
		parts = append(parts, workflows.RequestTypeKey.GetName()+" = "+quote(f.Type))
	}
	if f.Specialty != "" {
		parts = append(parts, workflows.SpecialtyKey.GetName()+" = "+quote(f.Specialty))
	}
	return strings.Join(parts, " AND "), nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// Candidate is one workflow run the selection found, and what would be
// done with it.
type Candidate struct {
	WorkflowID, RunID, Status string
	Started                   time.Time
	// Failure is the run's failure type and message, or why it closed.
	Failure string
	// ResetTo is the workflow task event a reset goes back to; Step is
	// what runs again from there.
	ResetTo int64
	Step    string
	// Skip says why the run is left alone.
	Skip string
	// ClosedAs is the read model's state of a request it shows closed.
	ClosedAs string
	// input is what the run was started with, from the history Select
	// read, for a restart.
	input *commonpb.Payloads
}

// Options tune Select and Run.
type Options struct {
	Namespace string
	// Failure keeps only runs whose failure type or message contains it
	// (case-insensitive).
	Failure string
	Limit   int
	Mode    string
	// PerSecond caps resets or restarts per second; 2 if zero.
	PerSecond float64
	// Closed says whether the read model shows a request closed, and in
	// what state: such a run is skipped unless Reopen, for a reset or a
	// restart would open a request the team has seen close. Nil checks
	// nothing.
	Closed func(ctx context.Context, workflowID string) (closed bool, state string, err error)
	Reopen bool
}

// Select lists the runs query selects, with each one's failure and reset
// point; a run that is no longer its workflow's current one was already
// reprocessed and is marked skipped.
func Select(ctx context.Context, tc client.Client, query string, o Options) ([]Candidate, error) {
	var out []Candidate
	err := replay.ForEach(ctx, tc, o.Namespace, query, func(e *workflowpb.WorkflowExecutionInfo) (bool, error) {
		if e.GetType().GetName() != workflows.AppointmentRequestWorkflow {
			return false, nil
		}
		c := Candidate{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(),
			Status: status(e.GetStatus()), Started: e.GetStartTime().AsTime()}
		h, err := replay.History(ctx, tc, c.WorkflowID, c.RunID)
		if err != nil {
			return false, err
		}
		c.Failure, c.ResetTo, c.Step = lastGoodPoint(h)
		if evs := h.GetEvents(); len(evs) > 0 {
			c.input = evs[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
		}
		if o.Failure != "" && !strings.Contains(strings.ToLower(c.Failure), strings.ToLower(o.Failure)) {
			return false, nil
		}
		d, err := tc.DescribeWorkflowExecution(ctx, c.WorkflowID, "")
		if err != nil {
			return false, fmt.Errorf("describe %s: %w", c.WorkflowID, err)
		}
		if cur := d.GetWorkflowExecutionInfo().GetExecution().GetRunId(); cur != c.RunID {
			c.Skip = "already reprocessed: run " + cur + " is " + status(d.GetWorkflowExecutionInfo().GetStatus())
		}
		if o.Closed != nil && c.Skip == "" {
			closed, state, err := o.Closed(ctx, c.WorkflowID)
			if err != nil {
				return false, fmt.Errorf("read model of %s: %w", c.WorkflowID, err)
			}
			if closed {
				c.ClosedAs = state
				if !o.Reopen {
					c.Skip = "closed in the read model (" + state + "): --reopen to reprocess it anyway"
				}
			}
		}
		out = append(out, c)
		return o.Limit > 0 && len(out) >= o.Limit, nil
	})
	return out, err
}

func status(s enums.WorkflowExecutionStatus) string {
	return strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_")
}

// lastGoodPoint reads a run's history for why it closed and where to
// reset it: to the workflow task that scheduled the activity that failed
// it, so that activity runs again; otherwise to the last completed
// workflow task.
func lastGoodPoint(h *historypb.History) (failure string, resetTo int64, step string) {
	scheduled := map[int64]*historypb.HistoryEvent{}
	var lastCompleted int64
	var failedActivity int64
	for _, e := range h.GetEvents() {
		switch e.GetEventType() {
		case enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			lastCompleted = e.GetEventId()
		case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[e.GetEventId()] = e
		case enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
			f := e.GetWorkflowExecutionFailedEventAttributes().GetFailure()
			failure = f.GetMessage()
			for c := f; c != nil; c = c.GetCause() {
				if ai := c.GetActivityFailureInfo(); ai != nil && failedActivity == 0 {
					failedActivity = ai.GetScheduledEventId()
				}
				if app := c.GetApplicationFailureInfo(); app != nil && app.GetType() != "" {
					failure = app.GetType() + ": " + c.GetMessage()
				}
			}
		case enums.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			failure = "terminated: " + e.GetWorkflowExecutionTerminatedEventAttributes().GetReason()
		case enums.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
			failure = "timed out"
		case enums.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
			failure = "cancelled"
		}
	}
	if s, ok := scheduled[failedActivity]; ok {
		a := s.GetActivityTaskScheduledEventAttributes()
		return failure, a.GetWorkflowTaskCompletedEventId(), "activity " + a.GetActivityType().GetName()
	}
	if lastCompleted > 0 {
		return failure, lastCompleted, "the last workflow task"
	}
	return failure, 0, ""
}

// Outcome is what happened to one candidate.
type Outcome struct {
	Candidate
	Done   string // "reset", "restarted", or empty
	NewRun string
	Err    error
}

// Summary counts a run.
type Summary struct {
	Reset, Restarted, Skipped, Failed int
	// Closed are the skipped runs whose request the read model shows
	// closed; Reopened those reprocessed anyway (Options.Reopen).
	Closed, Reopened int
}

// Run resets or restarts each candidate not marked skipped, at most
// o.PerSecond a second, calling each after every one.
func Run(ctx context.Context, tc client.Client, dc converter.DataConverter, cands []Candidate, o Options, each func(Outcome)) (Summary, error) {
	if o.Mode != Reset && o.Mode != Restart {
		return Summary{}, fmt.Errorf("mode %q: use %s or %s", o.Mode, Reset, Restart)
	}
	per := o.PerSecond
	if per <= 0 {
		per = 2
	}
	lim := rate.NewLimiter(rate.Limit(per), 1)
	var sum Summary
	for _, c := range cands {
		out := Outcome{Candidate: c}
		switch {
		case c.Skip != "":
			sum.Skipped++
			if c.ClosedAs != "" {
				sum.Closed++
			}
		case o.Mode == Reset && c.ResetTo == 0:
			out.Skip = "no workflow task completed to reset to: use --mode restart"
			sum.Skipped++
		default:
			if err := lim.Wait(ctx); err != nil {
				return sum, err
			}
			if o.Mode == Reset {
				out.NewRun, out.Err = reset(ctx, tc, o.Namespace, c)
				out.Done = "reset"
			} else {
				out.NewRun, out.Err = restart(ctx, tc, dc, c)
				out.Done = "restarted"
			}
			var already *serviceerror.WorkflowExecutionAlreadyStarted
			switch {
			case errors.As(out.Err, &already):
				out.Err, out.Done, out.Skip = nil, "", "already running again"
				sum.Skipped++
			case out.Err != nil:
				out.Done = ""
				sum.Failed++
			case o.Mode == Reset:
				sum.Reset++
			default:
				sum.Restarted++
			}
			if out.Err == nil && out.Done != "" && c.ClosedAs != "" {
				sum.Reopened++
			}
		}
		if each != nil {
			each(out)
		}
	}
	return sum, nil
}

// requestID is the same for the same run and mode, so the server drops a
// repeated call.
func requestID(c Candidate, mode string) string {
	h := sha256.Sum256([]byte(mode + "/" + c.WorkflowID + "/" + c.RunID))
	return hex.EncodeToString(h[:16])
}

func reset(ctx context.Context, tc client.Client, ns string, c Candidate) (string, error) {
	resp, err := tc.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 ns,
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: c.WorkflowID, RunId: c.RunID},
		Reason:                    "starter reprocess: reset to event " + fmt.Sprint(c.ResetTo) + " (" + c.Step + ")",
		WorkflowTaskFinishEventId: c.ResetTo,
		RequestId:                 requestID(c, Reset),
	})
	if err != nil {
		return "", fmt.Errorf("reset %s: %w", c.WorkflowID, err)
	}
	return resp.GetRunId(), nil
}

// restart starts the request again from its PKB message, as the poller
// would, with the same workflow id.
func restart(ctx context.Context, tc client.Client, dc converter.DataConverter, c Candidate) (string, error) {
	if len(c.input.GetPayloads()) == 0 {
		return "", fmt.Errorf("restart %s: its first event holds no input", c.WorkflowID)
	}
	var ref activities.MessageRef
	if err := dc.FromPayload(c.input.GetPayloads()[0], &ref); err != nil {
		return "", fmt.Errorf("restart %s: read its message reference: %w", c.WorkflowID, err)
	}
	if ref.ID == "" {
		return "", fmt.Errorf("restart %s: its input names no message", c.WorkflowID)
	}
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: c.WorkflowID, TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.AppointmentRequestWorkflow, ref)
	if err != nil {
		return "", fmt.Errorf("restart %s: %w", c.WorkflowID, err)
	}
	return run.GetRunID(), nil
}
