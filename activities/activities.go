package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/internal/nhsnumber"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
)

// Activities holds what the activities need. One value serves them all.
type Activities struct {
	PKB      *pkb.Client
	Store    *store.Store
	Slack    *slackmsg.Client
	Temporal client.Client
	// TriageChannel is REBOOK_TRIAGE_CHANNEL; PublicURL is REBOOK_PUBLIC_URL.
	TriageChannel string
	AdminChannel  string
	PublicURL     string
	// OAuth is PKB's OAuth configuration, for the TokenKeeper's refreshes.
	OAuth          *pkb.OAuthConfig
	TriageSLAHours int
	// GrantRetryDelay is how long an activity waits before trying PKB again
	// while no grant is in force.
	GrantRetryDelay time.Duration
	Now             func() time.Time
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// pkbError turns a PKB failure into what Temporal should do with it:
// retry (after Retry-After, or a long pause while the grant is missing)
// or stop, with no patient data in the message.
func (a *Activities) pkbError(err error) error {
	if errors.Is(err, pkbauth.ErrGrantNeeded) {
		d := a.GrantRetryDelay
		if d == 0 {
			d = 5 * time.Minute
		}
		return temporal.NewApplicationErrorWithOptions(err.Error(), "GrantNeeded", temporal.ApplicationErrorOptions{NextRetryDelay: d})
	}
	if errors.Is(err, pkbauth.ErrTokenExpired) {
		return temporal.NewApplicationErrorWithOptions(err.Error(), "TokenExpired", temporal.ApplicationErrorOptions{NextRetryDelay: 5 * time.Second})
	}
	var pe *pkb.Error
	if errors.As(err, &pe) {
		return temporal.NewApplicationErrorWithOptions(pe.Error(), "PKB:"+string(pe.Kind), temporal.ApplicationErrorOptions{
			NonRetryable: !pe.Retryable(), NextRetryDelay: pe.RetryAfter,
		})
	}
	return err
}

// Ref is the opaque reference shown in Slack for a message id.
func Ref(messageID string) string {
	h := sha256.Sum256([]byte(messageID))
	return "RB-" + strings.ToUpper(hex.EncodeToString(h[:4]))
}

// LoadCursor returns where the message poll has read up to.
func (a *Activities) LoadCursor(ctx context.Context) (int64, error) {
	return a.Store.Cursor(ctx, MessagesCursor)
}

// ReadMessages reads one page of open appointment requests after the
// cursor, as ids and timestamps.
func (a *Activities) ReadMessages(ctx context.Context, after int64) ([]MessageRef, error) {
	page, err := a.PKB.MessagesAfter(ctx, after, true)
	if err != nil {
		return nil, a.pkbError(err)
	}
	refs := make([]MessageRef, len(page))
	for i, m := range page {
		refs[i] = MessageRef{ID: m.ID, Timestamp: m.Timestamp}
	}
	return refs, nil
}

// StartRequests starts one AppointmentRequest per message. A request that
// already exists is left as it is: starting twice is harmless.
func (a *Activities) StartRequests(ctx context.Context, refs []MessageRef) (int, error) {
	started := 0
	for _, r := range refs {
		_, err := a.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                                       AppointmentRequestID(r.ID),
			TaskQueue:                                TaskQueue,
			WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			WorkflowExecutionErrorWhenAlreadyStarted: true,
		}, AppointmentRequestWorkflow, r)
		var already *serviceerror.WorkflowExecutionAlreadyStarted
		switch {
		case errors.As(err, &already):
		case err != nil:
			return started, fmt.Errorf("start request workflow: %w", err)
		default:
			started++
		}
	}
	return started, nil
}

// AdvanceCursor moves the message cursor forward, never back.
func (a *Activities) AdvanceCursor(ctx context.Context, ms int64) error {
	return a.Store.AdvanceCursor(ctx, MessagesCursor, ms)
}

// FetchMessage reads the message, reads its subject and records the
// request as received. The subject and text go no further.
func (a *Activities) FetchMessage(ctx context.Context, ref MessageRef) (MessageFacts, error) {
	m, err := a.PKB.Message(ctx, ref.ID, ref.Timestamp)
	if err != nil {
		return MessageFacts{}, a.pkbError(err)
	}
	f := MessageFacts{PatientID: m.PatientID, ReceivedAt: time.UnixMilli(m.Timestamp).UTC()}
	req, perr := subject.Parse(m.Subject)
	if perr != nil {
		f.Reason = strings.TrimPrefix(perr.Error(), "subject: ")
	} else {
		f.Readable, f.Type, f.Start, f.Subject = true, string(req.Type), req.Start, req.Subject
	}
	if err := a.Store.SaveRequest(ctx, store.Request{
		MessageID: ref.ID, WorkflowID: AppointmentRequestID(ref.ID), Ref: Ref(ref.ID), State: "received",
		RequestType: f.Type, PatientID: f.PatientID, ReceivedAt: f.ReceivedAt,
	}); err != nil {
		return MessageFacts{}, err
	}
	return f, nil
}

