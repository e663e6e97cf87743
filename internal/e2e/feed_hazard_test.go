package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/feed"
	"github.com/rebookhq/rebook/internal/hl7"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/workflows"
)

// feedRig is a routed stack with the PAS feed listening: MLLP on l, FHIR
// on fhirURL.
type feedRig struct {
	*stack
	t    *testing.T
	feed *feed.Feed
}

// routedForFeed starts a stack of n requests whose watcher checks nobody
// for an hour (any close is the feed's or a hint's), and waits until all
// are routed.
func routedForFeed(t *testing.T, n int, tune ...func(*config.Config)) *feedRig {
	t.Helper()
	tune = append([]func(*config.Config){func(c *config.Config) { c.FirstCheckAfter = time.Hour }}, tune...)
	s := start(t, n, tune...)
	require.NoError(t, s.startSchedules(context.Background()))
	waitFor(t, "all routed", limit(2*time.Minute), func() bool { return len(s.cards()) >= n })
	waitFor(t, "the read model has every routed row", limit(time.Minute), func() bool {
		rows, err := s.st.AllRequests(context.Background())
		require.NoError(t, err)
		routed := 0
		for _, r := range rows {
			if r.SlackTS != "" {
				routed++
			}
		}
		return routed >= n
	})
	// The watcher's first run with a request open probes PKB once with
	// an org-wide search; the tests count PKB calls after it.
	waitFor(t, "the watcher's org-wide probe", limit(time.Minute), func() bool {
		at, err := s.st.Cursor(context.Background(), activities.OrgWideProbeCursor)
		require.NoError(t, err)
		return at != 0
	})
	return &feedRig{stack: s, t: t, feed: app.Feed(s.cfg, s.st, s.tc, quietLog(), nil)}
}

// requestsOf are the routable requests of a type: each appointment, and
// its patient.
func (r *feedRig) requestsOf(typ subject.RequestType) []pkbsim.Appointment {
	var out []pkbsim.Appointment
	for _, e := range r.ds.Expect {
		if e.Kind != pkbsim.KindRoutable || e.RequestType != typ {
			continue
		}
		for _, a := range r.ds.Appointments {
			if a.ID == e.AppointmentID {
				out = append(out, a)
			}
		}
	}
	return out
}

func (r *feedRig) wid(a pkbsim.Appointment) string {
	for _, e := range r.ds.Expect {
		if e.AppointmentID == a.ID {
			return workflows.RequestWorkflowID(e.MessageID)
		}
	}
	r.t.Fatalf("no request for %s", a.ID)
	return ""
}

func (r *feedRig) nhs(a pkbsim.Appointment) string {
	for _, p := range r.ds.Patients {
		if p.ID == a.PatientID {
			return p.NHSNumber
		}
	}
	return ""
}

func (r *feedRig) closed(a pkbsim.Appointment) bool { return r.closedID(r.wid(a)) }

// closedID says whether the request workflow id has completed.
func (r *feedRig) closedID(id string) bool {
	d, err := r.tc.DescribeWorkflowExecution(context.Background(), id, "")
	return err == nil && d.WorkflowExecutionInfo.Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED
}

func (r *feedRig) outcome(a pkbsim.Appointment) workflows.Outcome {
	var o workflows.Outcome
	require.NoError(r.t, r.tc.GetWorkflow(context.Background(), r.wid(a), "").Get(context.Background(), &o))
	return o
}

