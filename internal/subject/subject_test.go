package subject

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func at(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, London())
}

func TestParseVariants(t *testing.T) {
	want := func(typ RequestType) Request {
		return Request{Type: typ, Start: at(2026, time.March, 14, 9, 30), Subject: "Cardiology Outpatient Clinic"}
	}
	cases := []struct {
		in   string
		want Request
	}{
		// The four variants in pkb-api.md, as the simulator sends them.
		{"Cancel appointment: 14/03/2026 09:30 Cardiology Outpatient Clinic", want(Cancel)},
		{"Change appointment: 14/03/2026 09:30 - Cardiology Outpatient Clinic", want(Change)},
		{"Request to cancel appointment on 14 Mar 2026 at 09:30 (Cardiology Outpatient Clinic)", want(Cancel)},
		{"Appointment change request - Friday 14 March 2026, 9:30am - Cardiology Outpatient Clinic", want(Change)},
		// The weekday is not checked: pkb-api.md's own example calls
		// Saturday 14 March 2026 a Friday.
		{"Appointment change request - Monday 14 March 2026, 9:30am - Cardiology Outpatient Clinic", want(Change)},
		// Case, spacing and punctuation.
		{"CANCEL APPOINTMENT:14/03/2026   09:30   Cardiology Outpatient Clinic", Request{Cancel, at(2026, 3, 14, 9, 30), "Cardiology Outpatient Clinic"}},
		{"  change appointment : 14-03-2026 09.30 – Cardiology Outpatient Clinic.  ", want(Change)},
		{"Request to cancel appointment on 14th Mar. 2026 at 9:30 a.m. (Cardiology Outpatient Clinic)", want(Cancel)},
		{"Appointment change request — Fri 14 Mar 2026, 9:30 AM — Cardiology Outpatient Clinic", want(Change)},
		{"Appointment change request - Friday, 14 March 2026, 09:30 - Cardiology Outpatient Clinic", want(Change)},
		{"Please reschedule my appointment 2026-03-14 09:30 Cardiology Outpatient Clinic", want(Change)},
		{"Cancel appointment: 4/3/2026 14:05 Dermatology New Patient", Request{Cancel, at(2026, 3, 4, 14, 5), "Dermatology New Patient"}},
		{"Change appointment: 14/03/2026 2pm - Ambulatory Care", Request{Change, at(2026, 3, 14, 14, 0), "Ambulatory Care"}},
		{"Change appointment: 14/03/2026 09:30 Ambulatory Care", Request{Change, at(2026, 3, 14, 9, 30), "Ambulatory Care"}},
		{"Cancel appointment: 14/03/2026 12:15am Night Clinic", Request{Cancel, at(2026, 3, 14, 0, 15), "Night Clinic"}},
		{"Cancel appointment: 14/03/2026 12:15pm Lunch Clinic", Request{Cancel, at(2026, 3, 14, 12, 15), "Lunch Clinic"}},
		{"Change appointment: 01/03/2000 01:00 Am", Request{Change, at(2000, 3, 1, 1, 0), "Am"}},
		{"Change appointment: 01/05/2000 13:00 Am", Request{Change, at(2000, 5, 1, 13, 0), "Am"}},
		{"Cancel appointment: 14/03/2026 09:30 for Physiotherapy", Request{Cancel, at(2026, 3, 14, 9, 30), "Physiotherapy"}},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want.Type, got.Type)
			assert.True(t, tc.want.Start.Equal(got.Start), "start %s, want %s", got.Start, tc.want.Start)
			assert.Equal(t, tc.want.Subject, got.Subject)
		})
	}
}

func TestParseClockChange(t *testing.T) {
	// GMT before the last Sunday of March 2026 (29th), BST after.
	gmt, err := Parse("Cancel appointment: 28/03/2026 09:30 Cardiology Outpatient Clinic")
	require.NoError(t, err)
	assert.Equal(t, "2026-03-28T09:30:00Z", gmt.Start.UTC().Format(time.RFC3339))
	bst, err := Parse("Cancel appointment: 30/03/2026 09:30 Cardiology Outpatient Clinic")
	require.NoError(t, err)
	assert.Equal(t, "2026-03-30T08:30:00Z", bst.Start.UTC().Format(time.RFC3339))

	_, err = Parse("Cancel appointment: 29/03/2026 01:30 Night Clinic")
	assert.ErrorIs(t, err, ErrNonexistentLocal)
	_, err = Parse("Cancel appointment: 25/10/2026 01:30 Night Clinic")
	assert.ErrorIs(t, err, ErrAmbiguousLocal)
	ok, err := Parse("Cancel appointment: 25/10/2026 02:30 Night Clinic")
	require.NoError(t, err)
	assert.Equal(t, "2026-10-25T02:30:00Z", ok.Start.UTC().Format(time.RFC3339))
}