func normalise(s string) string {
	s = strings.ToLower(s)
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == ' ' {
			return r
		}
		return ' '
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func typeDisplay(a fhir.Appointment) string {
	if a.AppointmentType != nil {
		for _, c := range a.AppointmentType.Coding {
			if c.Display != nil && *c.Display != "" {
				return *c.Display
			}
		}
		if a.AppointmentType.Text != nil {
			return *a.AppointmentType.Text
		}
	}
	return "Appointment"
}

func startOf(a fhir.Appointment) time.Time {
	if a.Start == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *a.Start)
	if err != nil {
		return time.Time{}
	}
	return t
}

func describe(a fhir.Appointment) Match {
	m := Match{Found: true, Status: a.Status.Code(), Start: startOf(a)}
	if a.Id != nil {
		m.AppointmentID = *a.Id
	}
	if len(a.Specialty) > 0 && len(a.Specialty[0].Coding) > 0 {
		c := a.Specialty[0].Coding[0]
		if c.Display != nil {
			m.Specialty = *c.Display
		}
		if c.Code != nil {
			m.SpecialtyCode = *c.Code
		}
	}
	for _, p := range a.Participant {
		if p.Actor != nil && p.Actor.Reference != nil && strings.HasPrefix(*p.Actor.Reference, "Location/") && p.Actor.Display != nil {
			m.Clinic = *p.Actor.Display
		}
	}
	return m
}

func (a *Activities) search(ctx context.Context, q pkb.AppointmentQuery) ([]fhir.Appointment, error) {
	page, err := a.PKB.SearchAppointments(ctx, q)
	if err != nil {
		return nil, err
	}
	all := page.Appointments
	for i := 0; page.Next != "" && i < 20; i++ {
		if page, err = a.PKB.NextAppointments(ctx, page.Next); err != nil {
			return nil, err
		}
		all = append(all, page.Appointments...)
	}
	return all, nil
}

// MatchAppointment finds the one appointment whose UK date, time and
// subject agree with the request: among the patient's pending appointments
// first (one PKB call in the common case), then among all of theirs on
// that day.
func (a *Activities) MatchAppointment(ctx context.Context, in MatchInput) (Match, error) {
	want := normalise(in.Subject)
	pick := func(appts []fhir.Appointment) []fhir.Appointment {
		var hits []fhir.Appointment
		for _, ap := range appts {
			if startOf(ap).Equal(in.Start) && normalise(typeDisplay(ap)) == want {
				hits = append(hits, ap)
			}
		}
		return hits
	}
	ids := func(appts []fhir.Appointment) []string {
		var out []string
		for _, ap := range appts {
			if ap.Id != nil {
				out = append(out, *ap.Id)
			}
		}
		return out
	}
	pending, err := a.search(ctx, pkb.AppointmentQuery{PatientID: in.PatientID, Statuses: []string{"pending"}, Count: 100})
	if err != nil {
		return Match{}, a.pkbError(err)
	}
	hits := pick(pending)
	if len(hits) == 0 {
		day := in.Start.In(subject.London())
		from := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, subject.London())
		sameDay, err := a.search(ctx, pkb.AppointmentQuery{PatientID: in.PatientID, From: from, Before: from.AddDate(0, 0, 1), Count: 100})
		if err != nil {
			return Match{}, a.pkbError(err)
		}
		hits = pick(sameDay)
		if len(hits) == 0 {
			return Match{Reason: "no appointment for this patient at that date, time and subject", Candidates: ids(sameDay)}, nil
		}
	}
	if len(hits) > 1 {
		return Match{Reason: fmt.Sprintf("%d appointments match the date, time and subject", len(hits)), Candidates: ids(hits)}, nil
	}
	return describe(hits[0]), nil
}

// ResolveNationalID reads the patient's NHS number from PKB and checks it.
func (a *Activities) ResolveNationalID(ctx context.Context, patientID string) (NationalID, error) {
	p, err := a.PKB.PatientByPublicID(ctx, patientID)
	if pkb.IsKind(err, pkb.KindNotFound) {
		return NationalID{Status: NHSNoPatient, Reason: "PKB has no patient record for the sender"}, nil
	}
	if err != nil {
		return NationalID{}, a.pkbError(err)
	}
	id := pkb.NHSNumberOf(p)
	if id.Number == "" {
		return NationalID{Status: NHSMissing, Reason: "the patient's record has no NHS number"}, nil
	}
	if _, err := nhsnumber.Normalize(id.Number); err != nil {
		return NationalID{Status: NHSInvalid, Reason: "the patient's NHS number fails the check (" + strings.TrimPrefix(err.Error(), "nhs number: ") + ")"}, nil
	}
	return NationalID{Status: NHSValid, Verified: id.Verified}, nil
}

