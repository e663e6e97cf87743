package workflows

import "go.temporal.io/sdk/workflow"

// Registry is what can take workflows: a worker, or a test environment.
type Registry interface {
	RegisterWorkflowWithOptions(w interface{}, options workflow.RegisterOptions)
}

// Register registers every workflow under its name.
func Register(r Registry) {
	r.RegisterWorkflowWithOptions(AppointmentRequest, workflow.RegisterOptions{Name: AppointmentRequestWorkflow})
	r.RegisterWorkflowWithOptions(PollMessages, workflow.RegisterOptions{Name: PollMessagesWorkflow})
	r.RegisterWorkflowWithOptions(WatchAppointments, workflow.RegisterOptions{Name: WatchAppointmentsWorkflow})
	r.RegisterWorkflowWithOptions(TokenKeeper, workflow.RegisterOptions{Name: TokenKeeperWorkflow})
}
