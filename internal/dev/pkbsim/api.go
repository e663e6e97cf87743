package pkbsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeFHIR(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var issueCodes = map[string]fhir.IssueType{
	"not-found": fhir.IssueTypeNotFound, "invalid": fhir.IssueTypeInvalid, "throttled": fhir.IssueTypeThrottled,
	"transient": fhir.IssueTypeTransient, "login": fhir.IssueTypeLogin, "not-supported": fhir.IssueTypeNotSupported,
	"forbidden": fhir.IssueTypeForbidden, "exception": fhir.IssueTypeException, "required": fhir.IssueTypeRequired,
}

func writeOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	writeFHIR(w, status, fhir.OperationOutcome{Issue: []fhir.OperationOutcomeIssue{{
		Severity: fhir.IssueSeverityError, Code: issueCodes[code], Diagnostics: &diagnostics,
	}}})
}

// messagesAfter serves GET /json/messages/after/{ms}: messages strictly
// after ms, oldest first, a page at a time; a page never ends inside a group
// of messages that share a timestamp.
func (s *Server) messagesAfter(w http.ResponseWriter, r *http.Request) {
	after, err := strconv.ParseInt(r.PathValue("ms"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "timestamp must be epoch milliseconds"})
		return
	}
	pendingOnly := false
	switch st := r.URL.Query().Get("status"); st {
	case "":
	case "pending":
		pendingOnly = true
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unknown status filter"})
		return
	}
	now := s.cfg.Now()
	s.mu.Lock()
	s.applyDuePAS(now)
	page := []pkb.Message{}
	for _, m := range s.data.Messages {
		if m.Timestamp <= after || (pendingOnly && !m.Pending) || (s.holdFrom > 0 && m.Timestamp >= s.holdFrom) {
			continue
		}
		if len(page) >= s.cfg.PageSize && m.Timestamp != page[len(page)-1].Timestamp {
			break
		}
		page = append(page, m.Message)
		if _, seen := s.delivered[m.ID]; !seen {
			s.delivered[m.ID] = now
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, page)
}

func ptr[T any](v T) *T { return &v }

const fhirInstant = "2006-01-02T15:04:05.000-07:00"

func (s *Server) fhirAppointment(a Appointment) fhir.Appointment {
	pname := ""
	if i, ok := s.byPatient[a.PatientID]; ok {
		p := s.data.Patients[i]
		pname = p.GivenName + " " + p.FamilyName
	}
	status := map[string]fhir.AppointmentStatus{
		"booked": fhir.AppointmentStatusBooked, "pending": fhir.AppointmentStatusPending,
		"cancelled": fhir.AppointmentStatusCancelled, "noshow": fhir.AppointmentStatusNoshow,
		"fulfilled": fhir.AppointmentStatusFulfilled, "entered-in-error": fhir.AppointmentStatusEnteredInError,
	}[a.Status]
	london := a.Start.Location()
	out := fhir.Appointment{
		Id:   ptr(a.ID),
		Meta: &fhir.Meta{LastUpdated: ptr(a.LastUpdated.UTC().Format(fhirInstant))},
		Identifier: []fhir.Identifier{{
			System: ptr("https://pas.simulated-trust.nhs.uk/Id/placer-appointment-id"), Value: ptr(a.PlacerID),
		}},
		Status: status,
		Specialty: []fhir.CodeableConcept{{Coding: []fhir.Coding{{
			System: ptr(pkb.SpecialtySystem), Code: ptr(a.SpecialtyCode), Display: ptr(a.Specialty),
		}}}},
		AppointmentType: &fhir.CodeableConcept{Coding: []fhir.Coding{{Display: ptr(a.Type)}}},
		Start:           ptr(a.Start.In(london).Format(fhirInstant)),
		End:             ptr(a.End.In(london).Format(fhirInstant)),
		Created:         ptr(a.Created.UTC().Format(fhirInstant)),
		Participant: []fhir.AppointmentParticipant{
			{Actor: &fhir.Reference{
				Reference:  ptr("Patient/" + a.PatientID),
				Type:       ptr("Patient"),
				Identifier: &fhir.Identifier{System: ptr(pkb.PublicIDSystem), Value: ptr(a.PatientID)},
				Display:    ptr(pname),
			}, Status: fhir.ParticipationStatusAccepted},
			{Actor: &fhir.Reference{Reference: ptr("Location/" + a.LocationID), Type: ptr("Location"), Display: ptr(a.Location)}, Status: fhir.ParticipationStatusAccepted},
			{Actor: &fhir.Reference{Reference: ptr("Practitioner/" + strings.ReplaceAll(strings.ToLower(a.Practitioner), " ", "-")), Type: ptr("Practitioner"), Display: ptr(a.Practitioner)}, Status: fhir.ParticipationStatusAccepted},
		},
	}
	if a.Comment != "" {
		out.Comment = ptr(a.Comment)
	}
	return out
}

