// Package routing picks the team for a request from the routing rules, and
// reads and writes the rules' CSV form.
package routing

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/store"
)

// Header is the rules CSV's first line, exactly.
var Header = []string{"specialty", "clinic", "request_type", "team", "slack_channel", "sla_hours"}

// Match returns the most specific rule matching the request: an empty cell
// matches anything, and a specialty counts for more than a clinic, a clinic
// more than a request type. With no match it returns the catch-all rule
// (all match cells empty) if there is one; ok is false otherwise.
func Match(rules []store.Rule, specialty, clinic, requestType string) (store.Rule, bool) {
	best, bestScore := store.Rule{}, -1
	for _, r := range rules {
		score := 0
		switch {
		case r.Specialty == "":
		case strings.EqualFold(r.Specialty, specialty):
			score += 4
		default:
			continue
		}
		switch {
		case r.Clinic == "":
		case strings.EqualFold(r.Clinic, clinic):
			score += 2
		default:
			continue
		}
		switch {
		case r.RequestType == "":
		case strings.EqualFold(r.RequestType, requestType):
			score++
		default:
			continue
		}
		if score > bestScore {
			best, bestScore = r, score
		}
	}
	return best, bestScore >= 0
}

// ValidChannel reports whether s is a Slack channel name (without '#') or
// id, with or without "slack:", or a Teams channel as teams:<channel id>.
func ValidChannel(s string) bool { return notify.Valid(s) }

// ReadCSV reads and validates a whole rules file. It returns every problem
// found, each with its line number, so one import run shows them all.
func ReadCSV(r io.Reader) ([]store.Rule, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	records, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("rules: not valid CSV: %w", err)
	}
	if len(records) == 0 {
		return nil, errors.New("rules: the file is empty; it must start with the header " + strings.Join(Header, ","))
	}
	head := records[0]
	if len(head) > 0 {
		head[0] = strings.TrimPrefix(head[0], "\ufeff") // spreadsheets write a BOM
	}
	if strings.Join(head, ",") != strings.Join(Header, ",") {
		return nil, errors.New("rules: line 1: the header must be exactly " + strings.Join(Header, ","))
	}
	var problems []string
	var rules []store.Rule
	seen := map[string]int{}
	for i, rec := range records[1:] {
		line := i + 2
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != len(Header) {
			problems = append(problems, fmt.Sprintf("line %d: %d cells, want %d", line, len(rec), len(Header)))
			continue
		}
		for j := range rec {
			rec[j] = strings.TrimSpace(rec[j])
		}
		r := store.Rule{Specialty: rec[0], Clinic: rec[1], RequestType: strings.ToLower(rec[2]), Team: rec[3], SlackChannel: strings.TrimPrefix(rec[4], "#")}
		if r.RequestType != "" && r.RequestType != "cancel" && r.RequestType != "change" {
			problems = append(problems, fmt.Sprintf("line %d: request_type must be cancel, change or empty", line))
		}
		if r.Team == "" {
			problems = append(problems, fmt.Sprintf("line %d: team is empty", line))
		}
		if !ValidChannel(r.SlackChannel) {
			problems = append(problems, fmt.Sprintf("line %d: slack_channel %q is not a Slack channel name (lower case, digits, - and _) or id, nor teams:<channel id>", line, rec[4]))
		}
		sla, err := strconv.Atoi(rec[5])
		if err != nil || sla < 1 || sla > 24*365 {
			problems = append(problems, fmt.Sprintf("line %d: sla_hours must be a whole number of hours from 1 to 8760", line))
		}
		r.SLAHours = sla
		key := strings.ToLower(r.Specialty + "\x00" + r.Clinic + "\x00" + r.RequestType)
		if first, dup := seen[key]; dup {
			problems = append(problems, fmt.Sprintf("line %d: same specialty, clinic and request_type as line %d", line, first))
		}
		seen[key] = line
		rules = append(rules, r)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("rules: %d problem(s), nothing imported:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return rules, nil
}

// WriteCSV writes rules in the form ReadCSV reads.
func WriteCSV(w io.Writer, rules []store.Rule) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Header); err != nil {
		return err
	}
	for _, r := range rules {
		if err := cw.Write([]string{r.Specialty, r.Clinic, r.RequestType, r.Team, r.SlackChannel, strconv.Itoa(r.SLAHours)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// DemoCSV is the rule set `make dev` seeds: one team per specialty group,
// a faster team for cancellations in cardiology, and a catch-all.
const DemoCSV = `specialty,clinic,request_type,team,slack_channel,sla_hours
Cardiology,,,Cardiology bookings,rebook-cardiology,48
Cardiology,,cancel,Cardiology cancellations,rebook-cardiology-cancel,24
Dermatology,,,Dermatology bookings,rebook-dermatology,72
Ophthalmology,,,Eye clinic bookings,rebook-eyes,72
Trauma and Orthopaedics,,,Orthopaedics bookings,rebook-ortho,72
Respiratory Medicine,,,Medicine bookings,rebook-medicine,72
Gastroenterology,,,Medicine bookings,rebook-medicine,72
Neurology,,,Neurosciences bookings,rebook-neuro,72
Rheumatology,,,Medicine bookings,rebook-medicine,72
,Community Diagnostic Centre,,CDC bookings,rebook-cdc,96
,,,Central appointments,rebook-appointments,96
`
