// Package card is a request's Slack card as a plain value: what the
// workflow knows of a request and what its message shows. The workflow
// builds it, activities post and redraw it, and package slackmsg lays it
// out; none of them spells a card state as a string.
package card

import "time"

// State is what the card says of the request.
type State string

// Card states.
const (
	Open      State = "open"
	Claimed   State = "claimed"
	Completed State = "completed"
	Closed    State = "closed" // closed by staff without action
	Ended     State = "ended"  // the appointment ended without the change asked for
)

// Actionable says whether the card still carries its buttons.
func (s State) Actionable() bool { return s == "" || s == Open || s == Claimed }

// Card is what a request's message shows.
type Card struct {
	Ref          string // opaque reference, e.g. RB-7KQ2-M9XD (internal/refs)
	WorkflowID   string // the buttons' value
	RequestType  string // cancel, change, or empty when unreadable
	Specialty    string
	Clinic       string
	Start        time.Time // zero when unknown
	ReceivedAt   time.Time
	DashboardURL string
	Triage       bool
	Reason       string   // why it is in triage
	Flags        []string // worth a look, e.g. NHS number not verified
	State        State
	ClaimedBy    string // Slack user id
	ClosedBy     string
	CloseNote    string
}

// Question asks a request's team whether a booking (Candidate, a PKB
// appointment id) is the request's rebooking: Yes or No.
type Question struct {
	WorkflowID string
	Candidate  string
}