func fhirPatient(p Patient) fhir.Patient {
	ids := []fhir.Identifier{{System: ptr(pkb.PublicIDSystem), Value: ptr(p.ID)}}
	if p.NHSNumber != "" {
		code, display := "02", "Number present but not traced"
		if p.NHSVerified {
			code, display = pkb.NHSVerifiedCode, "Number present and verified"
		}
		ids = append(ids, fhir.Identifier{
			System: ptr(pkb.NHSNumberSystem), Value: ptr(p.NHSNumber),
			Extension: []fhir.Extension{{
				Url: pkb.NHSVerificationExtension,
				ValueCodeableConcept: &fhir.CodeableConcept{Coding: []fhir.Coding{{
					System: ptr(pkb.NHSVerificationSystem), Code: ptr(code), Display: ptr(display),
				}}},
			}},
		})
	}
	return fhir.Patient{
		Id:         ptr(p.ID),
		Identifier: ids,
		Name:       []fhir.HumanName{{Family: ptr(p.FamilyName), Given: []string{p.GivenName}}},
		BirthDate:  ptr(p.BirthDate),
	}
}

// bound is one FHIR comparison on a date or instant parameter.
type bound struct {
	prefix string
	lo, hi time.Time // the parameter's value as the interval [lo, hi)
}

func (b bound) admits(t time.Time) bool {
	switch b.prefix {
	case "eq":
		return !t.Before(b.lo) && t.Before(b.hi)
	case "ne":
		return t.Before(b.lo) || !t.Before(b.hi)
	case "gt":
		return !t.Before(b.hi)
	case "ge":
		return !t.Before(b.lo)
	case "lt":
		return t.Before(b.lo)
	case "le":
		return t.Before(b.hi)
	}
	return false
}

// parseBound reads "ge2026-03-01" or "gt2026-03-01T09:00:00Z". A date
// without a time is a whole day in Europe/London.
func parseBound(v string, loc *time.Location) (bound, error) {
	b := bound{prefix: "eq"}
	if len(v) > 2 && strings.Contains("eq ne gt ge lt le", v[:2]) && (v[2] >= '0' && v[2] <= '9') {
		b.prefix, v = v[:2], v[2:]
	}
	if d, err := time.ParseInLocation("2006-01-02", v, loc); err == nil {
		b.lo, b.hi = d, d.AddDate(0, 0, 1)
		return b, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			b.lo, b.hi = t, t.Add(time.Millisecond)
			return b, nil
		}
	}
	return b, fmt.Errorf("not a FHIR date or dateTime")
}

