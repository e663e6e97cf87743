package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/feed"
	"github.com/rebookhq/rebook/internal/hl7"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/workflows"
)

// The PAS's copy of an update closes the request it concerns within 2
// seconds, with no PKB call: an SIU S15 over MLLP, and a FHIR Appointment
// over HTTPS. A message Rebook cannot use gets a negative ACK (or 400)
// and changes nothing.
func TestPASFeedClosesRequests(t *testing.T) {
	const n = 12
	// The watcher checks nobody for an hour: any close is the feed's.
	r := routedForFeed(t, n)
	s, f, ctx := r.stack, r.feed, context.Background()
	cancels := r.requestsOf(subject.Cancel)
	require.GreaterOrEqual(t, len(cancels), 2)
	wid, closed := r.wid, r.closedID
	conn, err := net.Dial("tcp", r.serveMLLP(feed.MLLPSecurity{}))
	require.NoError(t, err)
	m := dialMLLP(t, conn)
	send := func(msg string) *hl7.Message {
		ack, err := m.send(msg)
		require.NoError(t, err)
		return ack
	}
	before := s.sim.Counters()

	// Malformed: not HL7, an ADT, and an S15 without the appointment id.
	for _, bad := range []string{"hello", "MSH|^~\\&|PAS|TRUST|REBOOK|TRUST|20270301090000||ADT^A01|c1|P|2.5\rPID|||123\r",
		"MSH|^~\\&|PAS|TRUST|REBOOK|TRUST|20270301090000||SIU^S15|c2|P|2.5\rSCH||F1\r"} {
		ack := send(bad)
		assert.Equal(t, hl7.AckReject, ack.Field("MSA", 1, 0), "%q", bad)
		assert.NotEmpty(t, ack.Field("MSA", 3, 0), "the ACK says why")
	}

	// SIU S15 over MLLP.
	a := cancels[0]
	sentAt := time.Now()
	ack := send(fmt.Sprintf("MSH|^~\\&|PAS|TRUST|REBOOK|TRUST|%s||SIU^S15|c3|P|2.5\rSCH|%s|F-%s|||||||||^^^%s\r",
		time.Now().Format("20060102150405"), a.PlacerID, a.ID, a.Start.In(subject.London()).Format("200601021504")))
	require.Equal(t, hl7.AckAccept, ack.Field("MSA", 1, 0), ack.Field("MSA", 3, 0))
	assert.Equal(t, "c3", ack.Field("MSA", 2, 0))
	require.Eventually(t, func() bool { return closed(wid(a)) }, 5*time.Second, 50*time.Millisecond)
	t.Logf("SIU S15: request closed %s after the message", time.Since(sentAt).Round(time.Millisecond))
	assert.LessOrEqual(t, time.Since(sentAt), 2*time.Second)

	// FHIR Appointment over HTTPS.
	const token = "feed-secret-0123456789"
	srv := httptest.NewTLSServer(f.HTTP(token))
	t.Cleanup(srv.Close)
	post := func(body any, auth string) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/feed/fhir/Appointment", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/fhir+json")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	b := cancels[1]
	appt := map[string]any{"resourceType": "Appointment", "id": "pas-" + b.ID, "status": "cancelled", "start": b.Start.Format(time.RFC3339),
		"meta":       map[string]string{"lastUpdated": time.Now().UTC().Format(time.RFC3339)},
		"identifier": []map[string]string{{"system": "https://pas.simulated-trust.nhs.uk/Id/placer-appointment-id", "value": b.PlacerID}}}
	assert.Equal(t, http.StatusUnauthorized, post(appt, ""), "no secret, no update")
	assert.Equal(t, http.StatusUnauthorized, post(appt, "wrong-secret-0000000"))
	assert.Equal(t, http.StatusBadRequest, post(map[string]any{"resourceType": "Patient"}, token))
	assert.False(t, closed(wid(b)), "refused updates changed nothing")
	sentAt = time.Now()
	require.Equal(t, http.StatusOK, post(appt, token))
	require.Eventually(t, func() bool { return closed(wid(b)) }, 5*time.Second, 50*time.Millisecond)
	t.Logf("FHIR Appointment: request closed %s after the post", time.Since(sentAt).Round(time.Millisecond))
	assert.LessOrEqual(t, time.Since(sentAt), 2*time.Second)

	after := s.sim.Counters()
	for _, route := range []string{"GET /fhir/Appointment", "GET /fhir/Appointment/{id}", "GET /fhir/Patient"} {
		assert.Equal(t, before[route], after[route], "no PKB call for the feed's updates (%s)", route)
	}
	for _, e := range s.ds.Expect {
		id := workflows.RequestWorkflowID(e.MessageID)
		if id != wid(a) && id != wid(b) {
			assert.False(t, closed(id), "only the two requests the feed named closed")
		}
	}

	// A placer id Rebook does not know, with the patient's NHS number in
	// PID-3: not evidence. It brings the patient's PKB check forward, and
	// only what PKB shows closes the request.
	var found []pkbsim.Appointment
	nhsOf := map[string]string{}
	for _, cand := range cancels[2:] {
		for _, p := range s.ds.Patients {
			if p.ID == cand.PatientID && len(p.NHSNumber) == 10 && p.NHSVerified {
				found = append(found, cand)
				nhsOf[cand.ID] = p.NHSNumber
			}
		}
	}
	require.GreaterOrEqual(t, len(found), 2, "the scenario has two cancel requests with a verified NHS number")
	unknownPlacer := func(a pkbsim.Appointment, control string) {
		ack := send(fmt.Sprintf("MSH|^~\\&|PAS|TRUST|REBOOK|TRUST|%s||SIU^S15|%s|P|2.5\rSCH|UNKNOWN-PLACER|F-x|||||||||^^^%s\rPID|1||%s^^^NHS^NH\r",
			time.Now().Format("20060102150405"), control, a.Start.In(subject.London()).Format("200601021504"), nhsOf[a.ID]))
		require.Equal(t, hl7.AckAccept, ack.Field("MSA", 1, 0), ack.Field("MSA", 3, 0))
	}
	checked := func(a pkbsim.Appointment) bool {
		trail, err := s.st.AuditTrail(ctx, wid(a))
		require.NoError(t, err)
		for _, e := range trail {
			if e.Action == "feed-hint" {
				return true
			}
		}
		return false
	}
	// PKB still shows c booked: the hint closes nothing.
	c, d := found[0], found[1]
	before = s.sim.Counters()
	unknownPlacer(c, "c4")
	require.Eventually(t, func() bool { return checked(c) }, 5*time.Second, 50*time.Millisecond, "the hint is audited")
	waitFor(t, "the watcher to ask PKB about the hinted patient", limit(time.Minute), func() bool {
		return s.sim.Counters()["GET /fhir/Appointment"] > before["GET /fhir/Appointment"]
	})
	assert.False(t, closed(wid(c)), "an update that names no request's appointment closes nothing")
	// PKB shows d cancelled: the hinted check finds it and closes it.
	require.NoError(t, s.sim.Cancel(d.ID))
	unknownPlacer(d, "c5")
	waitFor(t, "the hinted check to close the request PKB shows cancelled", limit(time.Minute), func() bool { return closed(wid(d)) })
	assert.Contains(t, r.outcome(d).Note, "PKB shows", "closed on PKB's word, not the feed's")
	assert.Contains(t, r.outcome(a).Note, "The PAS feed shows", "closed on the feed's word, and says so")
	applied, stale, hinted, kept := f.Counts()
	assert.EqualValues(t, 2, applied)
	assert.Zero(t, stale)
	assert.EqualValues(t, 2, hinted)
	assert.EqualValues(t, 2, kept, "the unknown placer ids are kept in case their request is routed later")
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
