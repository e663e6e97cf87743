package activities

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/rebookhq/rebook/internal/nhsnumber"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/subject"
)

// RequestActivities learn what a request is about: the message, its
// appointment and the patient's NHS number.
type RequestActivities struct {
	PKB PKB
	// Digest is the store's keyed digest of an NHS number
	// (store.PatientDigest); nil keeps none.
	Digest func(nhs string) string
}

// FetchMessage reads the message and its subject. The subject and text go
// no further.
func (a *RequestActivities) FetchMessage(ctx context.Context, ref MessageRef) (MessageFacts, error) {
	m, err := a.PKB.Client.Message(ctx, ref.ID, ref.Timestamp)
	if err != nil {
		return MessageFacts{}, a.PKB.err(ctx, err)
	}
	return readSubject(m), nil
}

func readSubject(m pkb.Message) MessageFacts {
	f := MessageFacts{PatientID: m.PatientID, ReceivedAt: time.UnixMilli(m.Timestamp).UTC()}
	req, err := subject.Parse(m.Subject)
	if err != nil {
		f.Reason = strings.TrimPrefix(err.Error(), "subject: ")
		return f
	}
	f.Readable, f.Type, f.Start, f.Subject = true, string(req.Type), req.Start, req.Subject
	return f
}

// MatchAppointment finds the one appointment whose UK date, time and
// subject agree with the request: among the patient's pending
// appointments first, then among all of theirs. One search of the
// patient's appointments answers it, and the same answer lists what the
// patient already has in the specialty.
func (a *RequestActivities) MatchAppointment(ctx context.Context, in MatchInput) (Match, error) {
	want := normalise(in.Subject)
	pick := func(appts []fhir.Appointment, pendingOnly bool) []fhir.Appointment {
		var hits []fhir.Appointment
		for _, ap := range appts {
			if pendingOnly && ap.Status.Code() != "pending" {
				continue
			}
			if startOf(ap).Equal(in.Start) && normalise(typeDisplay(ap)) == want {
				hits = append(hits, ap)
			}
		}
		return hits
	}
	all, err := a.PKB.search(ctx, pkb.AppointmentQuery{PatientID: in.PatientID, Count: 100})
	if err != nil {
		return Match{}, a.PKB.err(ctx, err)
	}
	hits := pick(all, true)
	if len(hits) == 0 {
		if hits = pick(all, false); len(hits) == 0 {
			return Match{Reason: "no appointment for this patient at that date, time and subject"}, nil
		}
	}
	if len(hits) > 1 {
		return Match{Reason: fmt.Sprintf("%d appointments match the date, time and subject", len(hits))}, nil
	}
	m := describe(hits[0])
	// What the patient already has in the specialty: a booking not among
	// these is new, whatever PKB says of its creation.
	// A booking made since the patient wrote is the PAS's answer, not one
	// the patient had: the PAS may act before Rebook matches (a worker
	// down for minutes, a fast booking office), and counting it as known
	// would keep a change request open for good.
	m.Known = []string{}
	for _, ap := range all {
		d := describe(ap)
		if d.SpecialtyCode != m.SpecialtyCode || d.AppointmentID == m.AppointmentID {
			continue
		}
		if u := updateOf(ap); !in.ReceivedAt.IsZero() && u.Created.After(in.ReceivedAt) {
			continue
		}
		m.Known = append(m.Known, d.AppointmentID)
	}
	return m, nil
}

// ResolveNationalID reads the patient's NHS number from PKB and checks it.
func (a *RequestActivities) ResolveNationalID(ctx context.Context, patientID string) (NationalID, error) {
	p, err := a.PKB.Client.PatientByPublicID(ctx, patientID)
	if pkb.IsKind(err, pkb.KindNotFound) {
		return NationalID{Status: NHSNoPatient, Reason: "PKB has no patient record for the sender"}, nil
	}
	if err != nil {
		return NationalID{}, a.PKB.err(ctx, err)
	}
	id := pkb.NHSNumberOf(p)
	if id.Number == "" {
		return NationalID{Status: NHSMissing, Reason: "the patient's record has no NHS number"}, nil
	}
	nhs, err := nhsnumber.Normalize(id.Number)
	if err != nil {
		return NationalID{Status: NHSInvalid, Reason: "the patient's NHS number fails the check (" + strings.TrimPrefix(err.Error(), "nhs number: ") + ")"}, nil
	}
	n := NationalID{Status: NHSValid, Verified: id.Verified}
	if a.Digest != nil {
		n.Digest = a.Digest(nhs)
	}
	return n, nil
}

// PlacerID is the trust's appointment id among an Appointment's
// identifiers: the one whose system names the placer, else the first.
func PlacerID(ids []fhir.Identifier) string {
	id, _ := PlacerIdentifier(ids)
	return id
}

// PlacerIdentifier is PlacerID with its system ("" when none is given).
func PlacerIdentifier(ids []fhir.Identifier) (value, system string) {
	found := false
	for _, id := range ids {
		if id.Value == nil || *id.Value == "" {
			continue
		}
		sys := ""
		if id.System != nil {
			sys = *id.System
		}
		if strings.Contains(strings.ToLower(sys), "placer") {
			return *id.Value, sys
		}
		if !found {
			value, system, found = *id.Value, sys, true
		}
	}
	return value, system
}

func normalise(s string) string {
	s = strings.ToLower(s)
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == ' ' {
			return r
		}
		return ' '
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func typeDisplay(a fhir.Appointment) string {
	if a.AppointmentType != nil {
		for _, c := range a.AppointmentType.Coding {
			if c.Display != nil && *c.Display != "" {
				return *c.Display
			}
		}
		if a.AppointmentType.Text != nil {
			return *a.AppointmentType.Text
		}
	}
	return "Appointment"
}

func startOf(a fhir.Appointment) time.Time {
	if a.Start == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *a.Start)
	if err != nil {
		return time.Time{}
	}
	return t
}

func describe(a fhir.Appointment) Match {
	m := Match{Found: true, Status: a.Status.Code(), Start: startOf(a)}
	if a.Id != nil {
		m.AppointmentID = *a.Id
	}
	if len(a.Specialty) > 0 && len(a.Specialty[0].Coding) > 0 {
		c := a.Specialty[0].Coding[0]
		if c.Display != nil {
			m.Specialty = *c.Display
		}
		if c.Code != nil {
			m.SpecialtyCode = *c.Code
		}
	}
	for _, p := range a.Participant {
		if p.Actor != nil && p.Actor.Reference != nil && strings.HasPrefix(*p.Actor.Reference, "Location/") && p.Actor.Display != nil {
			m.Clinic = *p.Actor.Display
		}
	}
	m.PlacerID, m.PlacerSystem = PlacerIdentifier(a.Identifier)
	if a.Meta != nil && a.Meta.LastUpdated != nil {
		if t, err := time.Parse(time.RFC3339, *a.Meta.LastUpdated); err == nil {
			m.UpdatedAt = t
		}
	}
	return m
}
