// Package workflows holds Rebook's Temporal workflows: AppointmentRequest
// (one per patient request), PollMessages (on a Schedule: starts the
// requests), WatchAppointments (on a Schedule: tells waiting requests
// their appointment changed) and TokenKeeper (keeps the PKB grant alive
// and asks for a new one when it lapses). Each workflow owns its names (id,
// signals, updates, queries, states) in its own file; all I/O is in
// package activities, called through typed references.
package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
)

// TaskQueue is the one task queue every workflow and activity runs on.
const TaskQueue = "rebook"

// DeploymentName is the Worker Deployment a versioned worker belongs to
// (REBOOK_BUILD_ID names its build).
const DeploymentName = "rebook"

// Search attributes: ids and categories only.
var (
	RequestTypeKey  = temporal.NewSearchAttributeKeyKeyword("RequestType")
	SpecialtyKey    = temporal.NewSearchAttributeKeyKeyword("Specialty")
	TeamKey         = temporal.NewSearchAttributeKeyKeyword("Team")
	RequestStateKey = temporal.NewSearchAttributeKeyKeyword("RequestState")
)

// SearchAttributes maps each name to its type, for registering them.
var SearchAttributes = map[string]string{
	RequestTypeKey.GetName(): "Keyword", SpecialtyKey.GetName(): "Keyword", TeamKey.GetName(): "Keyword", RequestStateKey.GetName(): "Keyword",
}

// Typed activity references: workflows call activities through these nil
// pointers' methods, so a name cannot drift from its method.
var (
	pollActs    *activities.PollActivities
	requestActs *activities.RequestActivities
	routeActs   *activities.RouteActivities
	apptActs    *activities.AppointmentActivities
	noticeActs  *activities.NoticeActivities
	grantActs   *activities.GrantActivities
	retainActs  *activities.RetentionActivities
)

// Registry is what can take workflows: a worker, or a test environment.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}

// Register registers every workflow under its name.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(AppointmentRequest, workflow.RegisterOptions{Name: AppointmentRequestWorkflow})
	r.RegisterWorkflowWithOptions(PollMessages, workflow.RegisterOptions{Name: PollMessagesWorkflow})
	r.RegisterWorkflowWithOptions(WatchAppointments, workflow.RegisterOptions{Name: WatchAppointmentsWorkflow})
	r.RegisterWorkflowWithOptions(ReconcileMessages, workflow.RegisterOptions{Name: ReconcileMessagesWorkflow})
	r.RegisterWorkflowWithOptions(RedactClosedRequests, workflow.RegisterOptions{Name: RedactClosedRequestsWorkflow})
	r.RegisterWorkflowWithOptions(TokenKeeper, workflow.RegisterOptions{Name: TokenKeeperWorkflow})
}
