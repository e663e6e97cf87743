package routing

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/store"
)

func TestMatchMostSpecificWins(t *testing.T) {
	rules, err := ReadCSV(strings.NewReader(DemoCSV))
	require.NoError(t, err)
	cases := []struct{ specialty, clinic, typ, team string }{
		{"Cardiology", "Guy's Hospital Clinic A", "change", "Cardiology bookings"},
		{"Cardiology", "Guy's Hospital Clinic A", "cancel", "Cardiology cancellations"},
		{"cardiology", "x", "CANCEL", "Cardiology cancellations"},
		{"Cardiology", "Community Diagnostic Centre", "change", "Cardiology bookings"},
		{"Urology", "Community Diagnostic Centre", "change", "CDC bookings"},
		{"Urology", "Guy's Hospital Clinic A", "cancel", "Central appointments"},
	}
	for _, tc := range cases {
		r, ok := Match(rules, tc.specialty, tc.clinic, tc.typ)
		require.True(t, ok)
		assert.Equal(t, tc.team, r.Team, "%+v", tc)
	}
	_, ok := Match([]store.Rule{{Specialty: "Cardiology", Team: "c", SlackChannel: "c", SLAHours: 1}}, "Urology", "", "cancel")
	assert.False(t, ok, "no catch-all: no match")
}

func TestReadCSVReportsEveryProblem(t *testing.T) {
	in := "specialty,clinic,request_type,team,slack_channel,sla_hours\n" +
		"Cardiology,,postpone,Cardio,cardio,48\n" +
		"Dermatology,,,,#Derm Team,0\n" +
		"Cardiology,,postpone,Cardio,cardio,48\n" +
		"Too,few\n"
	_, err := ReadCSV(strings.NewReader(in))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{"line 2: request_type", "line 3: team is empty", `line 3: slack_channel "#Derm Team"`, "line 3: sla_hours", "line 4: same specialty, clinic and request_type as line 2", "line 5: 2 cells", "nothing imported"} {
		assert.Contains(t, msg, want)
	}
	_, err = ReadCSV(strings.NewReader("team,specialty\n"))
	assert.ErrorContains(t, err, "header must be exactly specialty,clinic,request_type,team,slack_channel,sla_hours")
	_, err = ReadCSV(strings.NewReader(""))
	assert.ErrorContains(t, err, "empty")
}

func TestCSVRoundTrip(t *testing.T) {
	rules, err := ReadCSV(strings.NewReader("\ufeff" + DemoCSV))
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, WriteCSV(&buf, rules))
	assert.Equal(t, DemoCSV, buf.String())
}