func TestParseRefusals(t *testing.T) {
	cases := []struct {
		in  string
		err error
	}{
		{"", ErrEmpty},
		{"   ", ErrEmpty},
		{"Question about my medication", ErrNoDate},
		{"Appointment: 14/03/2026 09:30 Cardiology Outpatient Clinic", ErrNoRequestType},
		{"Cancel or change appointment: 14/03/2026 09:30 Cardiology", ErrBothRequestTypes},
		{"Cancel appointment: 31/02/2026 09:30 Cardiology", ErrBadDate},
		{"Cancel appointment: 14/13/2026 09:30 Cardiology", ErrBadDate},
		{"Cancel appointment: 14/03/2026 Cardiology Outpatient Clinic", ErrNoTime},
		{"Cancel appointment: 14/03/2026 9 Cardiology Outpatient Clinic", ErrNoTime},
		{"Cancel appointment: 14/03/2026 25:30 Cardiology", ErrBadTime},
		{"Cancel appointment: 14/03/2026 13:30pm Cardiology", ErrBadTime},
		{"Cancel appointment: 14/03/2026 09:61 Cardiology", ErrBadTime},
		{"Cancel appointment: 14/03/2026 09:30", ErrNoSubject},
		{"Request to cancel appointment on 14 Mar 2026 at 09:30 ()", ErrNoSubject},
		{"Cancel appointment: 14/03/2026 09:30 " + strings.Repeat("x", 2000), ErrTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Parse(tc.in)
			require.ErrorIs(t, err, tc.err)
			assert.NotContains(t, err.Error(), "Cardiology", "reasons must not echo the subject")
		})
	}
}

func TestFormatRoundTrip(t *testing.T) {
	r := Request{Type: Change, Start: at(2026, time.November, 2, 16, 45), Subject: "Neurology Follow-up"}
	assert.Equal(t, "Change appointment: 02/11/2026 16:45 - Neurology Follow-up", Format(r))
	back, err := Parse(Format(r))
	require.NoError(t, err)
	assert.Equal(t, r.Type, back.Type)
	assert.True(t, r.Start.Equal(back.Start))
	assert.Equal(t, r.Subject, back.Subject)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Cancel appointment: 14/03/2026 09:30 Cardiology Outpatient Clinic",
		"Change appointment: 14/03/2026 09:30 - Cardiology Outpatient Clinic",
		"Request to cancel appointment on 14 Mar 2026 at 09:30 (Cardiology Outpatient Clinic)",
		"Appointment change request - Friday 14 March 2026, 9:30am - Cardiology Outpatient Clinic",
		"Cancel appointment: 29/03/2026 01:30 X",
		"cancel 2026-03-14 9pm y",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if r != (Request{}) {
				t.Fatalf("error %v with a partial result", err)
			}
			return
		}
		if !r.Type.Valid() || r.Subject == "" || r.Start.IsZero() {
			t.Fatalf("accepted %q as %+v", s, r)
		}
		if r.Start.Location() != London() {
			t.Fatalf("start not in Europe/London: %v", r.Start.Location())
		}
		// What the parser accepted, written in the canonical variant, reads
		// back the same: type, instant and a subject it already trimmed.
		canonical := Format(r)
		if len(canonical) > maxSubjectBytes {
			// The canonical date and time can be longer than what the
			// patient wrote ("1.1.2000 0.00"), past the length limit.
			return
		}
		back, err := Parse(canonical)
		if err != nil {
			t.Fatalf("canonical form of %q does not parse: %v", s, err)
		}
		if back.Type != r.Type || !back.Start.Equal(r.Start) {
			t.Fatalf("round trip changed %+v to %+v", r, back)
		}
	})
}
