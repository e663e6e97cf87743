package activities

import (
	"time"

	"github.com/rebookhq/rebook/internal/card"
)

// MessageRef identifies a PKB message. PKB has no read-by-id, so the
// timestamp travels with the id.
type MessageRef struct {
	ID        string
	Timestamp int64
	// Facts are what the poll read of the message's subject on the page
	// it listed, so the request need not read the message again; nil from
	// a start that did not read it (an operator's restart, or a start
	// before facts were passed).
	Facts *MessageFacts `json:",omitempty"`
}

// MessageFacts is what fetch-message learns: the message's subject read,
// never its text.
type MessageFacts struct {
	PatientID  string
	ReceivedAt time.Time
	Readable   bool
	Reason     string // why the subject could not be read
	Type       string // cancel or change
	Start      time.Time
	Subject    string // the appointment's subject, as the patient's request names it
}

// MatchInput asks for the appointment a request names.
type MatchInput struct {
	PatientID string
	Start     time.Time
	Subject   string
	// ReceivedAt is when the patient sent the message: a booking PKB
	// shows created after it is not among the appointments the patient
	// already had (Match.Known), even when the PAS acted before Rebook
	// matched the request. Zero in requests started before it was sent.
	ReceivedAt time.Time
}

// Match is the appointment found, or why none was.
type Match struct {
	Found         bool
	AppointmentID string
	Status        string
	Specialty     string
	SpecialtyCode string
	Clinic        string
	Start         time.Time
	Reason        string
	// Known are the ids of the patient's appointments in the specialty at
	// match time: a booking not among them is new.
	Known []string
	// PlacerID is the trust's own id for the appointment (HL7 SCH-1), how
	// a copy of the PAS's update finds the request; PlacerSystem its
	// identifier system, where PKB gives one.
	PlacerID     string
	PlacerSystem string
	// UpdatedAt is PKB's lastUpdated of the appointment when matched: a
	// feed update older than it is stale.
	UpdatedAt time.Time
}

// NationalID says whether the patient's NHS number can be relied on. The
// number itself stays in PKB.
type NationalID struct {
	Status   string // valid, missing, invalid, no-patient
	Verified bool
	Reason   string
	// Digest is a keyed digest of a valid number (never the number):
	// what a feed update's NHS number must agree with.
	Digest string
}

// National ID statuses.
const (
	NHSValid     = "valid"
	NHSMissing   = "missing"
	NHSInvalid   = "invalid"
	NHSNoPatient = "no-patient"
)

// RouteInput is everything route-to-team needs.
type RouteInput struct {
	MessageID     string
	WorkflowID    string
	ReceivedAt    time.Time
	PatientID     string
	RequestType   string
	Specialty     string
	SpecialtyCode string
	Clinic        string
	AppointmentID string
	PlacerID      string
	PlacerSystem  string
	// AppointmentUpdatedAt is PKB's lastUpdated of the appointment when
	// matched; NHSDigest the patient's (NationalID.Digest).
	AppointmentUpdatedAt time.Time
	NHSDigest            string
	Start                time.Time
	Triage               bool
	Reason               string
	Flags                []string
	// Card is the card to post, as the workflow builds it; routing adds
	// the reference's link and any triage it decides.
	Card card.Card
}

// Route is where a request went.
type Route struct {
	Team      string
	Channel   string // name, as in the rules
	ChannelID string
	TS        string
	Ref       string
	SLAHours  int
	Triage    bool
	Reason    string
}

// AppointmentUpdate is what PKB shows of an appointment a request waits on:
// the appointment itself, or another of the same patient's in the same
// specialty, which the workflow judges as evidence (Evidence.IsNewBooking).
type AppointmentUpdate struct {
	AppointmentID string
	Status        string
	Start         time.Time
	// NewBooking is the activity's own verdict, which workflows recorded
	// before close-on-evidence relied on.
	NewBooking    bool
	SpecialtyCode string
	Created       time.Time // zero when PKB does not say
	// Updated is PKB's lastUpdated (zero when not given); Clinic the
	// appointment's location, for a question to staff.
	Updated time.Time
	Clinic  string
	// Competing, on the request's own appointment, counts the other
	// waiting requests of the same patient in the same specialty: a new
	// booking could be any of theirs.
	Competing int
	// Via is ViaFeed when the PAS feed sent the update (PASTime is then
	// the PAS's own time of it, which orders updates); empty when PKB
	// showed it.
	Via     string
	PASTime time.Time
}

// ViaFeed marks an update the PAS feed sent.
const ViaFeed = "feed"

// CheckInput asks PKB about a waiting request's appointment.
type CheckInput struct {
	AppointmentID string
	PatientID     string
	SpecialtyCode string
	RequestType   string
	ReceivedAt    time.Time
	// Known are the patient's appointments in the specialty when the
	// request was matched (Match.Known).
	Known []string
}

// StateInput records a transition.
type StateInput struct {
	MessageID  string
	WorkflowID string
	State      string
	Actor      string
	Action     string
	ClaimedBy  string
	ClosedBy   string
	CloseNote  string
	Closed     bool
	Detail     map[string]string
	// Seq numbers the workflow's writes: an older one never replaces a
	// newer, and a retried one is audited once.
	Seq int64
	// CheckSoon brings the request's next check forward: staff just acted.
	CheckSoon bool
	// TriageReason, when set, marks the request triaged with this reason
	// (all its reasons so far) in the read model.
	TriageReason string
}

// CardInput redraws a request's Slack message. The activity fills in the
// dashboard link, which the workflow does not know.
type CardInput struct {
	ChannelID string
	TS        string
	Card      card.Card
}

// NotifyInput posts a line of text to a channel (name or id), in a thread
// when ThreadTS is set.
type NotifyInput struct {
	Channel  string
	ThreadTS string
	Text     string
	// Key, when set, makes the notice once-only: a retry after a lost
	// response finds the earlier post instead of repeating it.
	Key string
	// ToAdmins sends a notice that names no channel to the admins'
	// channel instead of triage.
	ToAdmins bool
	// Question, when set, puts its Yes and No buttons under the text.
	Question *card.Question
}
