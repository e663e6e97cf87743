package activities

import (
	"slices"
	"time"
)

// Progress is what a waiting request has seen of its appointment.
type Progress struct {
	Cancelled  bool
	Moved      bool
	NewBooking bool
}

// Apply folds an update into p. original is the appointment's start when
// the request was matched. It is a pure function: the workflow calls it.
func (p Progress) Apply(u AppointmentUpdate, appointmentID string, original time.Time) Progress {
	if u.NewBooking {
		if u.Status == "booked" || u.Status == "pending" {
			p.NewBooking = true
		}
		return p
	}
	if u.AppointmentID != appointmentID {
		return p
	}
	switch u.Status {
	case "cancelled":
		p.Cancelled = true
	case "booked", "pending", "arrived", "fulfilled", "checked-in":
		if !u.Start.IsZero() && !u.Start.Equal(original) {
			p.Moved = true
		}
	}
	return p
}

// Actioned reports whether PKB shows the request done: a cancel request's
// appointment cancelled; a change request's appointment moved, or
// cancelled with a new booking for the same patient and specialty.
func (p Progress) Actioned(requestType string) (bool, string) {
	switch {
	case requestType == "cancel" && p.Cancelled:
		return true, "cancelled"
	case requestType == "change" && p.Moved:
		return true, "moved"
	case requestType == "change" && p.Cancelled && p.NewBooking:
		return true, "cancelled and rebooked"
	}
	return false, ""
}

// Evidence is what PKB must show before a request is closed. The workflow
// re-derives its verdict from the latest of each appointment at every
// check; nothing seen once is kept as proof.
type Evidence struct {
	RequestType   string
	AppointmentID string
	Start         time.Time // the appointment's start when matched
	SpecialtyCode string
	ReceivedAt    time.Time
	// Known are the ids of the patient's appointments in the specialty
	// when the request was matched; nil when they were not recorded.
	Known []string
	// ChangeOutlivesAppointment: a change request whose appointment
	// passes, is attended or is missed stays open (StillNeeded), for the
	// patient still needs a new one. Requests before wait-safely ended.
	ChangeOutlivesAppointment bool
	// OneBookingOneRequest (since wait-safely): a new booking closes a
	// request by itself only when it can be no other's rebooking; else
	// Verdict.Ask names it for staff to confirm. Confirmed is the booking
	// staff said is the rebooking; Rejected those they said are not.
	OneBookingOneRequest bool
	Confirmed            string
	Rejected             []string
}

// Verdict kinds.
const (
	VerdictOpen     = ""
	VerdictActioned = "actioned" // what the patient asked for happened
	VerdictEnded    = "ended"    // the appointment ended otherwise
)

// PassedGrace is how long after its start an appointment PKB still shows
// unchanged counts as passed without action.
const PassedGrace = 24 * time.Hour

// FHIR appointment statuses the evidence reads.
const (
	statusBooked    = "booked"
	statusCancelled = "cancelled"
	statusNoShow    = "noshow"
	statusFulfilled = "fulfilled"
	statusInError   = "entered-in-error"
	statusArrived   = "arrived"
	statusCheckedIn = "checked-in"
)

// Verdict is what the evidence says of a request now.
type Verdict struct {
	Kind string
	How  string // e.g. "cancelled and rebooked", "was marked did not attend"
	// CancelledNotRebooked: a change request's appointment is cancelled
	// and no new booking has appeared yet.
	CancelledNotRebooked bool
	// StillNeeded: a change request's appointment passed, was attended or
	// was missed, and the patient still needs a new one.
	StillNeeded bool
	Progress    Progress
	// Ask is a new booking that could be this request's rebooking but
	// could as well be another's: staff are asked; AskWhy says why Rebook
	// cannot tell.
	Ask    *AppointmentUpdate
	AskWhy string
}

// held: the appointment is booked, or took place, at the time it shows.
func held(status string) bool {
	switch status {
	case statusBooked, statusArrived, statusCheckedIn, statusFulfilled, statusNoShow:
		return true
	}
	return false
}

// IsNewBooking says whether u is a replacement booking: booked (not
// pending or proposed), the same specialty, and new since the request:
// not among the patient's appointments when it was matched, or, where PKB
// gives a creation time, created after the request arrived. An update to
// an appointment that existed before is not evidence.
func (e Evidence) IsNewBooking(u AppointmentUpdate) bool {
	if u.AppointmentID == "" || u.AppointmentID == e.AppointmentID || u.SpecialtyCode != e.SpecialtyCode {
		return false
	}
	if u.Status != statusBooked && u.Status != statusArrived && u.Status != statusCheckedIn && u.Status != statusFulfilled {
		return false
	}
	if e.Known != nil {
		for _, id := range e.Known {
			if id == u.AppointmentID {
				return false
			}
		}
		return true
	}
	return !u.Created.IsZero() && u.Created.After(e.ReceivedAt)
}