// audited waits for an audit entry of action on a's request and returns
// it.
func (r *feedRig) audited(a pkbsim.Appointment, action string) store.AuditEntry {
	var found store.AuditEntry
	waitFor(r.t, "an audit entry "+action, limit(30*time.Second), func() bool {
		trail, err := r.st.AuditTrail(context.Background(), r.wid(a))
		require.NoError(r.t, err)
		for _, e := range trail {
			if e.Action == action {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// readSeen says whether a's request has been signalled what the watcher
// saw and has no workflow task left to run.
func (r *feedRig) readSeen(a pkbsim.Appointment) bool {
	ctx := context.Background()
	d, err := r.tc.DescribeWorkflowExecution(ctx, r.wid(a), "")
	require.NoError(r.t, err)
	if d.PendingWorkflowTask != nil {
		return false
	}
	it := r.tc.GetWorkflowHistory(ctx, r.wid(a), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(r.t, err)
		if ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName() == workflows.SignalAppointmentsSeen {
			return true
		}
	}
	return false
}

// serveMLLP runs the feed's MLLP listener as sec says, on loopback.
func (r *feedRig) serveMLLP(sec feed.MLLPSecurity) string {
	l, _, err := feed.ListenMLLP("127.0.0.1:0", sec)
	require.NoError(r.t, err)
	ctx, stop := context.WithCancel(context.Background())
	r.t.Cleanup(stop)
	go func() { _ = r.feed.ServeMLLP(ctx, l) }()
	return l.Addr().String()
}

// mllp sends frames on conn and reads their ACKs.
type mllp struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialMLLP(t *testing.T, conn net.Conn) *mllp {
	t.Cleanup(func() { _ = conn.Close() })
	return &mllp{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// send sends one message and returns its ACK, or the error reading it.
func (m *mllp) send(msg string) (*hl7.Message, error) {
	_ = m.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := m.conn.Write(hl7.Frame([]byte(msg))); err != nil {
		return nil, err
	}
	raw, err := hl7.ReadFrame(m.r)
	if err != nil {
		return nil, err
	}
	return hl7.Parse(raw)
}

func (m *mllp) accepted(msg string) *hl7.Message {
	m.t.Helper()
	ack, err := m.send(msg)
	require.NoError(m.t, err)
	require.Equal(m.t, hl7.AckAccept, ack.Field("MSA", 1, 0), ack.Field("MSA", 3, 0))
	return ack
}

// siu is an SIU message of event for appointment a at the PAS's time at,
// with the patient's NHS number in PID-3 when nhs is set.
func siu(event, control string, at time.Time, placer string, start time.Time, nhs string) string {
	msg := fmt.Sprintf("MSH|^~\\&|PAS|TRUST|REBOOK|TRUST|%s||SIU^%s|%s|P|2.5\rSCH|%s|F-%s|||||||||^^^%s\r",
		at.In(subject.London()).Format("20060102150405"), event, control, placer, placer, start.In(subject.London()).Format("200601021504"))
	if nhs != "" {
		msg += "PID|1||" + nhs + "^^^NHS^NH\r"
	}
	return msg
}

// pki is a CA and the certificates it signs, written as PEM files.
type pki struct {
	t   *testing.T
	dir string
	ca  *x509.Certificate
	key *ecdsa.PrivateKey
}

func newPKI(t *testing.T, name string) *pki {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	p := &pki{t: t, dir: t.TempDir(), ca: ca, key: key}
	p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	require.NoError(p.t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// issue signs a certificate for cn (a server's for 127.0.0.1, or a
// client's) and returns its certificate and key files.
func (p *pki) issue(cn string, server bool) (certFile, keyFile string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(p.t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Test Trust"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	require.NoError(p.t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(p.t, err)
	return p.write(cn+".pem", "CERTIFICATE", der), p.write(cn+".key", "EC PRIVATE KEY", kder)
}

func (p *pki) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// Issue 22, case 1: who may speak for the PAS. Off loopback, plain MLLP is
// refused unless asked for on purpose. Over mutual TLS, a sender with no
// client certificate, or one from another CA, gets no ACK and closes
// nothing; the trust's engine's certificate is accepted, and what its
// update did is audited with the certificate's subject, the peer, the
// control id and the PAS's time; the card says the PAS feed closed it. A
// sender with the right certificate but another patient's NHS number
// closes nothing either.
func TestHazardForgedFeedMessagesCloseNothing(t *testing.T) {
	_, _, err := feed.ListenMLLP("0.0.0.0:0", feed.MLLPSecurity{})
	require.Error(t, err, "plain MLLP on every interface is refused")
	assert.Contains(t, err.Error(), "REBOOK_MLLP_PLAINTEXT")
	l, how, err := feed.ListenMLLP("0.0.0.0:0", feed.MLLPSecurity{Plaintext: true})
	require.NoError(t, err, "unless asked for on purpose")
	assert.Contains(t, how, "unauthenticated")
	_ = l.Close()

	r := routedForFeed(t, 12)
	trust, other := newPKI(t, "Trust Integration CA"), newPKI(t, "Somebody Else CA")
	srvCert, srvKey := trust.issue("rebook-feed", true)
	addr := r.serveMLLP(feed.MLLPSecurity{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: filepath.Join(trust.dir, "ca.pem")})
	cancels := r.requestsOf(subject.Cancel)
	require.GreaterOrEqual(t, len(cancels), 3)
	a, b, c := cancels[0], cancels[1], cancels[2]
	forged := siu("S15", "forged-1", time.Now(), a.PlacerID, a.Start, "")

	// Plain MLLP to the TLS port: no ACK.
	plain, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = dialMLLP(t, plain).send(forged)
	assert.Error(t, err, "a plain frame gets no ACK")
	// TLS with no client certificate, or one from another CA: refused.
	engineCert, engineKey := trust.issue("pas-engine.trust.nhs.uk", false)
	strangerCert, strangerKey := other.issue("pas-engine.trust.nhs.uk", false)
	dial := func(certFile, keyFile string) (*mllp, error) {
		cfg := &tls.Config{RootCAs: trust.pool(), MinVersion: tls.VersionTLS12}
		if certFile != "" {
			pair, err := tls.LoadX509KeyPair(certFile, keyFile)
			require.NoError(t, err)
			cfg.Certificates = []tls.Certificate{pair}
		}
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			return nil, err
		}
		return dialMLLP(t, conn), nil
	}
	for name, files := range map[string][2]string{"no client certificate": {}, "another CA's certificate": {strangerCert, strangerKey}} {
		m, err := dial(files[0], files[1])
		if err == nil {
			_, err = m.send(forged)
		}
		assert.Error(t, err, "%s: no ACK", name)
	}
	// An old TLS version is refused too.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: trust.pool(), MaxVersion: tls.VersionTLS11})
	if err == nil {
		_ = conn.Close()
	}
	assert.Error(t, err, "TLS 1.1 is refused")
	assert.False(t, r.closed(a), "no forged frame closed the request")

	// The engine, with its certificate.
	engine, err := dial(engineCert, engineKey)
	require.NoError(t, err)
	// Its certificate, but another patient's NHS number for b's placer id:
	// not evidence.
	engine.accepted(siu("S15", "ctl-b", time.Now(), b.PlacerID, b.Start, r.nhs(c)))
	hint := r.audited(b, "feed-hint")
	assert.Contains(t, hint.Detail["reason"], "NHS number is not the request's patient's")
	sentAt := time.Now()
	engine.accepted(siu("S15", "ctl-a", time.Now(), a.PlacerID, a.Start, r.nhs(a)))
	waitFor(t, "the engine's update to close the request", limit(30*time.Second), func() bool { return r.closed(a) })
	t.Logf("closed %s after the engine's S15", time.Since(sentAt).Round(time.Millisecond))
	e := r.audited(a, "feed-applied")
	assert.Equal(t, "mllp", e.Detail["source"])
	assert.Contains(t, e.Detail["client"], "CN=pas-engine.trust.nhs.uk")
	assert.Contains(t, e.Detail["peer"], "127.0.0.1:")
	assert.Equal(t, "ctl-a", e.Detail["control"])
	assert.NotEmpty(t, e.Detail["pas_time"])
	completed := r.audited(a, workflows.StateCompleted)
	assert.Equal(t, "pas-feed", completed.Detail["via"], "the close names its evidence's source")
	assert.Contains(t, r.outcome(a).Note, "The PAS feed shows the appointment cancelled")
	assert.NotContains(t, r.outcome(a).Note, "PKB shows")
	assert.False(t, r.closed(b), "the update with another patient's number closed nothing")
	for _, m := range r.slack.Messages() {
		raw, _ := json.Marshal(m.Blocks)
		if strings.Contains(string(raw), "PAS feed shows") {
			return // the card says so
		}
	}
	t.Error("no card says the PAS feed closed the request")
}

// Issue 22, case 2: a patient has two appointments at the same time, one
// with a request (waiting) and a look-alike in another specialty. The PAS
// cancels the look-alike, or marks it did not attend, under its own
// placer id with the patient's NHS number: the request's PKB check is
// brought forward, and PKB, still showing the request's appointment
// booked, keeps it open.
func TestHazardNHSNumberFallbackNeverClosesAnotherAppointment(t *testing.T) {
	r := routedForFeed(t, 12)
	addr := r.serveMLLP(feed.MLLPSecurity{})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	m := dialMLLP(t, conn)
	cancel, change := r.requestsOf(subject.Cancel)[0], r.requestsOf(subject.Change)[0]
	for i, target := range []struct {
		a     pkbsim.Appointment
		event string
	}{{cancel, "S15"}, {change, "S26"}} {
		twin := fmt.Sprintf("LOOKALIKE-%d", i)
		before := r.sim.Counters()
		m.accepted(siu(target.event, "ctl-"+twin, time.Now(), twin, target.a.Start, r.nhs(target.a)))
		hint := r.audited(target.a, "feed-hint")
		assert.Contains(t, hint.Detail["reason"], "placer id names no waiting request")
		waitFor(t, "the watcher to ask PKB about the patient", limit(time.Minute), func() bool {
			return r.sim.Counters()["GET /fhir/Appointment"] > before["GET /fhir/Appointment"]
		})
	}
	// The watcher told each request what PKB shows, and the request has
	// read it.
	for _, a := range []pkbsim.Appointment{cancel, change} {
		waitFor(t, "the request to have read what PKB shows", limit(time.Minute), func() bool { return r.readSeen(a) })
	}
	assert.False(t, r.closed(cancel), "another appointment's cancellation closed the cancel request")
	assert.False(t, r.closed(change), "another appointment's non-attendance ended the change request")
	_, _, hinted, _ := r.feed.Counts()
	assert.EqualValues(t, 2, hinted)
}

// Issue 22, case 3: updates are ordered by the PAS's own time. An update
// older than PKB's lastUpdated when the request was matched (an engine's
// backlog, an operator's resend), or older than the last update applied,
// changes nothing and is audited as stale, over MLLP and FHIR alike; a
// newer one applies.
func TestHazardStaleFeedUpdatesChangeNothing(t *testing.T) {
	r := routedForFeed(t, 12)
	addr := r.serveMLLP(feed.MLLPSecurity{})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	m := dialMLLP(t, conn)
	changes, cancels := r.requestsOf(subject.Change), r.requestsOf(subject.Cancel)
	require.GreaterOrEqual(t, len(cancels), 2)
	ch, ca, cb := changes[0], cancels[0], cancels[1]

	// A reschedule from before the request was matched.
	m.accepted(siu("S13", "old-move", ch.LastUpdated.Add(-time.Hour), ch.PlacerID, ch.Start.Add(48*time.Hour), ""))
	stale := r.audited(ch, "feed-stale")
	assert.Equal(t, "mllp", stale.Detail["source"])
	assert.Equal(t, "old-move", stale.Detail["control"])

	// A booking confirmed at t2, then a cancellation resent from t1.
	t1, t2 := time.Now().Add(-10*time.Minute), time.Now().Add(-5*time.Minute)
	m.accepted(siu("S14", "confirm", t2, ca.PlacerID, ca.Start, ""))
	r.audited(ca, "feed-applied")
	m.accepted(siu("S15", "resent-cancel", t1, ca.PlacerID, ca.Start, ""))
	r.audited(ca, "feed-stale")

	// FHIR: a cancellation last updated before the match.
	const token = "feed-secret-0123456789"
	srv := httptest.NewTLSServer(r.feed.HTTP(token))
	t.Cleanup(srv.Close)
	post := func(a pkbsim.Appointment, at time.Time) string {
		body, _ := json.Marshal(map[string]any{"resourceType": "Appointment", "id": "pas-" + a.ID, "status": "cancelled",
			"start": a.Start.Format(time.RFC3339), "meta": map[string]string{"lastUpdated": at.UTC().Format(time.RFC3339)},
			"identifier": []map[string]string{{"system": "https://pas.simulated-trust.nhs.uk/Id/placer-appointment-id", "value": a.PlacerID}}})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+feed.FHIRPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var oo struct {
			Issue []struct{ Diagnostics string } `json:"issue"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&oo))
		return oo.Issue[0].Diagnostics
	}
	assert.Contains(t, post(cb, cb.LastUpdated.Add(-time.Minute)), "older than what 1 request(s) know")
	r.audited(cb, "feed-stale")

	applied, staleN, _, _ := r.feed.Counts()
	assert.EqualValues(t, 1, applied)
	assert.EqualValues(t, 3, staleN)
	for _, a := range []pkbsim.Appointment{ch, ca, cb} {
		assert.False(t, r.closed(a), "a stale update closed %s", a.ID)
	}

	// Newer than anything known: applied.
	m.accepted(siu("S15", "new-cancel", time.Now(), ca.PlacerID, ca.Start, ""))
	waitFor(t, "the newer cancellation to close the request", limit(30*time.Second), func() bool { return r.closed(ca) })
	assert.Contains(t, post(cb, time.Now()), "applied to 1")
	waitFor(t, "the newer FHIR cancellation to close the request", limit(30*time.Second), func() bool { return r.closed(cb) })
}

// Issue 22, case 11: an update that arrives before its request has a
// placer id (the PAS acted before Rebook matched the request) is answered
// AA and stored, not dropped, and applied once the request is routed; an
// update whose placer id is another system's is not this request's.
func TestHazardEarlyFeedUpdateIsKeptUntilItsRequestIsRouted(t *testing.T) {
	s := start(t, 6)
	f := app.Feed(s.cfg, s.st, s.tc, quietLog(), nil)
	l, _, err := feed.ListenMLLP("127.0.0.1:0", feed.MLLPSecurity{})
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go func() { _ = f.ServeMLLP(ctx, l) }()
	conn, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	m := dialMLLP(t, conn)
	r := &feedRig{stack: s, t: t, feed: f}
	cancels := r.requestsOf(subject.Cancel)
	require.GreaterOrEqual(t, len(cancels), 2)
	early, foreign := cancels[0], cancels[1]

	// Before any request is read from PKB.
	ack := m.accepted(siu("S15", "early-1", time.Now(), early.PlacerID, early.Start, r.nhs(early)))
	assert.Equal(t, "early-1", ack.Field("MSA", 2, 0))
	other := strings.Replace(siu("S15", "foreign-1", time.Now(), foreign.PlacerID, foreign.Start, ""), "SCH|"+foreign.PlacerID+"|", "SCH|"+foreign.PlacerID+"^PAS2^https://other-pas.example.nhs.uk/Id/placer^URI|", 1)
	m.accepted(other)
	_, _, _, kept := f.Counts()
	assert.EqualValues(t, 2, kept, "both are stored")

	require.NoError(t, s.startSchedules(context.Background()))
	waitFor(t, "the early update to close its request once routed", limit(2*time.Minute), func() bool { return r.closed(early) })
	assert.Contains(t, r.outcome(early).Note, "The PAS feed shows the appointment cancelled")
	r.audited(early, "feed-applied")
	waitFor(t, "all routed", limit(2*time.Minute), func() bool { return len(s.cards()) >= 6 })
	id, _ := workflows.MessageIDFromWorkflowID(r.wid(foreign))
	row, err := s.st.Request(context.Background(), id)
	require.NoError(t, err)
	assert.Nil(t, row.ClosedAt, "an update under another system's placer id is not this request's")
}
