// Package schedules creates or updates, idempotently, the Temporal
// Schedules that run PollMessages, WatchAppointments, ReconcileMessages
// and RedactClosedRequests.
package schedules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/workflows"
)

// Ensure makes both schedules exist with these intervals. Overlapping runs
// are skipped: a slow poll is never doubled.
func Ensure(ctx context.Context, c client.Client, pollEvery, watchEvery time.Duration) error {
	if err := ensure(ctx, c, workflows.PollScheduleID, workflows.PollMessagesWorkflow, pollEvery); err != nil {
		return err
	}
	if err := ensure(ctx, c, workflows.WatchScheduleID, workflows.WatchAppointmentsWorkflow, watchEvery); err != nil {
		return err
	}
	if err := ensure(ctx, c, workflows.ReconcileScheduleID, workflows.ReconcileMessagesWorkflow, ReconcileEvery); err != nil {
		return err
	}
	return ensure(ctx, c, workflows.RetentionScheduleID, workflows.RedactClosedRequestsWorkflow, RetentionEvery)
}

// RetentionEvery is the spacing of the daily retention run.
const RetentionEvery = 24 * time.Hour

// ReconcileEvery is the spacing of the daily reconciliation.
const ReconcileEvery = 24 * time.Hour

func ensure(ctx context.Context, c client.Client, id, wf string, every time.Duration) error {
	if every < time.Second {
		return fmt.Errorf("schedule %s: interval %s is under a second", id, every)
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{ID: id, Workflow: wf, TaskQueue: workflows.TaskQueue, WorkflowRunTimeout: 10 * time.Minute}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	err = c.ScheduleClient().GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec = &spec
			s.Action = action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap = enums.SCHEDULE_OVERLAP_POLICY_SKIP
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", id, err)
	}
	return nil
}