// ambiguity says why a new booking for the patient could be another
// request's rebooking as well as this one's, or "" when it cannot: the
// specialty is not coded, another request of the patient in the
// specialty is waiting, or another of the patient's appointments in the
// specialty was cancelled since the request.
func (e Evidence) ambiguity(orig AppointmentUpdate, seen []AppointmentUpdate) string {
	if e.SpecialtyCode == "" {
		return "the appointment has no specialty code"
	}
	if orig.Competing > 0 {
		return "another request of this patient in this specialty is waiting"
	}
	for _, u := range seen {
		if u.AppointmentID != e.AppointmentID && u.SpecialtyCode == e.SpecialtyCode && u.Status == statusCancelled &&
			!u.Updated.IsZero() && u.Updated.After(e.ReceivedAt) {
			return "another of the patient's appointments in this specialty was cancelled since the request"
		}
	}
	return ""
}

// Judge says whether the latest of each appointment (seen) shows the
// request done, ended another way, or still open, at now.
func (e Evidence) Judge(seen []AppointmentUpdate, now time.Time) Verdict {
	orig := AppointmentUpdate{AppointmentID: e.AppointmentID, Start: e.Start}
	rebooked := false
	var candidates []AppointmentUpdate
	confirmed := false
	for _, u := range seen {
		switch {
		case u.AppointmentID == e.AppointmentID:
			orig = u
		case e.OneBookingOneRequest && u.AppointmentID == e.Confirmed && u.AppointmentID != "" && held(u.Status):
			confirmed = true
		case e.IsNewBooking(u):
			if !e.OneBookingOneRequest {
				rebooked = true
			} else if !slices.Contains(e.Rejected, u.AppointmentID) {
				candidates = append(candidates, u)
			}
		}
	}
	var ask *AppointmentUpdate
	askWhy := ""
	if e.OneBookingOneRequest {
		askWhy = e.ambiguity(orig, seen)
		switch {
		case confirmed:
			rebooked = true
		case len(candidates) > 0 && askWhy == "":
			rebooked = true
		case len(candidates) > 0:
			ask = &candidates[0]
		}
	}
	moved := held(orig.Status) && !orig.Start.IsZero() && !orig.Start.Equal(e.Start)
	v := Verdict{Progress: Progress{Cancelled: orig.Status == statusCancelled, Moved: moved, NewBooking: rebooked}}
	switch {
	case orig.Status == statusInError:
		v.Kind, v.How = VerdictEnded, "was entered in error"
	case e.RequestType == "cancel" && orig.Status == statusCancelled:
		v.Kind, v.How = VerdictActioned, "cancelled"
	case e.RequestType == "change" && moved:
		v.Kind, v.How = VerdictActioned, "moved"
	case e.RequestType == "change" && orig.Status == statusCancelled && rebooked:
		v.Kind, v.How = VerdictActioned, "cancelled and rebooked"
	case e.RequestType == "change" && orig.Status == statusCancelled:
		// The team still owes the patient a new appointment.
		v.CancelledNotRebooked = true
		v.Ask, v.AskWhy = ask, askWhy
	case orig.Status == statusCancelled:
	case e.RequestType == "change" && e.ChangeOutlivesAppointment && (orig.Status == statusNoShow || orig.Status == statusFulfilled ||
		!e.Start.IsZero() && now.After(e.Start.Add(PassedGrace))):
		// The patient still needs the new appointment they asked for: a
		// new booking is it.
		if rebooked {
			v.Kind, v.How = VerdictActioned, "rebooked after the original appointment passed"
		} else {
			v.StillNeeded = true
			v.Ask, v.AskWhy = ask, askWhy
		}
	case orig.Status == statusNoShow:
		v.Kind, v.How = VerdictEnded, "was marked did not attend"
	case orig.Status == statusFulfilled:
		v.Kind, v.How = VerdictEnded, "was attended"
	case !e.Start.IsZero() && now.After(e.Start.Add(PassedGrace)):
		v.Kind, v.How = VerdictEnded, "passed with no change in PKB"
	}
	return v
}
