// Package feed takes copies of the trust's PAS appointment updates, as its
// integration engine sends them to PKB: HL7 v2 SIU over MLLP (TLS, with a
// client certificate, off loopback), or a FHIR R4 Appointment posted over
// HTTPS with a bearer token. An update is evidence for a request only when
// it names that request's own appointment (placer id, and its system where
// both give one), agrees with the request's patient when it carries an NHS
// number, and is newer than what the request already knows, by the PAS's
// own clock. Then it is signalled to the request, with no PKB call, and
// the request judges it by the same rules as PKB's answers. Anything
// weaker only brings that patient's PKB check forward; an update for no
// request yet is kept until one is routed.
package feed

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"go.temporal.io/sdk/client"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/metrics"
	"github.com/rebookhq/rebook/internal/nhsnumber"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/store"
)

// Sources of updates, as the audit log names them.
const (
	SourceMLLP = "mllp"
	SourceFHIR = "fhir"
)

// Update is what the PAS says of one appointment, and where and when it
// said it.
type Update struct {
	PlacerID string
	// PlacerSystem is the placer id's identifier system (FHIR) or
	// assigning authority (HL7 SCH-1's universal id); "" when not given.
	PlacerSystem string
	Status       string // FHIR status: booked, cancelled, noshow, fulfilled, entered-in-error
	Start        time.Time
	// NHSNumber, when the update carries it, must be the request's
	// patient's. Held in memory only.
	NHSNumber string

	// Source is SourceMLLP or SourceFHIR; Peer the sender's address;
	// Client the subject of its TLS client certificate, if any.
	Source, Peer, Client string
	// ControlID is MSH-10, or the FHIR resource's id.
	ControlID string
	// At is the PAS's own time of the update: EVN-2 or MSH-7, or FHIR's
	// meta.lastUpdated. Zero when it gave none.
	At time.Time
}

// Outcomes of an update, as Result and the metric name them.
const (
	OutcomeApplied = "applied" // signalled to a request as evidence
	OutcomeStale   = "stale"   // older than what the request knows
	OutcomeHint    = "hint"    // not evidence: the patient's PKB check brought forward
	OutcomeKept    = "kept"    // no request yet: kept until one is routed
)

// Result is what became of an update.
type Result struct {
	Applied, Stale, Hinted int
	Kept                   bool
}

func (r Result) String() string {
	var parts []string
	if r.Applied > 0 {
		parts = append(parts, fmt.Sprintf("applied to %d waiting request(s)", r.Applied))
	}
	if r.Stale > 0 {
		parts = append(parts, fmt.Sprintf("older than what %d request(s) know: changed nothing", r.Stale))
	}
	if r.Hinted > 0 {
		parts = append(parts, fmt.Sprintf("not evidence on its own: PKB will be checked for %d request(s)", r.Hinted))
	}
	if r.Kept {
		parts = append(parts, "stored until a request for this appointment is routed")
	}
	if len(parts) == 0 {
		return "stored"
	}
	return strings.Join(parts, "; ")
}

// Feed applies updates.
type Feed struct {
	Store    *store.Store
	Requests activities.Requests
	Log      *slog.Logger
	// Metrics counts updates by outcome (rebook_feed_updates_total);
	// optional.
	Metrics client.MetricsHandler

	// MLLPConns caps the MLLP connections served at once (DefaultMLLPConns
	// if zero); one more is closed as soon as it is accepted. MLLPByteGap
	// is how long a message may pause between bytes once it has started
	// (DefaultMLLPByteGap if zero), and MLLPFrameTime how long a whole
	// message may take (DefaultMLLPFrameTime if zero): the idle wait
	// before a message is long, a message is not.
	MLLPConns     int
	MLLPByteGap   time.Duration
	MLLPFrameTime time.Duration

	conns                        atomic.Int64
	applied, stale, hinted, kept atomic.Int64
	// acceptErr is the MLLP listener's last accept error while it lasts.
	acceptErr atomic.Pointer[error]
}

// Counts are the updates applied to a request as evidence, the stale
// ones, those that only brought a check forward, and those kept for a
// request not yet routed.
func (f *Feed) Counts() (applied, stale, hinted, kept int64) {
	return f.applied.Load(), f.stale.Load(), f.hinted.Load(), f.kept.Load()
}

func (f *Feed) count(outcome string, n int) {
	if n == 0 {
		return
	}
	switch outcome {
	case OutcomeApplied:
		f.applied.Add(int64(n))
	case OutcomeStale:
		f.stale.Add(int64(n))
	case OutcomeHint:
		f.hinted.Add(int64(n))
	case OutcomeKept:
		f.kept.Add(int64(n))
	}
	if f.Metrics != nil {
		f.Metrics.WithTags(map[string]string{"outcome": outcome}).Counter(metrics.FeedUpdates).Inc(int64(n))
	}
}

