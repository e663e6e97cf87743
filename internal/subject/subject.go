// Package subject reads the subject line that PKB puts on a patient's
// "cancel / change my appointment" message: the request type, the
// appointment's UK wall-clock date and time, and the appointment's subject
// as the hospital's HL7 feed named it.
//
// PKB does not publish the wording, so the parser accepts the variants seen
// in the wild and tolerates case, spacing and punctuation. Anything it cannot
// read yields an error whose text names the fault and never echoes the
// subject, so it can go to triage and to logs as it is.
package subject

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London must resolve on hosts without zoneinfo
)

// RequestType is what the patient asked for.
type RequestType string

const (
	Cancel RequestType = "cancel"
	Change RequestType = "change"
)

// Valid reports whether t is one of the known request types.
func (t RequestType) Valid() bool { return t == Cancel || t == Change }

// Request is what a subject line says.
type Request struct {
	Type RequestType
	// Start is the appointment's start as an instant in Europe/London.
	Start time.Time
	// Subject is the appointment's subject (HL7 SCH-7.2), trimmed.
	Subject string
}

// Reasons a subject cannot be read.
var (
	ErrEmpty             = errors.New("subject: empty")
	ErrNoRequestType     = errors.New("subject: does not say cancel or change")
	ErrBothRequestTypes  = errors.New("subject: says both cancel and change")
	ErrNoDate            = errors.New("subject: no appointment date found")
	ErrBadDate           = errors.New("subject: appointment date does not exist")
	ErrNoTime            = errors.New("subject: no appointment time after the date")
	ErrBadTime           = errors.New("subject: appointment time is out of range")
	ErrNonexistentLocal  = errors.New("subject: time falls in the clock-change gap in UK time")
	ErrAmbiguousLocal    = errors.New("subject: time occurs twice on the clock-change day in UK time")
	ErrNoSubject         = errors.New("subject: no appointment subject after the time")
	ErrTooLong           = errors.New("subject: longer than any PKB subject line")
	london, errLoadZone  = time.LoadLocation("Europe/London")
	monthNames           = []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}
	weekdayNames         = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	maxSubjectBytes      = 1000
	spaceRun             = regexp.MustCompile(`\s+`)
	numericDate          = regexp.MustCompile(`\b(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})\b`)
	isoDate              = regexp.MustCompile(`\b(\d{4})-(\d{2})-(\d{2})\b`)
	textDate             = regexp.MustCompile(`(?i)\b(?:([a-z]{3,9})\.?,?\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]{3,9})\.?,?\s+(\d{4})\b`)
	timeAfterDate        = regexp.MustCompile(`(?i)^\s*(?:[,\-@]\s*)?(?:at\s+)?(\d{1,2})(?:[:.](\d{2}))?(?:\s*(am\b|pm\b|a\.m\.|p\.m\.))?(?:\s*hrs\b)?`)
	cancelWords          = regexp.MustCompile(`(?i)\bcancel`)
	changeWords          = regexp.MustCompile(`(?i)\b(?:change|reschedul|rebook|re-book|rearrang|move)`)
	leadingPunct         = regexp.MustCompile(`^[\s\-:,;(\[]+`)
	trailingPunct        = regexp.MustCompile(`[\s)\].,;:\-]+$`)
	leadingSubjectFiller = regexp.MustCompile(`(?i)^(?:for|with|in)\s+`)
)

func init() {
	if errLoadZone != nil {
		panic("subject: Europe/London time zone unavailable: " + errLoadZone.Error())
	}
}

// London is the time zone every subject's date and time are read in.
func London() *time.Location { return london }

// Parse reads a PKB message subject.
func Parse(s string) (Request, error) {
	if len(s) > maxSubjectBytes {
		return Request{}, ErrTooLong
	}
	s = strings.NewReplacer("\u2013", "-", "\u2014", "-", "\u2012", "-", "\u00a0", " ").Replace(s)
	s = strings.TrimSpace(spaceRun.ReplaceAllString(s, " "))
	if s == "" {
		return Request{}, ErrEmpty
	}

	d, err := findDate(s)
	if err != nil {
		return Request{}, err
	}

	typ, err := requestType(s[:d.start])
	if err != nil {
		return Request{}, err
	}

	rest := s[d.end:]
	m := timeAfterDate.FindStringSubmatchIndex(rest)
	if m == nil || (m[4] < 0 && m[6] < 0) {
		// A bare number is not a time: it must have minutes or am/pm.
		return Request{}, ErrNoTime
	}
	hour, minute, end, err := readTime(rest, m, true)
	subj := ""
	if err == nil {
		subj = subjectAfter(rest[end:])
	}
	if (err != nil || subj == "") && m[6] >= 0 && m[4] >= 0 && m[6] > m[5] {
		// "01:00 Am" or "13:00 Am": a 24-hour time followed by a subject
		// that happens to read as am or pm. Take the reading that leaves a
		// valid time and a subject.
		if h, mi, e, err2 := readTime(rest, m, false); err2 == nil && subjectAfter(rest[e:]) != "" {
			hour, minute, subj, err = h, mi, subjectAfter(rest[e:]), nil
		}
	}
	if err != nil {
		return Request{}, err
	}
	start, err := localInstant(d.year, d.month, d.day, hour, minute)
	if err != nil {
		return Request{}, err
	}
	if subj == "" {
		return Request{}, ErrNoSubject
	}
	return Request{Type: typ, Start: start, Subject: subj}, nil
}

