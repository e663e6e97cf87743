package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
)

// One set of activity options per kind of call. PKB's own errors say when
// to stop (400/403/404) or wait (Retry-After, a lapsed grant); the rest
// retries with backoff.
var (
	pkbCall = workflow.ActivityOptions{
		StartToCloseTimeout: 45 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute},
	}
	slackCall = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
	}
	dbCall = workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	}
	// scheduledRun is for the work of a scheduled run: a few tries, then
	// the run fails and the next scheduled one starts afresh.
	scheduledRun = workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
	}
)

// pkbLocal is pkbCall for the reads that run as local activities: the
// same timeout and retries; a retry after a long backoff is a timer in
// the workflow.
var pkbLocal = workflow.LocalActivityOptions{StartToCloseTimeout: pkbCall.StartToCloseTimeout, RetryPolicy: pkbCall.RetryPolicy}

// pkbQuickLocal is for intake's local reads since intake-fallback: a few
// quick tries inside the workflow task, so a slow or refusing PKB never
// holds it for long; then the read runs as an ordinary activity, whose
// retries (Retry-After, the wait for a grant) are timers in Temporal.
var pkbQuickLocal = workflow.LocalActivityOptions{
	ScheduleToCloseTimeout: 5 * time.Second,
	StartToCloseTimeout:    5 * time.Second,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 2 * time.Second},
}

func withQuickLocalPKB(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, pkbQuickLocal)
}

func withLocalPKB(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, pkbLocal)
}

func withPKB(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, pkbCall)
}

// boundedSlack is for Slack calls while a request waits or closes (since
// wait-safely): about two minutes of tries, none for a channel Slack
// refuses; then the request goes on without the post.
var boundedSlack = workflow.ActivityOptions{
	StartToCloseTimeout: slackCall.StartToCloseTimeout,
	RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		MaximumAttempts: 6, NonRetryableErrorTypes: []string{activities.SlackUndeliverable}},
}

func withBoundedSlack(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, boundedSlack)
}

func withSlack(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, slackCall)
}
func withDB(ctx workflow.Context) workflow.Context { return workflow.WithActivityOptions(ctx, dbCall) }