func (s *Server) searchAppointments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	loc := subject.London()
	var dates, updated []bound
	for _, v := range q["date"] {
		b, err := parseBound(v, loc)
		if err != nil {
			writeOutcome(w, http.StatusBadRequest, "invalid", "date: "+err.Error())
			return
		}
		dates = append(dates, b)
	}
	for _, v := range q["_lastUpdated"] {
		b, err := parseBound(v, loc)
		if err != nil {
			writeOutcome(w, http.StatusBadRequest, "invalid", "_lastUpdated: "+err.Error())
			return
		}
		updated = append(updated, b)
	}
	var statuses []string
	for _, v := range q["status"] {
		statuses = append(statuses, strings.Split(v, ",")...)
	}
	patient, hasPatient := "", false
	if v := q.Get("actor:Patient.identifier"); v != "" {
		sys, val, ok := strings.Cut(v, "|")
		if !ok || (sys != pkb.PublicIDSystem && sys != pkb.NHSNumberSystem) || val == "" {
			writeOutcome(w, http.StatusBadRequest, "invalid", "actor:Patient.identifier must be "+pkb.PublicIDSystem+"|<public id> or "+pkb.NHSNumberSystem+"|<NHS number>")
			return
		}
		patient, hasPatient = val, true
		if sys == pkb.NHSNumberSystem {
			s.mu.Lock()
			patient = "" // no patient has that number: nothing matches
			for _, p := range s.data.Patients {
				if p.NHSNumber == val {
					patient = p.ID
				}
			}
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	orgWide, empty := s.cfg.OrgWideSearch, s.orgWideEmpty
	s.mu.Unlock()
	if !hasPatient && empty {
		// Not PKB's documented behaviour: a proxy or a server that ignores
		// the search and answers an empty page.
		writeJSON(w, http.StatusOK, map[string]any{"resourceType": "Bundle", "type": "searchset", "total": 0})
		return
	}
	if !hasPatient && !orgWide {
		// PKB documents the patient as required in every Appointment search.
		s.count(CounterOrgWideRefused)
		writeOutcome(w, http.StatusBadRequest, "required", "actor:Patient.identifier is required: name one patient")
		return
	}
	count, offset, err := paging(q)
	if err != nil {
		writeOutcome(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}

	s.mu.Lock()
	s.applyDuePAS(s.cfg.Now())
	var hits []Appointment
	for _, a := range s.data.Appointments {
		if hasPatient && a.PatientID != patient {
			continue
		}
		if len(statuses) > 0 && !slices.Contains(statuses, a.Status) {
			continue
		}
		if !all(dates, a.Start) || !all(updated, a.LastUpdated) {
			continue
		}
		hits = append(hits, a)
	}
	byUpdated := false
	switch q.Get("_sort") {
	case "", "date":
	case "_lastUpdated":
		byUpdated = true
	default:
		s.mu.Unlock()
		writeOutcome(w, http.StatusBadRequest, "not-supported", "_sort supports date and _lastUpdated")
		return
	}
	slices.SortStableFunc(hits, func(a, b Appointment) int {
		if byUpdated {
			if c := a.LastUpdated.Compare(b.LastUpdated); c != 0 {
				return c
			}
		} else if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var resources []any
	for i := offset; i < len(hits) && i < offset+count; i++ {
		resources = append(resources, s.fhirAppointment(hits[i]))
	}
	s.mu.Unlock()
	writeFHIR(w, http.StatusOK, searchBundle(r, "Appointment", resources, len(hits), offset, count))
}

func all(bs []bound, t time.Time) bool {
	for _, b := range bs {
		if !b.admits(t) {
			return false
		}
	}
	return true
}

func paging(q url.Values) (count, offset int, err error) {
	count = 50
	if v := q.Get("_count"); v != "" {
		if count, err = strconv.Atoi(v); err != nil || count < 1 {
			return 0, 0, fmt.Errorf("_count must be a positive whole number")
		}
		count = min(count, 200)
	}
	if v := q.Get("_offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("_offset must be a whole number")
		}
	}
	return count, offset, nil
}

func searchBundle(r *http.Request, resourceType string, resources []any, total, offset, count int) fhir.Bundle {
	base := "http://" + r.Host + "/fhir/" + resourceType
	self := r.URL.Query()
	b := fhir.Bundle{
		Id:    ptr(randomToken()[:16]),
		Type:  fhir.BundleTypeSearchset,
		Total: ptr(total),
		Link:  []fhir.BundleLink{{Relation: "self", Url: base + "?" + self.Encode()}},
	}
	if offset+count < total {
		next := r.URL.Query()
		next.Set("_offset", strconv.Itoa(offset+count))
		next.Set("_count", strconv.Itoa(count))
		b.Link = append(b.Link, fhir.BundleLink{Relation: "next", Url: base + "?" + next.Encode()})
	}
	for _, res := range resources {
		raw, _ := json.Marshal(res)
		var id struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(raw, &id)
		b.Entry = append(b.Entry, fhir.BundleEntry{
			FullUrl:  ptr(base + "/" + id.ID),
			Resource: raw,
			Search:   &fhir.BundleEntrySearch{Mode: ptr(fhir.SearchEntryModeMatch)},
		})
	}
	return b
}

func (s *Server) readAppointment(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.applyDuePAS(s.cfg.Now())
	i, ok := s.byAppt[r.PathValue("id")]
	var a fhir.Appointment
	if ok {
		a = s.fhirAppointment(s.data.Appointments[i])
	}
	s.mu.Unlock()
	if !ok {
		writeOutcome(w, http.StatusNotFound, "not-found", "no such Appointment")
		return
	}
	writeFHIR(w, http.StatusOK, a)
}

func (s *Server) searchPatients(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("identifier")
	sys, val, ok := strings.Cut(v, "|")
	if !ok || val == "" {
		writeOutcome(w, http.StatusBadRequest, "invalid", "identifier must be system|value")
		return
	}
	var resources []any
	s.mu.Lock()
	for _, p := range s.data.Patients {
		if (sys == pkb.PublicIDSystem && p.ID == val) || (sys == pkb.NHSNumberSystem && p.NHSNumber == val) {
			resources = append(resources, fhirPatient(p))
		}
	}
	s.mu.Unlock()
	writeFHIR(w, http.StatusOK, searchBundle(r, "Patient", resources, len(resources), 0, max(len(resources), 1)))
}

func (s *Server) readPatient(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i, ok := s.byPatient[r.PathValue("id")]
	var p fhir.Patient
	if ok {
		p = fhirPatient(s.data.Patients[i])
	}
	s.mu.Unlock()
	if !ok {
		writeOutcome(w, http.StatusNotFound, "not-found", "no such Patient")
		return
	}
	writeFHIR(w, http.StatusOK, p)
}