// kept is an update stored for a request not yet routed: no NHS number in
// clear, only its digests.
type kept struct {
	Update
	NHSDigests []string
}

// Apply judges an update against the requests waiting on its appointment
// and applies it to those it is evidence for. An error means it was not
// (all) stored or delivered, and the sender should try again; anything
// else, including an update Rebook cannot use as evidence, is stored and
// answered as accepted.
func (f *Feed) Apply(ctx context.Context, u Update) (Result, error) {
	if u.PlacerID == "" {
		return Result{}, errors.New("feed: no appointment id")
	}
	var digests []string
	if nhs, err := nhsnumber.Normalize(u.NHSNumber); err == nil {
		digests = f.Store.PatientDigests(nhs)
	} else if u.NHSNumber != "" {
		digests = []string{"invalid"} // agrees with no request
	}
	k := kept{Update: u, NHSDigests: digests}
	k.NHSNumber = ""
	return f.apply(ctx, k, true)
}

// ApplyPending applies the updates kept for a placer id, now that a
// request with it has been routed, and forgets them.
func (f *Feed) ApplyPending(ctx context.Context, placerID string) error {
	err := f.Store.PendingFor(ctx, placerID, func(raw []byte) error {
		var k kept
		if err := json.Unmarshal(raw, &k); err != nil {
			f.Log.Warn("feed: a kept update cannot be read; dropped", "err", err)
			return nil
		}
		_, err := f.apply(ctx, k, false)
		return err
	})
	if err != nil {
		return err
	}
	return f.Store.DropPending(ctx, placerID)
}

func (f *Feed) apply(ctx context.Context, k kept, keep bool) (Result, error) {
	var res Result
	waiting, err := f.Store.WaitingByPlacer(ctx, k.PlacerID)
	if err != nil {
		return res, err
	}
	var named []store.Request
	appts := map[string]bool{}
	for _, w := range waiting {
		// A placer id is unique within its system only.
		if k.PlacerSystem != "" && w.PlacerSystem != "" && !strings.EqualFold(k.PlacerSystem, w.PlacerSystem) {
			continue
		}
		named = append(named, w)
		appts[w.AppointmentID] = true
	}
	if len(named) == 0 {
		if keep {
			if err := f.Store.KeepPending(ctx, k.PlacerID, k); err != nil {
				return res, err
			}
			res.Kept = true
			f.count(OutcomeKept, 1)
		}
		if len(k.NHSDigests) > 0 {
			// Perhaps the patient's appointment under an id PKB does not
			// show: PKB is asked, never the update believed.
			others, err := f.Store.WaitingOfPatient(ctx, k.NHSDigests)
			if err != nil {
				return res, err
			}
			if err := f.hint(ctx, k, others, "its placer id names no waiting request"); err != nil {
				return res, err
			}
			res.Hinted = len(others)
		}
		return res, nil
	}
	for _, w := range named {
		reason := ""
		switch {
		case len(appts) > 1:
			reason = "its placer id names more than one appointment"
		case len(k.NHSDigests) > 0 && (w.NHSDigest == "" || !slices.Contains(k.NHSDigests, w.NHSDigest)):
			reason = "its NHS number is not the request's patient's"
		case k.At.IsZero():
			reason = "it carries no time of its own (MSH-7 or meta.lastUpdated)"
		}
		if reason != "" {
			if err := f.hint(ctx, k, []store.Request{w}, reason); err != nil {
				return res, err
			}
			res.Hinted++
			continue
		}
		fresh, err := f.Store.AdvanceFeed(ctx, w.MessageID, k.At)
		if err != nil {
			return res, err
		}
		if !fresh {
			if err := f.audit(ctx, k, w, OutcomeStale, "older than the last update applied or than PKB showed when the request was matched"); err != nil {
				return res, err
			}
			f.count(OutcomeStale, 1)
			res.Stale++
			continue
		}
		au := activities.AppointmentUpdate{AppointmentID: w.AppointmentID, Status: k.Status, Start: k.Start, SpecialtyCode: w.SpecialtyCode,
			Via: activities.ViaFeed, PASTime: k.At}
		if err := f.Requests.AppointmentChanged(ctx, w.WorkflowID, au); err != nil {
			return res, err
		}
		if err := f.audit(ctx, k, w, OutcomeApplied, ""); err != nil {
			return res, err
		}
		f.count(OutcomeApplied, 1)
		res.Applied++
	}
	return res, nil
}

// hint brings the PKB check of requests forward, for an update that is
// not evidence for them, and audits why.
func (f *Feed) hint(ctx context.Context, k kept, ws []store.Request, reason string) error {
	if len(ws) == 0 {
		return nil
	}
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.MessageID
	}
	if err := f.Store.CheckSoon(ctx, ids); err != nil {
		return err
	}
	for _, w := range ws {
		if err := f.audit(ctx, k, w, OutcomeHint, reason); err != nil {
			return err
		}
	}
	f.count(OutcomeHint, len(ws))
	return nil
}

