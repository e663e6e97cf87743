package workflows_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/testrig"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/workflows"
)

// badInput is one malformed message, patient, appointment or answer from
// PKB, made from a routable request of the scenario.
type badInput struct {
	name string
	// spoil changes the rig's PKB around the message m (already in the
	// dataset) and returns the message to run.
	spoil func(r *testrig.Rig, ds *pkbsim.Dataset, m *pkbsim.Message, a *pkbsim.Appointment, p *pkbsim.Patient)
	// reason, when set, is what the triage reason must say.
	reason string
	// routed says it must reach its team despite the bad input.
	routed bool
}

var badInputs = []badInput{
	{name: "the request unspoiled (the control)", routed: true, spoil: func(*testrig.Rig, *pkbsim.Dataset, *pkbsim.Message, *pkbsim.Appointment, *pkbsim.Patient) {}},
	{name: "bad JSON for the message", reason: "malformed", spoil: func(r *testrig.Rig, _ *pkbsim.Dataset, m *pkbsim.Message, _ *pkbsim.Appointment, _ *pkbsim.Patient) {
		r.Sim.Garble("/after/"+strconv.FormatInt(m.Timestamp-1, 10), `[{"id": "`+m.ID+`", "subject": `)
	}},
	{name: "wrong types in the message", reason: "malformed", spoil: func(r *testrig.Rig, _ *pkbsim.Dataset, m *pkbsim.Message, _ *pkbsim.Appointment, _ *pkbsim.Patient) {
		r.Sim.Garble("/after/"+strconv.FormatInt(m.Timestamp-1, 10), `[{"id": 42, "subject": ["a"], "timestamp": "yesterday"}]`)
	}},
	{name: "bad JSON for the patient", reason: "malformed", spoil: func(r *testrig.Rig, _ *pkbsim.Dataset, _ *pkbsim.Message, _ *pkbsim.Appointment, p *pkbsim.Patient) {
		r.Sim.Garble(p.ID, `{"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "identifier": "not a list"`)
	}},
	{name: "wrong types in the appointment search", reason: "malformed", spoil: func(r *testrig.Rig, _ *pkbsim.Dataset, _ *pkbsim.Message, _ *pkbsim.Appointment, _ *pkbsim.Patient) {
		r.Sim.Garble("/fhir/Appointment?", `{"resourceType": "Bundle", "total": "many", "entry": {"resource": 7}}`)
	}},
	{name: "an empty subject", spoil: func(_ *testrig.Rig, _ *pkbsim.Dataset, m *pkbsim.Message, _ *pkbsim.Appointment, _ *pkbsim.Patient) {
		m.Subject = ""
	}},
	{name: "HTML in subject and content", spoil: func(_ *testrig.Rig, _ *pkbsim.Dataset, m *pkbsim.Message, _ *pkbsim.Appointment, _ *pkbsim.Patient) {
		m.Subject = `<script>alert("x")</script> ` + m.Subject + ` <b>please</b>`
		m.Content = `<img src=x onerror=alert(1)><a href="javascript:void(0)">click</a> &amp; <@U123> <!channel>`
	}},
	{name: "huge content", routed: true, spoil: func(_ *testrig.Rig, _ *pkbsim.Dataset, m *pkbsim.Message, _ *pkbsim.Appointment, _ *pkbsim.Patient) {
		m.Content = strings.Repeat("I cannot come because ", 100_000) // 2.2 MB
	}},
	{name: "a patient without name, birth date or NHS number", spoil: func(_ *testrig.Rig, _ *pkbsim.Dataset, _ *pkbsim.Message, _ *pkbsim.Appointment, p *pkbsim.Patient) {
		p.GivenName, p.FamilyName, p.BirthDate, p.NHSNumber = "", "", "", ""
	}},
	{name: "an unknown specialty", spoil: func(_ *testrig.Rig, _ *pkbsim.Dataset, _ *pkbsim.Message, a *pkbsim.Appointment, _ *pkbsim.Patient) {
		a.SpecialtyCode, a.Specialty = "999", "Hyperbaric Medicine"
	}},
	{name: "a time the spring clock change skips", spoil: func(_ *testrig.Rig, _ *pkbsim.Dataset, m *pkbsim.Message, a *pkbsim.Appointment, _ *pkbsim.Patient) {
		// 01:30 on 28 March 2027 does not exist in London.
		a.Start = time.Date(2027, 3, 28, 1, 30, 0, 0, subject.London())
		a.End = a.Start.Add(30 * time.Minute)
		m.Subject = "Cancel appointment: 28/03/2027 01:30 " + a.Type
	}},
	{name: "a time the autumn clock change repeats", spoil: func(_ *testrig.Rig, ds *pkbsim.Dataset, m *pkbsim.Message, a *pkbsim.Appointment, _ *pkbsim.Patient) {
		// 01:30 on 31 October 2027 happens twice: once in BST, once in
		// GMT. The patient has one appointment at each.
		a.Start = time.Date(2027, 10, 31, 0, 30, 0, 0, time.UTC) // 01:30 BST
		a.End = a.Start.Add(30 * time.Minute)
		twin := *a
		twin.ID, twin.PlacerID = a.ID+"-gmt", a.PlacerID+"-gmt"
		twin.Start = time.Date(2027, 10, 31, 1, 30, 0, 0, time.UTC) // 01:30 GMT
		twin.End = twin.Start.Add(30 * time.Minute)
		ds.Appointments = append(ds.Appointments, twin)
		m.Subject = "Cancel appointment: 31/10/2027 01:30 " + a.Type
	}},
	{name: "two candidates on the day", reason: "", spoil: func(_ *testrig.Rig, ds *pkbsim.Dataset, _ *pkbsim.Message, a *pkbsim.Appointment, _ *pkbsim.Patient) {
		twin := *a
		twin.ID, twin.PlacerID = a.ID+"-twin", a.PlacerID+"-twin"
		ds.Appointments = append(ds.Appointments, twin)
	}},
}

