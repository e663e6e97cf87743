// Package feed takes copies of the trust's PAS appointment updates, as its
// integration engine sends them to PKB: HL7 v2 SIU over MLLP, or a FHIR R4
// Appointment posted over HTTPS. Each update is matched to the requests
// waiting on that appointment by the trust's appointment id and signalled
// to them at once, with no PKB call; the request judges it by the same
// evidence rules as PKB's answers. An update for no waiting request is
// counted and dropped.
package feed

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/nhsnumber"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
)

// Update is what the PAS says of one appointment.
type Update struct {
	PlacerID string
	Status   string // FHIR status: booked, cancelled, noshow, fulfilled, entered-in-error
	Start    time.Time
	// NHSNumber, when the update carries it, finds the appointment in PKB
	// when its placer id finds no request. Held in memory only.
	NHSNumber string
}

// Feed applies updates.
type Feed struct {
	Store    *store.Store
	Requests activities.Requests
	Log      *slog.Logger
	// PKB, when set, finds the appointment of an update its placer id
	// does not match: the patient's appointments (by NHS number) at the
	// update's time. Only for cancellations and non-attendance, whose time
	// is the appointment's own.
	PKB *pkb.Client

	matched, dropped atomic.Int64
}

// Counts are the updates applied to a waiting request, and those for none.
func (f *Feed) Counts() (matched, dropped int64) { return f.matched.Load(), f.dropped.Load() }

// Apply signals the update to every request waiting on its appointment.
// It returns how many; an error means it was not (all) delivered, and the
// sender should try again.
func (f *Feed) Apply(ctx context.Context, u Update) (int, error) {
	if u.PlacerID == "" {
		return 0, errors.New("feed: no appointment id")
	}
	waiting, err := f.Store.WaitingByPlacer(ctx, u.PlacerID)
	if err != nil {
		return 0, err
	}
	if len(waiting) == 0 {
		if waiting, err = f.byPatientAndTime(ctx, u); err != nil {
			return 0, err
		}
	}
	if len(waiting) == 0 {
		f.dropped.Add(1)
		return 0, nil
	}
	for _, w := range waiting {
		au := activities.AppointmentUpdate{AppointmentID: w.AppointmentID, Status: u.Status, Start: u.Start, SpecialtyCode: w.SpecialtyCode}
		if err := f.Requests.AppointmentChanged(ctx, w.WorkflowID, au); err != nil {
			return 0, err
		}
	}
	f.matched.Add(1)
	return len(waiting), nil
}

// byPatientAndTime finds the requests waiting on the patient's appointment
// at the update's time, asking PKB by NHS number: the fallback when the
// placer id matches none (a request matched before placer ids were kept,
// or a PAS whose ids PKB does not show).
func (f *Feed) byPatientAndTime(ctx context.Context, u Update) ([]store.Request, error) {
	if f.PKB == nil || u.NHSNumber == "" || u.Start.IsZero() || (u.Status != "cancelled" && u.Status != "noshow") {
		return nil, nil
	}
	nhs, err := nhsnumber.Normalize(u.NHSNumber)
	if err != nil {
		return nil, nil
	}
	day := u.Start.In(subject.London())
	from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, subject.London())
	page, err := f.PKB.SearchAppointments(ctx, pkb.AppointmentQuery{NHSNumber: nhs, From: from, Before: from.AddDate(0, 0, 1), Count: 100})
	if err != nil {
		return nil, err
	}
	var out []store.Request
	for _, ap := range page.Appointments {
		if ap.Id == nil || ap.Start == nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339, *ap.Start); err != nil || !t.Equal(u.Start) {
			continue
		}
		w, err := f.Store.WaitingByAppointment(ctx, *ap.Id)
		if err != nil {
			return nil, err
		}
		out = append(out, w...)
	}
	return out, nil
}

// FHIRPath is where the integration engine posts a FHIR Appointment.
const FHIRPath = "/feed/fhir/Appointment"

// maxBody is the largest Appointment the feed reads.
const maxBody = 1 << 20

// HTTP serves POST /feed/fhir/Appointment, authenticated by a bearer
// secret (REBOOK_FEED_TOKEN). A resource it cannot use gets 400 with a
// FHIR OperationOutcome saying why; a delivery failure 503, to be retried.
func (f *Feed) HTTP(token string) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			outcome(w, http.StatusUnauthorized, fhir.IssueTypeLogin, "a bearer token is required")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			outcome(w, http.StatusBadRequest, fhir.IssueTypeInvalid, "the body could not be read")
			return
		}
		if len(body) > maxBody {
			// Cut, it would read as broken JSON: say what is wrong.
			outcome(w, http.StatusRequestEntityTooLarge, fhir.IssueTypeTooLong, "the body is larger than 1 MiB; an Appointment is a few KiB")
			return
		}
		u, err := FromFHIR(body)
		if err != nil {
			outcome(w, http.StatusBadRequest, fhir.IssueTypeInvalid, err.Error())
			return
		}
		n, err := f.Apply(r.Context(), u)
		if err != nil {
			f.Log.Error("feed: could not deliver an update", "err", err)
			outcome(w, http.StatusServiceUnavailable, fhir.IssueTypeTransient, "not delivered; send it again")
			return
		}
		outcome(w, http.StatusOK, fhir.IssueTypeInformational, fmt.Sprintf("delivered to %d waiting request(s)", n))
	})
}

func outcome(w http.ResponseWriter, status int, code fhir.IssueType, diag string) {
	sev := fhir.IssueSeverityError
	if status == http.StatusOK {
		sev = fhir.IssueSeverityInformation
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(fhir.OperationOutcome{Issue: []fhir.OperationOutcomeIssue{{Severity: sev, Code: code, Diagnostics: &diag}}})
}

// FromFHIR reads a FHIR R4 Appointment.
func FromFHIR(body []byte) (Update, error) {
	var probe struct {
		ResourceType string `json:"resourceType"`
		Status       string `json:"status"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Update{}, errors.New("the body is not JSON")
	}
	if probe.ResourceType != "Appointment" {
		return Update{}, fmt.Errorf("resourceType %q is not Appointment", probe.ResourceType)
	}
	var a fhir.Appointment
	if err := json.Unmarshal(body, &a); err != nil {
		return Update{}, errors.New("the Appointment does not follow FHIR R4")
	}
	u := Update{PlacerID: activities.PlacerID(a.Identifier), Status: a.Status.Code()}
	for _, p := range a.Participant {
		if p.Actor != nil && p.Actor.Identifier != nil && p.Actor.Identifier.System != nil && *p.Actor.Identifier.System == pkb.NHSNumberSystem && p.Actor.Identifier.Value != nil {
			u.NHSNumber = *p.Actor.Identifier.Value
		}
	}
	if u.PlacerID == "" {
		return Update{}, errors.New("the Appointment carries no identifier (the trust's appointment id)")
	}
	if a.Start != nil {
		t, err := time.Parse(time.RFC3339, *a.Start)
		if err != nil {
			return Update{}, errors.New("start is not an instant")
		}
		u.Start = t
	}
	if strings.TrimSpace(probe.Status) == "" {
		return Update{}, errors.New("the Appointment has no status")
	}
	return u, nil
}