// audit records what a feed update did to a request, with its source:
// ids and categories only.
func (f *Feed) audit(ctx context.Context, k kept, w store.Request, outcome, reason string) error {
	d := map[string]string{"source": k.Source, "outcome": outcome, "status": k.Status, "control": k.ControlID}
	if k.Peer != "" {
		d["peer"] = k.Peer
	}
	if k.Client != "" {
		d["client"] = k.Client
	}
	if !k.At.IsZero() {
		d["pas_time"] = k.At.UTC().Format(time.RFC3339)
	}
	if reason != "" {
		d["reason"] = reason
	}
	e := store.AuditEntry{Actor: "pas-feed", Action: "feed-" + outcome, Subject: w.WorkflowID, Detail: d}
	if k.ControlID != "" {
		e.Key = "feed/" + k.Source + "/" + k.ControlID + "/" + w.WorkflowID + "/" + outcome
	}
	return f.Store.Audit(ctx, e)
}

// FHIRPath is where the integration engine posts a FHIR Appointment.
const FHIRPath = "/feed/fhir/Appointment"

// maxBody is the largest Appointment the feed reads.
const maxBody = 1 << 20

// HTTP serves POST /feed/fhir/Appointment, authenticated by a bearer
// secret (REBOOK_FEED_TOKEN). A resource it cannot use gets 400 with a
// FHIR OperationOutcome saying why; a delivery failure 503, to be retried.
func (f *Feed) HTTP(token string) http.Handler {
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			outcome(w, http.StatusUnauthorized, fhir.IssueTypeLogin, "a bearer token is required")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			outcome(w, http.StatusBadRequest, fhir.IssueTypeInvalid, "the body could not be read")
			return
		}
		if len(body) > maxBody {
			// Cut, it would read as broken JSON: say what is wrong.
			outcome(w, http.StatusRequestEntityTooLarge, fhir.IssueTypeTooLong, "the body is larger than 1 MiB; an Appointment is a few KiB")
			return
		}
		u, err := FromFHIR(body)
		if err != nil {
			outcome(w, http.StatusBadRequest, fhir.IssueTypeInvalid, err.Error())
			return
		}
		u.Source, u.Peer = SourceFHIR, r.RemoteAddr
		res, err := f.Apply(r.Context(), u)
		if err != nil {
			f.Log.Error("feed: could not deliver an update", "err", err)
			outcome(w, http.StatusServiceUnavailable, fhir.IssueTypeTransient, "not delivered; send it again")
			return
		}
		outcome(w, http.StatusOK, fhir.IssueTypeInformational, res.String())
	})
}

func outcome(w http.ResponseWriter, status int, code fhir.IssueType, diag string) {
	sev := fhir.IssueSeverityError
	if status == http.StatusOK {
		sev = fhir.IssueSeverityInformation
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(fhir.OperationOutcome{Issue: []fhir.OperationOutcomeIssue{{Severity: sev, Code: code, Diagnostics: &diag}}})
}

// FromFHIR reads a FHIR R4 Appointment.
func FromFHIR(body []byte) (Update, error) {
	var probe struct {
		ResourceType string `json:"resourceType"`
		Status       string `json:"status"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Update{}, errors.New("the body is not JSON")
	}
	if probe.ResourceType != "Appointment" {
		return Update{}, fmt.Errorf("resourceType %q is not Appointment", probe.ResourceType)
	}
	var a fhir.Appointment
	if err := json.Unmarshal(body, &a); err != nil {
		return Update{}, errors.New("the Appointment does not follow FHIR R4")
	}
	u := Update{Status: a.Status.Code()}
	u.PlacerID, u.PlacerSystem = activities.PlacerIdentifier(a.Identifier)
	if a.Id != nil {
		u.ControlID = *a.Id
	}
	if a.Meta != nil && a.Meta.LastUpdated != nil {
		t, err := time.Parse(time.RFC3339, *a.Meta.LastUpdated)
		if err != nil {
			return Update{}, errors.New("meta.lastUpdated is not an instant")
		}
		u.At = t
	}
	for _, p := range a.Participant {
		if p.Actor != nil && p.Actor.Identifier != nil && p.Actor.Identifier.System != nil && *p.Actor.Identifier.System == pkb.NHSNumberSystem && p.Actor.Identifier.Value != nil {
			u.NHSNumber = *p.Actor.Identifier.Value
		}
	}
	if u.PlacerID == "" {
		return Update{}, errors.New("the Appointment carries no identifier (the trust's appointment id)")
	}
	if a.Start != nil {
		t, err := time.Parse(time.RFC3339, *a.Start)
		if err != nil {
			return Update{}, errors.New("start is not an instant")
		}
		u.Start = t
	}
	if strings.TrimSpace(probe.Status) == "" {
		return Update{}, errors.New("the Appointment has no status")
	}
	return u, nil
}
