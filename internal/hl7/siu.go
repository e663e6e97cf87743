package hl7

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Schedule is what an SIU message says of one appointment.
type Schedule struct {
	Event    string // S12 new booking, S13 rescheduled, S14 modified, S15 cancelled, S26 did not attend
	PlacerID string // SCH-1: the trust's appointment id, as PKB's identifier carries it
	// PlacerNamespace is SCH-1's assigning authority as FHIR names an
	// identifier system: its universal id (a URI, or an OID as urn:oid:);
	// "" when not given.
	PlacerNamespace string
	FillerID        string // SCH-2
	Status          string // the FHIR status it means: booked, cancelled or noshow
	Start           time.Time
	// NHSNumber is the patient's, from PID-3 (identifier type NH or
	// assigning authority NHS); "" when absent. It is used to find the
	// appointment in PKB when SCH-1 finds no request, and kept nowhere.
	NHSNumber string
	// ControlID is MSH-10; At the PAS's time of the event: EVN-2 where
	// present, else MSH-7.
	ControlID string
	At        time.Time
}

// statusOf is the FHIR appointment status each SIU event means.
var statusOf = map[string]string{"S12": "booked", "S13": "booked", "S14": "booked", "S15": "cancelled", "S26": "noshow"}

// ReadSIU reads an SIU scheduling message. Anything else, or one without
// the trust's appointment id, is an error that says why.
func ReadSIU(m *Message, loc *time.Location) (Schedule, error) {
	typ, event := m.Field("MSH", 9, 1), m.Field("MSH", 9, 2)
	if typ != "SIU" {
		return Schedule{}, fmt.Errorf("message type %q is not SIU", typ)
	}
	status, ok := statusOf[event]
	if !ok {
		return Schedule{}, fmt.Errorf("SIU event %q is not one Rebook uses (S12, S13, S14, S15, S26)", event)
	}
	if !m.Has("SCH") {
		return Schedule{}, errors.New("no SCH segment")
	}
	s := Schedule{Event: event, Status: status, PlacerID: strings.TrimSpace(m.Field("SCH", 1, 1)), FillerID: strings.TrimSpace(m.Field("SCH", 2, 1))}
	if s.PlacerID == "" {
		return Schedule{}, errors.New("SCH-1 (the placer appointment id) is empty")
	}
	// Only a universal id compares with FHIR's identifier system; a
	// namespace id is a local code.
	switch universal, typ := strings.TrimSpace(m.Field("SCH", 1, 3)), strings.ToUpper(strings.TrimSpace(m.Field("SCH", 1, 4))); {
	case universal == "":
	case typ == "ISO":
		s.PlacerNamespace = "urn:oid:" + universal
	case typ == "URI" || strings.Contains(universal, ":"):
		s.PlacerNamespace = universal
	}
	s.ControlID = strings.TrimSpace(m.Field("MSH", 10, 1))
	for _, at := range []struct{ field, v string }{{"EVN-2", m.Field("EVN", 2, 1)}, {"MSH-7", m.Field("MSH", 7, 1)}} {
		if at.v == "" {
			continue
		}
		t, err := ParseTime(at.v, loc)
		if err != nil {
			return Schedule{}, fmt.Errorf("%s (the time of the event): %w", at.field, err)
		}
		s.At = t
		break
	}
	// The start: TQ1-7 in v2.5 and later, SCH-11.4 before it.
	start := m.Field("TQ1", 7, 1)
	if start == "" {
		start = m.Field("SCH", 11, 4)
	}
	if start != "" {
		t, err := ParseTime(start, loc)
		if err != nil {
			return Schedule{}, fmt.Errorf("the appointment's start: %w", err)
		}
		s.Start = t
	}
	for _, id := range m.Repeats("PID", 3) {
		get := func(i int) string {
			if i < len(id) {
				return strings.TrimSpace(id[i])
			}
			return ""
		}
		if get(0) != "" && (strings.EqualFold(get(4), "NH") || strings.EqualFold(get(3), "NHS")) {
			s.NHSNumber = get(0)
		}
	}
	if s.Start.IsZero() && (event == "S12" || event == "S13") {
		return Schedule{}, fmt.Errorf("SIU %s without the appointment's start (TQ1-7 or SCH-11.4)", event)
	}
	return s, nil
}
