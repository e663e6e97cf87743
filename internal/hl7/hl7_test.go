package hl7_test

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/hl7"
	"github.com/rebookhq/rebook/internal/subject"
)

const s13 = "MSH|^~\\&|PAS|TRUST|REBOOK|TRUST|20270301090000||SIU^S13^SIU_S12|ctl-42|P|2.5\r" +
	"SCH|PL-77^PAS|FL-9^PAS|||||||||^^^202704021015\r" +
	"TQ1|1||||||202704021030+0100\r" +
	"PID|1||123^^^PKB\r"

func TestReadSIUTakesTheAppointmentIdAndStart(t *testing.T) {
	m, err := hl7.Parse([]byte(s13))
	require.NoError(t, err)
	s, err := hl7.ReadSIU(m, subject.London())
	require.NoError(t, err)
	assert.Equal(t, "S13", s.Event)
	assert.Equal(t, "booked", s.Status)
	assert.Equal(t, "PL-77", s.PlacerID)
	assert.Equal(t, "FL-9", s.FillerID)
	assert.True(t, s.Start.Equal(time.Date(2027, 4, 2, 9, 30, 0, 0, time.UTC)), "TQ1-7 with its offset wins over SCH-11: %s", s.Start)

	// Before v2.5: SCH-11.4, in UK time when it carries no offset.
	m, err = hl7.Parse([]byte(strings.Replace(s13, "TQ1|1||||||202704021030+0100\r", "", 1)))
	require.NoError(t, err)
	s, err = hl7.ReadSIU(m, subject.London())
	require.NoError(t, err)
	assert.True(t, s.Start.Equal(time.Date(2027, 4, 2, 9, 15, 0, 0, time.UTC)), "10:15 BST: %s", s.Start)
	assert.Empty(t, s.NHSNumber, "PID-3 has only the PAS's own id")

	// The NHS number is the PID-3 repetition typed NH (or issued by NHS).
	m, err = hl7.Parse([]byte(strings.Replace(s13, "PID|1||123^^^PKB\r", "PID|1||123^^^PAS^MR~9434765919^^^NHS^NH\r", 1)))
	require.NoError(t, err)
	s, err = hl7.ReadSIU(m, subject.London())
	require.NoError(t, err)
	assert.Equal(t, "9434765919", s.NHSNumber)
}

func TestReadSIURefusesWithTheReason(t *testing.T) {
	for msg, why := range map[string]string{
		"MSH|^~\\&|PAS|T|R|T|20270301||ADT^A01|c|P|2.5\r":           "not SIU",
		"MSH|^~\\&|PAS|T|R|T|20270301||SIU^S99|c|P|2.5\rSCH|PL-1\r": "not one Rebook uses",
		"MSH|^~\\&|PAS|T|R|T|20270301||SIU^S15|c|P|2.5\r":           "no SCH",
		"MSH|^~\\&|PAS|T|R|T|20270301||SIU^S15|c|P|2.5\rSCH||F\r":   "placer appointment id",
		"MSH|^~\\&|PAS|T|R|T|20270301||SIU^S12|c|P|2.5\rSCH|PL-1\r": "without the appointment's start",
	} {
		m, err := hl7.Parse([]byte(msg))
		require.NoError(t, err)
		_, err = hl7.ReadSIU(m, subject.London())
		require.Error(t, err, msg)
		assert.Contains(t, err.Error(), why)
	}
	_, err := hl7.Parse([]byte("PID|1||123\r"))
	assert.ErrorContains(t, err, "MSH")
}

func TestAckAnswersTheControlIdAndStripsSeparators(t *testing.T) {
	m, err := hl7.Parse([]byte(s13))
	require.NoError(t, err)
	ack, err := hl7.Parse(hl7.Ack(m, hl7.AckReject, "bad|field^here", time.Now()))
	require.NoError(t, err)
	assert.Equal(t, "ACK", ack.Field("MSH", 9, 0))
	assert.Equal(t, "AR", ack.Field("MSA", 1, 0))
	assert.Equal(t, "ctl-42", ack.Field("MSA", 2, 0))
	assert.Equal(t, "bad field here", ack.Field("MSA", 3, 0))
}

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(hl7.Frame([]byte(s13)))
	buf.Write(hl7.Frame([]byte("MSH|^~\\&|A\r")))
	r := bufio.NewReader(&buf)
	one, err := hl7.ReadFrame(r)
	require.NoError(t, err)
	assert.Equal(t, s13, string(one))
	two, err := hl7.ReadFrame(r)
	require.NoError(t, err)
	assert.Equal(t, "MSH|^~\\&|A\r", string(two))
	_, err = hl7.ReadFrame(bufio.NewReader(strings.NewReader("no frame")))
	assert.ErrorIs(t, err, hl7.ErrFrame)
}

// The reader never panics, and what it accepts as an SIU names an
// appointment.
func FuzzReadSIU(f *testing.F) {
	f.Add([]byte(s13))
	f.Add([]byte("MSH|^~\\&|PAS|T|R|T|20270301||SIU^S15|c|P|2.5\rSCH|PL-1\r"))
	f.Add([]byte("MSH#@!$%|#|x\r"))
	f.Add([]byte("MSH|"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = hl7.ReadFrame(bufio.NewReader(bytes.NewReader(raw)))
		m, err := hl7.Parse(raw)
		if err != nil {
			return
		}
		_ = hl7.Ack(m, hl7.AckAccept, "", time.Now())
		s, err := hl7.ReadSIU(m, subject.London())
		if err == nil && s.PlacerID == "" {
			t.Fatalf("an SIU accepted without an appointment id: %q", raw)
		}
	})
}

func TestReadSIUTakesTheEventTimeControlIdAndPlacerSystem(t *testing.T) {
	for _, tc := range []struct{ msg, system, at string }{
		{"MSH|^~\\&|PAS|T|R|T|20270301090000||SIU^S15|c1|P|2.5\rSCH|P1^PAS^https://pas.example/Id^URI\r", "https://pas.example/Id", "2027-03-01T09:00:00Z"},
		{"MSH|^~\\&|PAS|T|R|T|20270301090000||SIU^S15|c1|P|2.5\rEVN|S15|20270301085500\rSCH|P1^PAS^2.16.840.1.113883.2.1^ISO\r", "urn:oid:2.16.840.1.113883.2.1", "2027-03-01T08:55:00Z"},
		{"MSH|^~\\&|PAS|T|R|T|20270301090000||SIU^S15|c1|P|2.5\rSCH|P1^PAS\r", "", "2027-03-01T09:00:00Z"},
	} {
		m, err := hl7.Parse([]byte(tc.msg))
		require.NoError(t, err)
		s, err := hl7.ReadSIU(m, time.UTC)
		require.NoError(t, err)
		assert.Equal(t, "P1", s.PlacerID)
		assert.Equal(t, tc.system, s.PlacerNamespace, "a namespace id is a local code, not a system")
		assert.Equal(t, "c1", s.ControlID)
		assert.Equal(t, tc.at, s.At.UTC().Format(time.RFC3339), "EVN-2 before MSH-7")
	}
	m, err := hl7.Parse([]byte("MSH|^~\\&|PAS|T|R|T|yesterday||SIU^S15|c1|P|2.5\rSCH|P1\r"))
	require.NoError(t, err)
	_, err = hl7.ReadSIU(m, time.UTC)
	assert.ErrorContains(t, err, "MSH-7")
}
