package pkb

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// AppointmentQuery is an Appointment search. Empty fields are left out.
type AppointmentQuery struct {
	PatientID string    // the patient's PKB public id
	NHSNumber string    // or the patient's NHS number (PatientID wins)
	Statuses  []string  // e.g. "pending"
	From      time.Time // date=ge (a calendar day in Europe/London)
	Before    time.Time // date=lt
	// UpdatedAfter asks for appointments changed after this instant.
	UpdatedAfter time.Time
	// SortByLastUpdated orders results oldest change first (_sort), so
	// paging through changes that are still happening skips none: a change
	// made meanwhile lands at the end.
	SortByLastUpdated bool
	Count             int
}

// AppointmentPage is one page of a search; Next is empty on the last.
type AppointmentPage struct {
	Appointments []fhir.Appointment
	Total        int
	Next         string
}

const opAppointments = "GET /fhir/Appointment"

// SearchAppointments runs an Appointment search and returns its first page.
func (c *Client) SearchAppointments(ctx context.Context, q AppointmentQuery) (AppointmentPage, error) {
	v := url.Values{}
	switch {
	case q.PatientID != "":
		v.Set("actor:Patient.identifier", PublicIDSystem+"|"+q.PatientID)
	case q.NHSNumber != "":
		v.Set("actor:Patient.identifier", NHSNumberSystem+"|"+q.NHSNumber)
	}
	if len(q.Statuses) > 0 {
		v.Set("status", strings.Join(q.Statuses, ","))
	}
	if !q.From.IsZero() {
		v.Add("date", "ge"+q.From.Format("2006-01-02"))
	}
	if !q.Before.IsZero() {
		v.Add("date", "lt"+q.Before.Format("2006-01-02"))
	}
	if !q.UpdatedAfter.IsZero() {
		v.Set("_lastUpdated", "gt"+q.UpdatedAfter.UTC().Format(time.RFC3339Nano))
	}
	if q.SortByLastUpdated {
		v.Set("_sort", "_lastUpdated")
	}
	if q.Count > 0 {
		v.Set("_count", strconv.Itoa(q.Count))
	}
	return c.appointmentPage(ctx, c.fhirBase+"/Appointment?"+v.Encode())
}

// NextAppointments follows a page's next link. The link must lie under the
// FHIR base URL: the bearer token goes nowhere else.
func (c *Client) NextAppointments(ctx context.Context, next string) (AppointmentPage, error) {
	if !strings.HasPrefix(next, c.fhirBase+"/") {
		return AppointmentPage{}, &Error{Op: opAppointments, Kind: KindMalformed, Err: errors.New("next link is not under the FHIR base URL")}
	}
	return c.appointmentPage(ctx, next)
}

func (c *Client) appointmentPage(ctx context.Context, u string) (AppointmentPage, error) {
	var b fhir.Bundle
	if err := c.get(ctx, opAppointments, u, &b); err != nil {
		return AppointmentPage{}, err
	}
	page := AppointmentPage{}
	if b.Total != nil {
		page.Total = *b.Total
	}
	for _, l := range b.Link {
		if l.Relation == "next" {
			page.Next = l.Url
		}
	}
	for _, e := range b.Entry {
		var a fhir.Appointment
		if err := json.Unmarshal(e.Resource, &a); err != nil {
			return AppointmentPage{}, &Error{Op: opAppointments, Kind: KindMalformed, Err: errors.New("bundle entry is not an Appointment")}
		}
		page.Appointments = append(page.Appointments, a)
	}
	return page, nil
}

// Appointment reads one appointment by its FHIR id.
func (c *Client) Appointment(ctx context.Context, id string) (fhir.Appointment, error) {
	var a fhir.Appointment
	err := c.get(ctx, "GET /fhir/Appointment/{id}", c.fhirBase+"/Appointment/"+url.PathEscape(id), &a)
	return a, err
}

// PatientByPublicID finds the patient with a PKB public id; KindNotFound if
// there is none.
func (c *Client) PatientByPublicID(ctx context.Context, publicID string) (fhir.Patient, error) {
	const op = "GET /fhir/Patient"
	v := url.Values{"identifier": {PublicIDSystem + "|" + publicID}}
	var b fhir.Bundle
	if err := c.get(ctx, op, c.fhirBase+"/Patient?"+v.Encode(), &b); err != nil {
		return fhir.Patient{}, err
	}
	if len(b.Entry) == 0 {
		return fhir.Patient{}, &Error{Op: op, Kind: KindNotFound, Err: errors.New("no patient with that public id")}
	}
	if len(b.Entry) > 1 {
		return fhir.Patient{}, &Error{Op: op, Kind: KindMalformed, Err: errors.New("several patients share one public id")}
	}
	var p fhir.Patient
	if err := json.Unmarshal(b.Entry[0].Resource, &p); err != nil {
		return fhir.Patient{}, &Error{Op: op, Kind: KindMalformed, Err: errors.New("bundle entry is not a Patient")}
	}
	return p, nil
}

// NationalID is what a Patient says of its NHS number: Number as recorded
// (unvalidated; empty if none) and whether PKB marks it verified.
type NationalID struct {
	Number   string
	Verified bool
	// VerificationCode is UK Core's status code ("01" verified), if given.
	VerificationCode string
}

// NHSNumberOf reads the NHS number identifier from a Patient.
func NHSNumberOf(p fhir.Patient) NationalID {
	for _, id := range p.Identifier {
		if id.System == nil || *id.System != NHSNumberSystem || id.Value == nil {
			continue
		}
		n := NationalID{Number: *id.Value}
		for _, ext := range id.Extension {
			if ext.Url != NHSVerificationExtension || ext.ValueCodeableConcept == nil {
				continue
			}
			for _, c := range ext.ValueCodeableConcept.Coding {
				if c.Code != nil {
					n.VerificationCode = *c.Code
					n.Verified = *c.Code == NHSVerifiedCode
				}
			}
		}
		return n
	}
	return NationalID{}
}
