// Package workflows holds Rebook's Temporal workflows: AppointmentRequest
// (one per patient request), PollMessages (on a Schedule: starts the
// requests) and WatchAppointments (on a Schedule: tells waiting requests
// their appointment changed). All I/O is in package activities.
package workflows

import (
	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/activities"
)

// Names fixed for the worker, the starter and operators.
const (
	TaskQueue                  = activities.TaskQueue
	AppointmentRequestWorkflow = activities.AppointmentRequestWorkflow
	PollMessagesWorkflow       = "PollMessages"
	WatchAppointmentsWorkflow  = "WatchAppointments"

	SignalAppointmentChanged = activities.SignalAppointmentChanged
	UpdateStaffAction        = "staff-action"
	QueryState               = "state"

	PollScheduleID  = "rebook-poll-messages"
	WatchScheduleID = "rebook-watch-appointments"
)

// Search attributes: ids and categories only.
var (
	RequestTypeKey  = temporal.NewSearchAttributeKeyKeyword("RequestType")
	SpecialtyKey    = temporal.NewSearchAttributeKeyKeyword("Specialty")
	TeamKey         = temporal.NewSearchAttributeKeyKeyword("Team")
	RequestStateKey = temporal.NewSearchAttributeKeyKeyword("RequestState")
)

// SearchAttributes maps each name to its type, for registering them.
var SearchAttributes = map[string]string{
	"RequestType": "Keyword", "Specialty": "Keyword", "Team": "Keyword", "RequestState": "Keyword",
}

// Request states, in the read model, the RequestState search attribute and
// the workflow's result.
const (
	StateReceived             = "received"
	StateRouted               = "routed"
	StateTriaged              = "triaged"
	StateClaimed              = "claimed"
	StateCompleted            = "completed"
	StateTriagedThenCompleted = "triaged-then-completed"
	StateClosedByStaff        = "closed by staff"
)

// AppointmentRequestID is the workflow id for a PKB message.
func AppointmentRequestID(messageID string) string { return activities.AppointmentRequestID(messageID) }

// Staff actions, from Slack's buttons.
const (
	ActionClaim      = "claim"
	ActionDone       = "done"
	ActionCantAction = "cant-action"
)

// StaffAction is a button press: what, and who (a Slack user id).
type StaffAction struct {
	Action string
	User   string
	Note   string
}

// Outcome is how a request ended.
type Outcome struct {
	State    string
	ClosedBy string
	Note     string
}
