package activities

import "time"

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