func (a *Activities) card(in RouteInput, r Route) slackmsg.Card {
	return slackmsg.Card{
		Ref: r.Ref, WorkflowID: in.WorkflowID, RequestType: in.RequestType, Specialty: in.Specialty,
		Clinic: in.Clinic, Start: in.Start, ReceivedAt: in.ReceivedAt, DashboardURL: a.dashboardURL(r.Ref),
		Triage: r.Triage, Reason: r.Reason, Flags: in.Flags, State: "open",
	}
}

func (a *Activities) dashboardURL(ref string) string {
	if a.PublicURL == "" {
		return ""
	}
	return a.PublicURL + "/requests/" + ref
}

// RouteToTeam picks the team from the routing rules (or triage), records
// the request, and posts its card to the team's channel exactly once: a
// retry after a lost response finds the earlier post instead of repeating
// it.
func (a *Activities) RouteToTeam(ctx context.Context, in RouteInput) (Route, error) {
	r := Route{Ref: Ref(in.MessageID), Triage: in.Triage, Reason: in.Reason}
	if !in.Triage {
		rules, err := a.Store.Rules(ctx)
		if err != nil {
			return Route{}, err
		}
		if rule, ok := routing.Match(rules, in.Specialty, in.Clinic, in.RequestType); ok {
			r.Team, r.Channel, r.SLAHours = rule.Team, rule.SlackChannel, rule.SLAHours
		} else {
			r.Triage, r.Reason = true, "no routing rule matches and there is no catch-all rule"
		}
	}
	if r.Triage {
		r.Team, r.Channel, r.SLAHours = TriageTeam, a.TriageChannel, a.TriageSLAHours
		if r.SLAHours == 0 {
			r.SLAHours = 24
		}
	}
	state := "routed"
	if r.Triage {
		state = "triaged"
	}
	var start *time.Time
	if !in.Start.IsZero() {
		start = &in.Start
	}
	if err := a.Store.SaveRequest(ctx, store.Request{
		MessageID: in.MessageID, WorkflowID: in.WorkflowID, Ref: r.Ref, State: state, RequestType: in.RequestType,
		Specialty: in.Specialty, SpecialtyCode: in.SpecialtyCode, Clinic: in.Clinic, Team: r.Team,
		AppointmentID: in.AppointmentID, AppointmentStart: start, PatientID: in.PatientID,
		Triage: r.Triage, Flags: strings.Join(in.Flags, "; "), Reason: r.Reason, ReceivedAt: in.ReceivedAt,
	}); err != nil {
		return Route{}, err
	}

	chID, err := a.Slack.ChannelID(ctx, r.Channel)
	if err != nil {
		return Route{}, err
	}
	r.ChannelID = chID
	before, err := a.Store.StartSlackPost(ctx, in.MessageID, chID)
	if err != nil {
		return Route{}, err
	}
	switch {
	case before.TS != "":
		r.ChannelID, r.TS = before.Channel, before.TS
		return r, nil
	case before.StartedAt != nil:
		// An earlier attempt may have posted and lost the answer.
		ts, found, err := a.Slack.FindByRef(ctx, chID, r.Ref, before.StartedAt.Add(-time.Minute))
		if err != nil {
			return Route{}, err
		}
		if found {
			r.TS = ts
		}
	}
	if r.TS == "" {
		if _, r.TS, err = a.Slack.Post(ctx, chID, a.card(in, r), a.now()); err != nil {
			return Route{}, err
		}
	}
	if err := a.Store.SetSlackPost(ctx, in.MessageID, chID, r.TS); err != nil {
		return Route{}, err
	}
	err = a.Store.Audit(ctx, store.AuditEntry{Actor: "rebook", Action: state, Subject: in.WorkflowID, Detail: map[string]string{
		"team": r.Team, "channel": r.Channel, "reason": r.Reason, "appointment": in.AppointmentID,
	}})
	return r, err
}