// Each bad input ends routed or in triage with a reason: never lost,
// never a failed workflow, one card in Slack, a row in the read model.
func TestBadInputEndsRoutedOrTriaged(t *testing.T) {
	for _, c := range badInputs {
		t.Run(c.name, func(t *testing.T) {
			r := testrig.New(t)
			ds := r.Sim.Dataset()
			e := r.Expect(pkbsim.KindRoutable)
			var m *pkbsim.Message
			for i := range ds.Messages {
				if ds.Messages[i].ID == e.MessageID {
					m = &ds.Messages[i]
				}
			}
			var a *pkbsim.Appointment
			for i := range ds.Appointments {
				if ds.Appointments[i].ID == e.AppointmentID {
					a = &ds.Appointments[i]
				}
			}
			var p *pkbsim.Patient
			for i := range ds.Patients {
				if ds.Patients[i].ID == m.PatientID {
					p = &ds.Patients[i]
				}
			}
			require.NotNil(t, m)
			require.NotNil(t, a)
			require.NotNil(t, p)
			c.spoil(r, &ds, m, a, p)
			r.Sim.Load(ds)
			rules, err := routing.ReadCSV(strings.NewReader(routing.DemoCSV))
			require.NoError(t, err)
			require.NoError(t, r.Store.ReplaceRules(context.Background(), rules))
			for _, rule := range rules {
				r.Slack.AddChannel(rule.SlackChannel)
			}

			env := realEnv(r)
			status := stopAt(t, env, time.Hour)
			env.ExecuteWorkflow(workflows.AppointmentRequestWorkflow, activities.MessageRef{ID: m.ID, Timestamp: m.Timestamp})
			require.True(t, env.IsWorkflowCompleted())
			if err := env.GetWorkflowError(); err != nil {
				assert.Contains(t, err.Error(), "canceled", "the request failed instead of waiting: %v", err)
			}
			require.NotEmpty(t, status.Ref, "the request was routed")
			if status.Triage {
				assert.NotEmpty(t, status.Reason, "triage says why")
				assert.Contains(t, status.Reason, c.reason)
				assert.False(t, c.routed, "expected routed, triaged: %s", status.Reason)
			} else {
				assert.Empty(t, c.reason, "expected triage (%s), routed to %s", c.reason, status.Team)
				assert.NotEmpty(t, status.Team)
			}
			t.Logf("triage %v team %q reason %q", status.Triage, status.Team, status.Reason)
			row, err := r.Store.Request(context.Background(), m.ID)
			require.NoError(t, err)
			assert.Equal(t, status.Ref, row.Ref)
			cards := 0
			for _, root := range r.Slack.Roots("") {
				if strings.Contains(root.Text, status.Ref) {
					cards++
					assert.NotContains(t, root.Text, "<script>", "message text never reaches Slack")
					assert.NotContains(t, root.Text, "<!channel>")
				}
			}
			assert.Equal(t, 1, cards, "one card")
		})
	}
}
