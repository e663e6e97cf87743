package activities

import (
	"context"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/store"
)

// AppointmentsCursor is the stored cursor of the appointment watcher.
const AppointmentsCursor = "pkb-appointments-last-updated"

// AppointmentActivities ask PKB how waiting requests' appointments stand.
type AppointmentActivities struct {
	PKB      PKB
	Store    *store.Store
	Requests Requests
}

// CheckAppointment asks PKB, once, how a waiting request's appointment
// and the patient's other appointments in its specialty stand: the safety
// net under the watcher, and what a Done click runs. The matched
// appointment comes first; the workflow judges the rest as evidence. One
// search for the patient answers it; a read only when the search does not
// hold the appointment.
func (a *AppointmentActivities) CheckAppointment(ctx context.Context, in CheckInput) ([]AppointmentUpdate, error) {
	var found []fhir.Appointment
	if in.PatientID != "" {
		var err error
		if found, err = a.PKB.search(ctx, pkb.AppointmentQuery{PatientID: in.PatientID, Count: 100}); err != nil {
			return nil, a.PKB.err(ctx, err)
		}
	}
	ev := Evidence{AppointmentID: in.AppointmentID, SpecialtyCode: in.SpecialtyCode, ReceivedAt: in.ReceivedAt, Known: in.Known}
	var own *AppointmentUpdate
	var others []AppointmentUpdate
	for _, ap := range found {
		u := updateOf(ap)
		switch {
		case u.AppointmentID == in.AppointmentID:
			own = &u
		case u.SpecialtyCode == in.SpecialtyCode:
			u.NewBooking = in.RequestType == "change" && ev.IsNewBooking(u)
			others = append(others, u)
		}
	}
	if own == nil {
		ap, err := a.PKB.Client.Appointment(ctx, in.AppointmentID)
		if err != nil {
			return nil, a.PKB.err(ctx, err)
		}
		u := updateOf(ap)
		own = &u
	}
	return append([]AppointmentUpdate{*own}, others...), nil
}

// updateOf is what an update says of a FHIR appointment.
func updateOf(ap fhir.Appointment) AppointmentUpdate {
	d := describe(ap)
	u := AppointmentUpdate{AppointmentID: d.AppointmentID, Status: d.Status, Start: d.Start, SpecialtyCode: d.SpecialtyCode}
	if ap.Created != nil {
		if t, err := time.Parse(time.RFC3339, *ap.Created); err == nil {
			u.Created = t
		}
	}
	return u
}

// WatchAppointments finds appointments PKB shows changed since the last
// look and tells the requests waiting on them. One search serves every
// waiting request, so PKB's load does not grow with their number.
func (a *AppointmentActivities) WatchAppointments(ctx context.Context) (int, error) {
	open, err := a.Store.CountOpen(ctx)
	if err != nil || open == 0 {
		return 0, err
	}
	cursor, err := a.Store.Cursor(ctx, AppointmentsCursor)
	if err != nil {
		return 0, err
	}
	since := time.UnixMilli(cursor)
	if cursor == 0 {
		since = time.Now().Add(-24 * time.Hour)
	}
	// A millisecond of overlap: an update in the same millisecond as the
	// last one seen is not missed; signalling twice is harmless.
	changed, err := a.PKB.search(ctx, pkb.AppointmentQuery{UpdatedAfter: since.Add(-time.Millisecond), SortByLastUpdated: true, Count: 100})
	if err != nil {
		return 0, a.PKB.err(ctx, err)
	}
	latest, signalled := since, 0
	for _, ap := range changed {
		d := describe(ap)
		if ap.Meta != nil && ap.Meta.LastUpdated != nil {
			if t, err := time.Parse(time.RFC3339, *ap.Meta.LastUpdated); err == nil && t.After(latest) {
				latest = t
			}
		}
		patient := ""
		for _, p := range ap.Participant {
			if p.Actor != nil && p.Actor.Identifier != nil && p.Actor.Identifier.System != nil && *p.Actor.Identifier.System == pkb.PublicIDSystem && p.Actor.Identifier.Value != nil {
				patient = *p.Actor.Identifier.Value
			}
		}
		u := updateOf(ap)
		// Candidates only: each request judges the update against the
		// appointments it recorded when it was matched.
		bookedBy := u.Created
		if bookedBy.IsZero() {
			bookedBy = time.Now()
		}
		waiting, err := a.Store.WaitingFor(ctx, d.AppointmentID, patient, d.SpecialtyCode, bookedBy)
		if err != nil {
			return signalled, err
		}
		for _, w := range waiting {
			u := u
			if w.AppointmentID != d.AppointmentID {
				ev := Evidence{AppointmentID: w.AppointmentID, SpecialtyCode: w.SpecialtyCode, ReceivedAt: w.ReceivedAt}
				u.NewBooking = ev.IsNewBooking(u)
			}
			if err := a.Requests.AppointmentChanged(ctx, w.WorkflowID, u); err != nil {
				return signalled, err
			}
			signalled++
		}
	}
	// A PKB clock ahead of ours must not push the cursor past changes yet
	// to come.
	if now := time.Now(); latest.After(now) {
		latest = now
	}
	return signalled, a.Store.AdvanceCursor(ctx, AppointmentsCursor, latest.UnixMilli())
}