// CheckAppointment asks PKB, once, how a waiting request's appointment
// stands: the safety net under the watcher, and what a Done click runs.
func (a *Activities) CheckAppointment(ctx context.Context, in CheckInput) ([]AppointmentUpdate, error) {
	ap, err := a.PKB.Appointment(ctx, in.AppointmentID)
	if err != nil {
		return nil, a.pkbError(err)
	}
	u := AppointmentUpdate{AppointmentID: in.AppointmentID, Status: ap.Status.Code(), Start: startOf(ap)}
	out := []AppointmentUpdate{u}
	if in.RequestType == "change" && u.Status == "cancelled" {
		booked, err := a.search(ctx, pkb.AppointmentQuery{PatientID: in.PatientID, Statuses: []string{"booked"}, UpdatedAfter: in.ReceivedAt, Count: 100})
		if err != nil {
			return nil, a.pkbError(err)
		}
		for _, b := range booked {
			d := describe(b)
			if d.SpecialtyCode == in.SpecialtyCode && d.AppointmentID != in.AppointmentID {
				out = append(out, AppointmentUpdate{AppointmentID: d.AppointmentID, Status: d.Status, Start: d.Start, NewBooking: true})
			}
		}
	}
	return out, nil
}

// WatchAppointments finds appointments PKB shows changed since the last
// look and signals the requests waiting on them. One search serves every
// waiting request, so PKB's load does not grow with their number.
func (a *Activities) WatchAppointments(ctx context.Context) (int, error) {
	open, err := a.Store.CountOpen(ctx)
	if err != nil || open == 0 {
		return 0, err
	}
	cursor, err := a.Store.Cursor(ctx, AppointmentsCursor)
	if err != nil {
		return 0, err
	}
	since := time.UnixMilli(cursor)
	if cursor == 0 {
		since = a.now().Add(-24 * time.Hour)
	}
	// A millisecond of overlap: an update in the same millisecond as the
	// last one seen is not missed; signalling twice is harmless.
	changed, err := a.search(ctx, pkb.AppointmentQuery{UpdatedAfter: since.Add(-time.Millisecond), SortByLastUpdated: true, Count: 100})
	if err != nil {
		return 0, a.pkbError(err)
	}
	latest, signalled := since, 0
	for _, ap := range changed {
		d := describe(ap)
		if ap.Meta != nil && ap.Meta.LastUpdated != nil {
			if t, err := time.Parse(time.RFC3339, *ap.Meta.LastUpdated); err == nil && t.After(latest) {
				latest = t
			}
		}
		patient := ""
		for _, p := range ap.Participant {
			if p.Actor != nil && p.Actor.Identifier != nil && p.Actor.Identifier.System != nil && *p.Actor.Identifier.System == pkb.PublicIDSystem && p.Actor.Identifier.Value != nil {
				patient = *p.Actor.Identifier.Value
			}
		}
		created := a.now()
		if ap.Created != nil {
			if t, err := time.Parse(time.RFC3339, *ap.Created); err == nil {
				created = t
			}
		}
		waiting, err := a.Store.WaitingFor(ctx, d.AppointmentID, patient, d.SpecialtyCode, created)
		if err != nil {
			return signalled, err
		}
		for _, w := range waiting {
			u := AppointmentUpdate{AppointmentID: d.AppointmentID, Status: d.Status, Start: d.Start, NewBooking: w.AppointmentID != d.AppointmentID}
			err := a.Temporal.SignalWorkflow(ctx, w.WorkflowID, "", SignalAppointmentChanged, u)
			var nf *serviceerror.NotFound
			if err != nil && !errors.As(err, &nf) {
				return signalled, fmt.Errorf("signal request: %w", err)
			}
			signalled++
		}
	}
	// A PKB clock ahead of ours must not push the cursor past changes yet
	// to come.
	if now := a.now(); latest.After(now) {
		latest = now
	}
	return signalled, a.Store.AdvanceCursor(ctx, AppointmentsCursor, latest.UnixMilli())
}

// RecordState records a transition in the read model and the audit log.
func (a *Activities) RecordState(ctx context.Context, in StateInput) error {
	return a.Store.ChangeState(ctx, store.StateChange{
		MessageID: in.MessageID, State: in.State, ClaimedBy: in.ClaimedBy, ClosedBy: in.ClosedBy, CloseNote: in.CloseNote, Closed: in.Closed,
	}, store.AuditEntry{Actor: in.Actor, Action: in.Action, Subject: in.WorkflowID, Detail: in.Detail})
}

// UpdateCard redraws the request's Slack message.
func (a *Activities) UpdateCard(ctx context.Context, in CardInput) error {
	c := in.Card
	c.DashboardURL = a.dashboardURL(c.Ref)
	return a.Slack.Update(ctx, in.ChannelID, in.TS, c, a.now())
}

// Notify posts a reminder or an escalation; no channel means the triage
// channel.
func (a *Activities) Notify(ctx context.Context, in NotifyInput) error {
	if in.Channel == "" {
		in.Channel = a.TriageChannel
	}
	ch, err := a.Slack.ChannelID(ctx, in.Channel)
	if err != nil {
		return err
	}
	_, err = a.Slack.Say(ctx, ch, in.ThreadTS, in.Text)
	return err
}
