package pkbsim

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/nhsnumber"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/subject"
)

// Patient is a simulated PKB patient. NHSNumber is empty when the record has
// none; it may also be deliberately invalid.
type Patient struct {
	ID          string `json:"id"`
	GivenName   string `json:"givenName"`
	FamilyName  string `json:"familyName"`
	BirthDate   string `json:"birthDate"`
	NHSNumber   string `json:"nhsNumber,omitempty"`
	NHSVerified bool   `json:"nhsVerified"`
}

// Appointment is a simulated appointment as the trust's PAS holds it.
type Appointment struct {
	ID            string    `json:"id"`
	PatientID     string    `json:"patientId"`
	Status        string    `json:"status"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	SpecialtyCode string    `json:"specialtyCode"`
	Specialty     string    `json:"specialty"`
	Type          string    `json:"type"`
	LocationID    string    `json:"locationId"`
	Location      string    `json:"location"`
	Practitioner  string    `json:"practitioner"`
	PlacerID      string    `json:"placerId"`
	Comment       string    `json:"comment,omitempty"`
	Created       time.Time `json:"created"`
	LastUpdated   time.Time `json:"lastUpdated"`
}

// Message is a PKB message, plus whether it is an open appointment request
// (what status=pending selects).
type Message struct {
	pkb.Message
	Pending bool `json:"pending"`
}

// Outcome kinds: what Rebook should conclude from each message.
const (
	KindRoutable         = "routable"
	KindMissingNHSNumber = "missing-nhs-number"
	KindInvalidNHSNumber = "invalid-nhs-number"
	KindAmbiguous        = "ambiguous"
	KindNoMatch          = "no-match"
	KindUnreadable       = "unreadable-subject"
	KindNotARequest      = "not-a-request"
)

// Expectation is the scenario's ground truth for one message, for tests and
// demos: what a correct integration does with it.
type Expectation struct {
	MessageID     string              `json:"messageId"`
	Kind          string              `json:"kind"`
	RequestType   subject.RequestType `json:"requestType,omitempty"`
	AppointmentID string              `json:"appointmentId,omitempty"`
	Specialty     string              `json:"specialty,omitempty"`
	Clinic        string              `json:"clinic,omitempty"`
	Variant       int                 `json:"variant"`
}

// Dataset is everything the simulator serves. It is what the admin API
// exports and loads.
type Dataset struct {
	Patients     []Patient     `json:"patients"`
	Appointments []Appointment `json:"appointments"`
	Messages     []Message     `json:"messages"`
	Expect       []Expectation `json:"expect"`
}

// ScenarioOptions shape a generated scenario. The same options give the same
// dataset, byte for byte.
type ScenarioOptions struct {
	Name     string `json:"name"`
	Seed     uint64 `json:"seed"`
	Requests int    `json:"requests"`
	// AppointmentsFrom is the first day appointments are booked on; they
	// spread over the following 60 days. The default, 1 March 2027, puts
	// them on both sides of the spring clock change.
	AppointmentsFrom time.Time `json:"appointmentsFrom"`
	// MessagesFrom is the timestamp of the first message.
	MessagesFrom time.Time `json:"messagesFrom"`
	// MessagesUntil, when set, shifts every message so the last one is
	// stamped then: a scenario started "now" has no message from the
	// future.
	MessagesUntil time.Time `json:"messagesUntil"`
}

// Scenarios are the named scenarios and their default request counts.
var Scenarios = map[string]int{"demo": 240, "small": 20, "empty": 0}

type specialty struct{ code, name string }

var specialties = []specialty{
	{"320", "Cardiology"}, {"330", "Dermatology"}, {"130", "Ophthalmology"},
	{"110", "Trauma and Orthopaedics"}, {"340", "Respiratory Medicine"},
	{"301", "Gastroenterology"}, {"400", "Neurology"}, {"410", "Rheumatology"},
	{"101", "Urology"}, {"120", "ENT"},
}

var clinics = []struct{ id, name string }{
	{"loc-stt-op2", "St Thomas' Outpatients Level 2"},
	{"loc-guys-a", "Guy's Hospital Clinic A"},
	{"loc-guys-b", "Guy's Hospital Clinic B"},
	{"loc-qms-opd", "Queen Mary's Sidcup OPD"},
	{"loc-cdc", "Community Diagnostic Centre"},
}

var appointmentKinds = []string{"Outpatient Clinic", "Follow-up", "New Patient", "Review Clinic"}

var givenNames = []string{"Olivia", "Amelia", "Isla", "Ava", "Mohammed", "Noah", "Oliver", "George", "Priya", "Sofia", "Kwame", "Siobhan", "Dylan", "Mei", "Arjun", "Grace", "Tomasz", "Fatima", "Rhys", "Ewan"}
var familyNames = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Khan", "Evans", "Thomas", "Roberts", "Nowak", "Okafor", "O'Brien", "Campbell", "Chen", "Hughes", "Begum"}
var clinicians = []string{"Dr A Mensah", "Dr R Gupta", "Mr J Fletcher", "Ms K Osei", "Dr L Harper", "Prof S Iqbal", "Dr H Lloyd", "Miss C Doyle"}
var notes = []string{
	"I am away that week, sorry.",
	"My daughter's wedding is that day.",
	"I have started a new job and cannot get the time off.",
	"I am feeling much better and no longer need it.",
	"Could we make it later in the day please?",
	"I'm in hospital elsewhere at the moment.",
	"Transport can't take me that morning.",
	"",
}
var generalSubjects = []string{"Question about my prescription", "Test results", "Thank you", "Update to my contact details"}
var unreadableSubjects = []string{
	"Can I change my appointment please?",
	"Re: my appointment next week",
	"Cancel appointment",
	"Appointment query - 14/03",
	"Need to cancel: Tuesday morning clinic",
}

// Generate builds a scenario. It is deterministic in its options.
func Generate(o ScenarioOptions) Dataset {
	if o.AppointmentsFrom.IsZero() {
		o.AppointmentsFrom = time.Date(2027, time.March, 1, 0, 0, 0, 0, subject.London())
	}
	if o.MessagesFrom.IsZero() {
		o.MessagesFrom = time.Date(2027, time.February, 1, 9, 0, 0, 0, time.UTC)
		if !o.MessagesUntil.IsZero() {
			// Appointments were booked weeks before the messages.
			o.MessagesFrom = o.MessagesUntil
		}
	}
	g := &gen{r: rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed)), o: o}
	ts := o.MessagesFrom.UnixMilli()
	for i := 0; i < o.Requests; i++ {
		// About one message in eight shares its timestamp with the one
		// before, as PKB's paging must cope with.
		if i == 0 || g.r.IntN(8) != 0 {
			ts += int64(1000 + g.r.IntN(90_000))
		}
		g.request(i, ts)
	}
	sort.SliceStable(g.d.Appointments, func(i, j int) bool { return g.d.Appointments[i].ID < g.d.Appointments[j].ID })
	if n := len(g.d.Messages); n > 0 && !o.MessagesUntil.IsZero() {
		shift := o.MessagesUntil.UnixMilli() - g.d.Messages[n-1].Timestamp
		for i := range g.d.Messages {
			g.d.Messages[i].Timestamp += shift
		}
	}
	return g.d
}

type gen struct {
	r   *rand.Rand
	o   ScenarioOptions
	d   Dataset
	seq int
}

func (g *gen) id(prefix string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return prefix + hex.EncodeToString(b)
}

func (g *gen) uuid() string {
	h := g.id("", 16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (g *gen) patient(kind string) Patient {
	p := Patient{
		ID:          g.uuid(),
		GivenName:   pick(g.r, givenNames),
		FamilyName:  pick(g.r, familyNames),
		BirthDate:   fmt.Sprintf("%d-%02d-%02d", 1935+g.r.IntN(70), 1+g.r.IntN(12), 1+g.r.IntN(28)),
		NHSVerified: g.r.IntN(10) != 0,
	}
	switch kind {
	case KindMissingNHSNumber:
		p.NHSVerified = false
	case KindInvalidNHSNumber:
		p.NHSNumber = g.nhsNumber(false)
	default:
		p.NHSNumber = g.nhsNumber(true)
	}
	g.d.Patients = append(g.d.Patients, p)
	return p
}

// nhsNumber draws a 999-range test number that passes the check, or one
// that fails it.
func (g *gen) nhsNumber(valid bool) string {
	for {
		nine := fmt.Sprintf("999%06d", g.r.IntN(1_000_000))
		c, ok := nhsnumber.CheckDigit(nine)
		if !ok {
			continue
		}
		if valid {
			return nine + string(c)
		}
		return nine + string('0'+(c-'0'+1+byte(g.r.IntN(8)))%10)
	}
}

func (g *gen) slot() time.Time {
	for {
		day := g.o.AppointmentsFrom.AddDate(0, 0, g.r.IntN(60))
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		q := g.r.IntN(38) // 08:00 to 17:15 in quarter hours
		return time.Date(day.Year(), day.Month(), day.Day(), 8+q/4, 15*(q%4), 0, 0, subject.London())
	}
}

func (g *gen) appointment(p Patient, status string, sp specialty, at time.Time) Appointment {
	g.seq++
	c := clinics[g.r.IntN(len(clinics))]
	created := g.o.MessagesFrom.Add(-time.Duration(20+g.r.IntN(60)) * 24 * time.Hour)
	a := Appointment{
		ID:            fmt.Sprintf("appt-%05d", g.seq),
		PatientID:     p.ID,
		Status:        status,
		Start:         at,
		End:           at.Add(time.Duration(15*(1+g.r.IntN(4))) * time.Minute),
		SpecialtyCode: sp.code,
		Specialty:     sp.name,
		Type:          sp.name + " " + pick(g.r, appointmentKinds),
		LocationID:    c.id,
		Location:      c.name,
		Practitioner:  pick(g.r, clinicians),
		PlacerID:      fmt.Sprintf("PAS%07d", 1_000_000+g.seq),
		Created:       created,
		LastUpdated:   created,
	}
	g.d.Appointments = append(g.d.Appointments, a)
	return a
}

func (g *gen) kind() string {
	switch n := g.r.IntN(100); {
	case n < 76:
		return KindRoutable
	case n < 80:
		return KindMissingNHSNumber
	case n < 84:
		return KindInvalidNHSNumber
	case n < 88:
		return KindAmbiguous
	case n < 92:
		return KindNoMatch
	case n < 96:
		return KindUnreadable
	default:
		return KindNotARequest
	}
}

// SubjectVariant writes a request's subject in one of the four ways PKB
// words it (pkb-api.md, section 2).
func SubjectVariant(v int, typ subject.RequestType, start time.Time, what string) string {
	t := start.In(subject.London())
	verb, Verb := "cancel", "Cancel"
	if typ == subject.Change {
		verb, Verb = "change", "Change"
	}
	switch v % 4 {
	case 0:
		return fmt.Sprintf("%s appointment: %s %s", Verb, t.Format("02/01/2006 15:04"), what)
	case 1:
		return fmt.Sprintf("%s appointment: %s - %s", Verb, t.Format("02/01/2006 15:04"), what)
	case 2:
		return fmt.Sprintf("Request to %s appointment on %s at %s (%s)", verb, t.Format("2 Jan 2006"), t.Format("15:04"), what)
	default:
		return fmt.Sprintf("Appointment %s request - %s, %s - %s", verb, t.Format("Monday 2 January 2006"), strings.ToLower(t.Format("3:04PM")), what)
	}
}

func (g *gen) request(i int, ts int64) {
	kind := g.kind()
	p := g.patient(kind)
	sp := pick(g.r, specialties)
	typ := subject.Cancel
	if g.r.IntN(2) == 0 {
		typ = subject.Change
	}
	// Each patient has other appointments too, which must not be matched.
	for n := g.r.IntN(3); n > 0; n-- {
		g.appointment(p, "booked", pick(g.r, specialties), g.slot())
	}

	e := Expectation{Kind: kind, RequestType: typ, Variant: i % 4}
	var subj string
	switch kind {
	case KindNoMatch:
		a := g.appointment(p, "booked", sp, g.slot())
		// The patient names a day on which they have nothing booked.
		subj = SubjectVariant(i, typ, a.Start.AddDate(0, 0, 1+g.r.IntN(3)), a.Type)
	case KindUnreadable:
		g.appointment(p, "pending", sp, g.slot())
		subj = pick(g.r, unreadableSubjects)
		e.RequestType = ""
	case KindNotARequest:
		subj = pick(g.r, generalSubjects)
		e.RequestType = ""
	case KindAmbiguous:
		// Double-booked: two pending appointments at the same time with the
		// same subject, in different clinics.
		a := g.appointment(p, "pending", sp, g.slot())
		b := g.appointment(p, "pending", sp, a.Start)
		b.Type = a.Type
		g.d.Appointments[len(g.d.Appointments)-1] = b
		subj = SubjectVariant(i, typ, a.Start, a.Type)
	default:
		a := g.appointment(p, "pending", sp, g.slot())
		subj = SubjectVariant(i, typ, a.Start, a.Type)
		e.AppointmentID, e.Specialty, e.Clinic = a.ID, a.Specialty, a.Location
	}

	note := pick(g.r, notes)
	html := g.r.IntN(7) == 0
	if html {
		note = "<p>" + note + "</p><p>Thanks</p>"
	}
	m := Message{
		Message: pkb.Message{
			ID:             g.id("msg-", 8),
			ConversationID: g.id("conv-", 6),
			Timestamp:      ts,
			Subject:        subj,
			Content:        note,
			IsHTML:         html,
			PatientID:      p.ID,
			SenderID:       p.ID,
			TeamID:         "team-appointments",
			Status:         "UNREAD",
		},
		Pending: kind != KindNotARequest,
	}
	e.MessageID = m.ID
	g.d.Messages = append(g.d.Messages, m)
	g.d.Expect = append(g.d.Expect, e)
}

// Pending is the demo scenario cut to exactly n open requests, the last
// stamped a minute ago: a backlog for the end-to-end tests and the
// benchmark.
func Pending(n int) Dataset {
	ds := Generate(ScenarioOptions{Name: "demo", Seed: 7, Requests: 2*n + 10, MessagesUntil: time.Now().Add(-time.Minute)})
	keep := map[string]bool{}
	var msgs []Message
	for _, m := range ds.Messages {
		if m.Pending && len(msgs) < n {
			msgs = append(msgs, m)
			keep[m.ID] = true
		}
	}
	var exp []Expectation
	for _, e := range ds.Expect {
		if keep[e.MessageID] {
			exp = append(exp, e)
		}
	}
	ds.Messages, ds.Expect = msgs, exp
	return ds
}