// readTime reads the hour and minute timeAfterDate matched, with its am or
// pm when meridiem is true, and returns where the time ends in rest.
func readTime(rest string, m []int, meridiem bool) (hour, minute, end int, err error) {
	hour, _ = strconv.Atoi(rest[m[2]:m[3]])
	end = m[3]
	if m[4] >= 0 {
		minute, _ = strconv.Atoi(rest[m[4]:m[5]])
		end = m[5]
	}
	if meridiem && m[6] >= 0 {
		if hour < 1 || hour > 12 {
			return 0, 0, 0, ErrBadTime
		}
		pm := strings.HasPrefix(strings.ToLower(rest[m[6]:m[7]]), "p")
		hour %= 12
		if pm {
			hour += 12
		}
		end = m[1]
	} else if m[6] < 0 {
		end = m[1]
	}
	if hour > 23 || minute > 59 {
		return 0, 0, 0, ErrBadTime
	}
	return hour, minute, end, nil
}

func subjectAfter(s string) string {
	s = leadingPunct.ReplaceAllString(s, "")
	s = leadingSubjectFiller.ReplaceAllString(s, "")
	s = trailingPunct.ReplaceAllString(s, "")
	return strings.TrimSpace(s)
}

type dateMatch struct {
	start, end       int
	year, month, day int
}

// findDate takes the earliest date in s of any accepted layout.
func findDate(s string) (dateMatch, error) {
	var best *dateMatch
	consider := func(d dateMatch) {
		if best == nil || d.start < best.start {
			dd := d
			best = &dd
		}
	}
	if m := numericDate.FindStringSubmatchIndex(s); m != nil {
		day, _ := strconv.Atoi(s[m[2]:m[3]])
		mon, _ := strconv.Atoi(s[m[4]:m[5]])
		year, _ := strconv.Atoi(s[m[6]:m[7]])
		consider(dateMatch{m[0], m[1], year, mon, day})
	}
	if m := isoDate.FindStringSubmatchIndex(s); m != nil {
		year, _ := strconv.Atoi(s[m[2]:m[3]])
		mon, _ := strconv.Atoi(s[m[4]:m[5]])
		day, _ := strconv.Atoi(s[m[6]:m[7]])
		consider(dateMatch{m[0], m[1], year, mon, day})
	}
	for _, m := range textDate.FindAllStringSubmatchIndex(s, -1) {
		mon := lookup(monthNames, s[m[6]:m[7]])
		if mon < 0 {
			continue
		}
		day, _ := strconv.Atoi(s[m[4]:m[5]])
		year, _ := strconv.Atoi(s[m[8]:m[9]])
		d := dateMatch{m[0], m[1], year, mon + 1, day}
		// A weekday before the date is decoration and is not checked against
		// it: PKB's own example pairs "Friday" with a Saturday, and the date
		// is what the HL7 feed carries. A word that is not a weekday belongs
		// to the text before the date.
		if m[2] >= 0 && lookup(weekdayNames, s[m[2]:m[3]]) < 0 {
			d.start = m[4]
		}
		consider(d)
		break
	}
	if best == nil {
		return dateMatch{}, ErrNoDate
	}
	if !validDate(best.year, best.month, best.day) {
		return dateMatch{}, ErrBadDate
	}
	return *best, nil
}

// lookup finds word as a name or an abbreviation of at least three letters
// ("Mar", "Sept", "Weds", "Thurs") and returns its index, or -1.
func lookup(names []string, word string) int {
	w := strings.ToLower(word)
	for i, n := range names {
		if strings.HasPrefix(n, w) {
			return i
		}
	}
	switch w {
	case "sept":
		return 8
	case "weds":
		return 3
	case "thur", "thurs", "tues":
		if w == "tues" {
			return 2
		}
		return 4
	}
	return -1
}

func validDate(year, month, day int) bool {
	if year < 1900 || year > 2200 || month < 1 || month > 12 || day < 1 {
		return false
	}
	t := time.Date(year, time.Month(month), day, 12, 0, 0, 0, time.UTC)
	return t.Day() == day && int(t.Month()) == month
}

func requestType(prefix string) (RequestType, error) {
	c, ch := cancelWords.MatchString(prefix), changeWords.MatchString(prefix)
	switch {
	case c && ch:
		return "", ErrBothRequestTypes
	case c:
		return Cancel, nil
	case ch:
		return Change, nil
	default:
		return "", ErrNoRequestType
	}
}

func localInstant(year, month, day, hour, minute int) (time.Time, error) {
	t := time.Date(year, time.Month(month), day, hour, minute, 0, 0, london)
	if t.Hour() != hour || t.Minute() != minute {
		return time.Time{}, ErrNonexistentLocal
	}
	// Go picks the first of two readings of a repeated wall-clock time; an
	// hour later reading the same wall clock means the patient's time is
	// ambiguous, and guessing could match the wrong appointment.
	for _, other := range []time.Time{t.Add(time.Hour), t.Add(-time.Hour)} {
		if other.Hour() == hour && other.Minute() == minute && other.Day() == day {
			return time.Time{}, ErrAmbiguousLocal
		}
	}
	return t, nil
}

// Format writes a request back in the second variant PKB uses
// ("Change appointment: 14/03/2026 09:30 - Cardiology Outpatient Clinic"):
// the dash keeps a subject that starts with "am" or "pm" from reading as
// part of the time.
func Format(r Request) string {
	verb := "Cancel"
	if r.Type == Change {
		verb = "Change"
	}
	return verb + " appointment: " + r.Start.In(london).Format("02/01/2006 15:04") + " - " + r.Subject
}
