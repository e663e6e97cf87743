// Package wfclient is how Rebook's processes reach its workflows from
// outside them: start a request, tell it its appointment changed, apply a
// staff action, start the TokenKeeper, ask it to refresh, pass on a grant.
// It is the one place where the workflows' ids and message names meet a
// Temporal client.
package wfclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/workflows"
)

// Client reaches Rebook's workflows through a Temporal client.
type Client struct {
	Temporal client.Client
}

var _ activities.Requests = Client{}

// Start starts the request for a message with reject-duplicate, so a
// message is never handled twice; false if it already existed.
func (c Client) Start(ctx context.Context, ref activities.MessageRef) (string, bool, error) {
	id := workflows.RequestWorkflowID(ref.ID)
	_, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.AppointmentRequestWorkflow, ref)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return id, false, nil
	}
	return id, err == nil, err
}

// AppointmentChanged signals a waiting request. A request that has ended
// no longer needs telling.
func (c Client) AppointmentChanged(ctx context.Context, workflowID string, u activities.AppointmentUpdate) error {
	return c.signalRequest(ctx, workflowID, workflows.SignalAppointmentChanged, u)
}

// CheckRefused tells a waiting request that PKB refuses to show its
// patient's appointments.
func (c Client) CheckRefused(ctx context.Context, workflowID, reason string) error {
	return c.signalRequest(ctx, workflowID, workflows.SignalCheckRefused, reason)
}

// signalRequest signals a request; one that has ended is not an error.
func (c Client) signalRequest(ctx context.Context, workflowID, name string, arg any) error {
	err := c.Temporal.SignalWorkflow(ctx, workflowID, "", name, arg)
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("signal request: %w", err)
	}
	return nil
}

// AppointmentsSeen tells a waiting request what one search of its patient's
// appointments shows: its own first, then the patient's others in the
// same specialty. A request that has ended is not an error.
func (c Client) AppointmentsSeen(ctx context.Context, workflowID string, seen []activities.AppointmentUpdate) error {
	return c.signalRequest(ctx, workflowID, workflows.SignalAppointmentsSeen, seen)
}

// StaffAction applies a staff action to a request and waits for its
// answer: what to tell the person, or why it was refused.
func (c Client) StaffAction(ctx context.Context, workflowID string, a workflows.StaffAction) (string, error) {
	for attempt := 0; ; attempt++ {
		msg, err := c.staffAction(ctx, workflowID, a)
		// A request continuing as new closes one run and opens the next: an
		// update caught between them goes to the new run.
		if err == nil || attempt == 4 || !c.continued(ctx, workflowID, err) {
			return msg, err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
}

type pressKey struct{}

// WithPress names the press a staff action comes from (its source, user,
// button and time), so that a press delivered twice is applied once:
// Slack delivers an envelope again when its acknowledgement was lost in
// a reconnect, and Temporal keeps one update per id.
func WithPress(ctx context.Context, press string) context.Context {
	return context.WithValue(ctx, pressKey{}, press)
}

// PressOf is the press id WithPress put in ctx, or empty.
func PressOf(ctx context.Context) string {
	press, _ := ctx.Value(pressKey{}).(string)
	return press
}

func (c Client) staffAction(ctx context.Context, workflowID string, a workflows.StaffAction) (string, error) {
	press := PressOf(ctx)
	handle, err := c.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		UpdateID:   press,
		WorkflowID: workflowID, UpdateName: workflows.UpdateStaffAction, Args: []interface{}{a},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return "", err
	}
	var msg string
	err = handle.Get(ctx, &msg)
	return msg, err
}

// continued says whether err came from a run that closed while the
// workflow goes on in a newer one.
func (c Client) continued(ctx context.Context, workflowID string, err error) bool {
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) && !strings.Contains(err.Error(), "workflow execution already completed") {
		return false
	}
	d, derr := c.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	return derr == nil && d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// StartTokenKeeper starts the TokenKeeper for a PKB client, or leaves the
// running one alone.
func (c Client) StartTokenKeeper(ctx context.Context, clientID string) error {
	_, err := c.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.TokenKeeperID(clientID), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.TokenKeeperWorkflow, workflows.KeeperInput{ClientID: clientID})
	if err != nil {
		return fmt.Errorf("start token keeper: %w", err)
	}
	return nil
}

// RefreshNow asks the TokenKeeper for an immediate refresh.
func (c Client) RefreshNow(ctx context.Context, clientID string) error {
	return c.Temporal.SignalWorkflow(ctx, workflows.TokenKeeperID(clientID), "", workflows.SignalRefreshNow, nil)
}

// GrantReceived tells the TokenKeeper a clinician granted access.
func (c Client) GrantReceived(ctx context.Context, clientID string) error {
	return c.Temporal.SignalWorkflow(ctx, workflows.TokenKeeperID(clientID), "", workflows.SignalGrantReceived, nil)
}

// KeeperState asks the TokenKeeper how the grant stands.
func (c Client) KeeperState(ctx context.Context, clientID string) (workflows.KeeperStatus, error) {
	var st workflows.KeeperStatus
	v, err := c.Temporal.QueryWorkflow(ctx, workflows.TokenKeeperID(clientID), "", workflows.QueryTokenKeeper)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// Refusal says, without internals, why a staff action did not apply, for
// the person who asked (in Slack or on the web).
func Refusal(err error) string {
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf) || strings.Contains(err.Error(), "workflow execution already completed"):
		return "This request is already closed."
	case errors.Is(err, context.DeadlineExceeded):
		return "Rebook did not answer in time; please try again."
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return "Not done: " + ae.Message()
	}
	return "Not done: Rebook could not apply the action; please try again."
}
