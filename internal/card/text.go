package card

import (
	"fmt"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/subject"
)

// Detail is how much of a request its card shows (REBOOK_SLACK_DETAIL),
// in Slack and Teams alike. No level shows a patient identifier or the
// patient's words: those are on the signed-in request page, where each
// view is audited.
type Detail string

const (
	// DetailAppointment shows the specialty, clinic and appointment time:
	// enough to find the booking in the PAS. The default.
	DetailAppointment Detail = "appointment"
	// DetailMinimal shows the reference, request type, age and status,
	// and no staff note: for a workspace shared beyond the teams, or for
	// specialties whose name alone says too much.
	DetailMinimal Detail = "minimal"
)

// ParseDetail reads a detail level; empty is the default.
func ParseDetail(v string) (Detail, error) {
	switch d := Detail(strings.ToLower(strings.TrimSpace(v))); d {
	case "":
		return DetailAppointment, nil
	case DetailAppointment, DetailMinimal:
		return d, nil
	}
	return "", fmt.Errorf("must be %s or %s", DetailAppointment, DetailMinimal)
}

// OrDash is v, or a dash when it is empty.
func OrDash(v string) string {
	if v == "" {
		return "—"
	}
	return v
}

// Age says how long ago from was, as a card shows it.
func Age(from, now time.Time) string {
	d := now.Sub(from)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

// Title is the card's heading: the kind of request, and triage.
func (c Card) Title() string {
	kind := "Appointment request"
	switch c.RequestType {
	case "cancel":
		kind = "Cancel request"
	case "change":
		kind = "Change request"
	}
	if c.Triage {
		kind = "Triage: " + strings.ToLower(kind[:1]) + kind[1:]
	}
	return kind
}

// When is the appointment's UK time, or a dash.
func (c Card) When() string {
	if c.Start.IsZero() {
		return "—"
	}
	return c.Start.In(subject.London()).Format("Mon 2 Jan 2006 15:04")
}

// Status says where the request stands, naming who claimed or closed it
// as Mention renders them.
func (c Card) Status() string {
	s := map[State]string{"": "Open", Open: "Open", Claimed: "Claimed by " + Mention(c.ClaimedBy),
		Completed: "Completed", Closed: "Closed by " + Mention(c.ClosedBy), Ended: "Ended without the change"}[c.State]
	if s == "" {
		s = string(c.State)
	}
	return s
}
