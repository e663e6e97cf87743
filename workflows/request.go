package workflows

import (
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/subject"
)

// AppointmentRequest's names: its type, its messages, and its id, which
// holds the PKB message id and nothing else.
const (
	AppointmentRequestWorkflow = "AppointmentRequest"
	SignalAppointmentChanged   = "appointment-changed"
	SignalAppointmentsSeen     = "appointments-seen"
	// SignalCheckRefused: PKB refuses to show the patient's appointments
	// (the watcher's search of the patient was refused); carries why.
	SignalCheckRefused = "check-refused"
	UpdateStaffAction  = "staff-action"
	QueryState         = "state"

	requestIDPrefix = "appointment-request-"
)

// RequestWorkflowID is the workflow id for a PKB message.
func RequestWorkflowID(messageID string) string { return requestIDPrefix + messageID }

// MessageIDFromWorkflowID is RequestWorkflowID's inverse; false when the
// id is not a request's.
func MessageIDFromWorkflowID(workflowID string) (string, bool) {
	id, ok := strings.CutPrefix(workflowID, requestIDPrefix)
	return id, ok && id != ""
}

// Request states, in the read model, the RequestState search attribute and
// the workflow's result.
const (
	StateReceived             = "received"
	StateRouted               = "routed"
	StateTriaged              = "triaged"
	StateClaimed              = "claimed"
	StateCompleted            = "completed"
	StateTriagedThenCompleted = "triaged-then-completed"
	StateClosedByStaff        = "closed by staff"
	// StateEnded: the appointment ended (not attended, attended, entered
	// in error, or passed) without the change the patient asked for.
	StateEnded = "ended"
)

// ReadModelStates are the states activities record while routing.
var ReadModelStates = activities.States{Received: StateReceived, Routed: StateRouted, Triaged: StateTriaged}

// Staff actions, from Slack's buttons.
const (
	ActionClaim      = "claim"
	ActionDone       = "done"
	ActionCantAction = "cant-action"
	// The answers to "Is this the rebooking?" about StaffAction.Candidate.
	ActionRebookingYes = "rebooking-yes"
	ActionRebookingNo  = "rebooking-no"
)

// AuditRebookingAsked is the audit action of a question to staff; its
// detail names the booking (appointment), its time (when), clinic and why
// Rebook asks, which the web request page shows.
const AuditRebookingAsked = "rebooking-asked"

// StaffAction is a button press: what, and who (a Slack user id).
type StaffAction struct {
	Action string
	User   string
	Note   string
	// Candidate is the booking a rebooking answer is about.
	Candidate string
}

// Outcome is how a request ended.
type Outcome struct {
	State    string
	ClosedBy string
	Note     string
}

// Changes to AppointmentRequest's logic since its first release, for
// workflow.GetVersion: histories recorded before a change replay on the
// old path.
const (
	changeNoPatientTriage = "no-patient-triage"
	// Close only on evidence re-derived at each check, end with the
	// appointment, continue as new with bounded history.
	changeCloseOnEvidence = "close-on-evidence"
	// The watcher checks each patient on an adaptive cadence; the
	// request's own safety check drops from every 2 hours to daily.
	changeWatcherChecks = "watcher-checks"
	// A waiting request continues as new past continueAfterEvents, not
	// legacyContinueAfterEvents.
	changeContinueLater = "continue-later"
	// Intake's three PKB reads run as local activities.
	changeLocalIntake = "local-intake"
	// Intake's local reads give up inside the workflow task after
	// pkbQuickLocal's schedule-to-close and fall back to an ordinary
	// activity, whose retries have no end: a PKB outage during intake
	// pauses the request instead of failing it.
	changeIntakeFallback = "intake-fallback"
	// A waiting request never stops behind Slack or PKB: notices and card
	// edits try a bounded number of times and a channel Slack refuses
	// sends the request to triage; PKB refusing the request's own check
	// (403) or no longer having its appointment (404) sends it to triage;
	// a change request whose appointment passes or is missed stays open.
	changeWaitSafely = "wait-safely"
	// A request the poll started with the message's facts does not read
	// the message again.
	changeFactsFromPoll = "facts-from-poll"
)

// continueAfterEvents is the history length past which a waiting request
// continues as new: one more turn of the wait (a notice, a timer, a check,
// a reminder and an escalation, each with its workflow task) and the
// continue-as-new stay within 300 events, far below Temporal's warning at
// 10,240 and quick to replay. Before continue-later it was 20, which made
// every request continue as new as soon as it began to wait (intake
// writes about 30 events): a second run per request, which cost a third
// of the drain rate on two cores (docs/performance.md).
const (
	continueAfterEvents       = 200
	legacyContinueAfterEvents = 20
)

// SafetyCheckEvery is how often a waiting request asks PKB itself, in case
// the watcher is not running: the watcher checks each patient on its own
// cadence within its budget. Requests started before watcher-checks use
// the old 2 hours.
const (
	SafetyCheckEvery       = 24 * time.Hour
	legacySafetyCheckEvery = 2 * time.Hour
)

// RequestStatus is what the state query returns.
type RequestStatus struct {
	State       string
	Ref         string
	Team        string
	Triage      bool
	Reason      string
	ClaimedBy   string
	ClosedBy    string
	Progress    activities.Progress
	RequestType string
	// Asking is the booking staff are asked about ("Is this the
	// rebooking?"), nil when none.
	Asking *activities.AppointmentUpdate
}

type request struct {
	ref      activities.MessageRef
	wfID     string
	facts    activities.MessageFacts
	match    activities.Match
	natID    activities.NationalID
	route    activities.Route
	reasons  []string
	flags    []string
	state    string
	claimed  string
	progress activities.Progress
	updates  []activities.AppointmentUpdate
	seenSets [][]activities.AppointmentUpdate // the watcher's snapshots, not yet read
	outcome  *Outcome

	cancelledNotRebooked bool
	seq                  int64 // numbers the read-model writes
	seenCh               workflow.ReceiveChannel
	refusals             []string // CheckRefused reasons not yet acted on

	// safely: since wait-safely (set at the start of each run's wait).
	safely bool
	// stillNeeded: a change request's appointment passed or was missed,
	// and the patient still needs a new one.
	stillNeeded bool
	// ask is a new booking that could be this request's rebooking or
	// another's; askWhy says why Rebook cannot tell.
	ask    *activities.AppointmentUpdate
	askWhy string

	// Since close-on-evidence: the latest of each appointment seen, and
	// what the wait has done.
	evidence bool
	seen     []activities.AppointmentUpdate
	waiting  Carried
}

// Carried is what a waiting request takes into its next run when it
// continues as new; nil on the first run.
type Carried struct {
	Facts   activities.MessageFacts
	Match   activities.Match
	Flags   []string
	Route   activities.Route
	State   string
	Claimed string
	Seen    []activities.AppointmentUpdate
	Pending []activities.AppointmentUpdate // signalled, not yet read
	// PendingSeen are the watcher's snapshots not yet read.
	PendingSeen [][]activities.AppointmentUpdate
	Seq         int64
	// SafetyEvery is the spacing of the request's own checks.
	SafetyEvery time.Duration

	WaitStart     time.Time
	NextCheck     time.Time
	Reminded      bool
	Escalated     bool
	ToldCancelled bool // the team was told "cancelled, not yet rebooked"
	// ToldStillNeeded: the team was told a change request's appointment
	// passed and the patient still needs one.
	ToldStillNeeded bool
	// Asked is the booking staff were last asked about; Confirmed the one
	// they said is the rebooking; Rejected those they said are not.
	Asked     string
	Confirmed string
	Rejected  []string
}

// AppointmentRequest takes one patient request from PKB to its end:
// fetch-message, match-appointment, resolve-national-ID, route-to-team,
// then wait for PKB to show the appointment cancelled or moved, reminding
// and escalating on the SLA, and reacting at once to staff's buttons.
// Anything it cannot read or match goes to triage with the reason; bad
// data never fails it.
//
// A long wait continues as new, carrying what it knows (carried).
func AppointmentRequest(ctx workflow.Context, ref activities.MessageRef, carried *Carried) (Outcome, error) {
	r := &request{ref: ref, wfID: workflow.GetInfo(ctx).WorkflowExecution.ID, state: StateReceived}
	// Before the handlers: a button press waiting for this run is
	// validated as soon as its handler is set.
	if carried != nil {
		r.resume(*carried)
	}
	if err := workflow.SetQueryHandler(ctx, QueryState, r.status); err != nil {
		return Outcome{}, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateStaffAction, r.staffAction, workflow.UpdateHandlerOptions{Validator: r.validate}); err != nil {
		return Outcome{}, err
	}
	signals := workflow.GetSignalChannel(ctx, SignalAppointmentChanged)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var u activities.AppointmentUpdate
			signals.Receive(ctx, &u)
			r.updates = append(r.updates, u)
		}
	})
	refused := workflow.GetSignalChannel(ctx, SignalCheckRefused)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var reason string
			refused.Receive(ctx, &reason)
			r.refusals = append(r.refusals, reason)
		}
	})
	r.seenCh = workflow.GetSignalChannel(ctx, SignalAppointmentsSeen)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var seen []activities.AppointmentUpdate
			r.seenCh.Receive(ctx, &seen)
			r.seenSets = append(r.seenSets, seen)
		}
	})

	if carried == nil {
		if err := r.intake(ctx); err != nil {
			return Outcome{}, err
		}
	}
	if err := r.wait(ctx, signals); err != nil {
		return Outcome{}, err
	}
	if err := r.close(ctx); err != nil {
		return Outcome{}, err
	}
	return *r.outcome, nil
}

func (r *request) status() (RequestStatus, error) {
	s := RequestStatus{State: r.state, Ref: r.route.Ref, Team: r.route.Team, Triage: r.route.Triage, Reason: r.route.Reason,
		ClaimedBy: r.claimed, Progress: r.progress, RequestType: r.facts.Type}
	if r.outcome != nil {
		s.ClosedBy = r.outcome.ClosedBy
	}
	if r.ask != nil && r.ask.AppointmentID == r.waiting.Asked {
		s.Asking = r.ask
	}
	return s, nil
}

// business turns a non-retryable activity failure (PKB said 400, 403 or
// 404) into a triage reason; anything else stops the workflow task so it
// is retried.
func business(err error, what string) (string, error) {
	var ae *temporal.ApplicationError
	var actErr *temporal.ActivityError
	if errors.As(err, &actErr) && errors.As(err, &ae) && ae.NonRetryable() {
		if ae.Type() == "PKB:forbidden" {
			// Only this patient's record: a grant-wide refusal pauses all
			// work instead (activities.PKB).
			return what + " failed: PKB refused access to this patient's record (HTTP 403)", nil
		}
		return what + " failed: " + ae.Type(), nil
	}
	return "", err
}

func (r *request) intake(ctx workflow.Context) error {
	// Versioned: before it, the reads were activities of their own.
	// Local, each is one marker in the history instead of three events
	// and two task round trips through Temporal, which halves the
	// server's work for a request (docs/performance.md). They are short
	// reads that are safe to repeat, retried as before (PKB's
	// Retry-After and the wait for a grant included).
	read := func(fn, arg, out any) error { return workflow.ExecuteActivity(withPKB(ctx), fn, arg).Get(ctx, out) }
	if workflow.GetVersion(ctx, changeLocalIntake, workflow.DefaultVersion, 1) >= 1 {
		read = func(fn, arg, out any) error {
			return workflow.ExecuteLocalActivity(withLocalPKB(ctx), fn, arg).Get(ctx, out)
		}
	}
	// Versioned: before it, a local read retried for its start-to-close
	// (45 s) inside the task, and then the request failed.
	if workflow.GetVersion(ctx, changeIntakeFallback, workflow.DefaultVersion, 1) >= 1 {
		read = func(fn, arg, out any) error {
			err := workflow.ExecuteLocalActivity(withQuickLocalPKB(ctx), fn, arg).Get(ctx, out)
			if _, berr := business(err, ""); err == nil || berr == nil {
				return err // done, or PKB's refusal: the caller triages
			}
			return workflow.ExecuteActivity(withPKB(ctx), fn, arg).Get(ctx, out)
		}
	}
	var err error
	if r.ref.Facts != nil && workflow.GetVersion(ctx, changeFactsFromPoll, workflow.DefaultVersion, 1) >= 1 {
		r.facts = *r.ref.Facts
	} else {
		err = read(requestActs.FetchMessage, r.ref, &r.facts)
	}
	if err != nil {
		reason, err := business(err, "reading the message from PKB")
		if err != nil {
			return err
		}
		r.reasons = append(r.reasons, reason)
	}
	// Versioned: before it, a message without a patient was searched for
	// across all patients.
	noPatientTriage := workflow.GetVersion(ctx, changeNoPatientTriage, workflow.DefaultVersion, 1) >= 1
	switch {
	case len(r.reasons) > 0:
	case noPatientTriage && r.facts.PatientID == "":
		r.reasons = append(r.reasons, "the message names no patient")
	case !r.facts.Readable:
		r.reasons = append(r.reasons, "subject not understood: "+r.facts.Reason)
	default:
		err := read(requestActs.MatchAppointment, activities.MatchInput{PatientID: r.facts.PatientID, Start: r.facts.Start, Subject: r.facts.Subject, ReceivedAt: r.facts.ReceivedAt}, &r.match)
		if err != nil {
			reason, err := business(err, "searching PKB's appointments")
			if err != nil {
				return err
			}
			r.reasons = append(r.reasons, reason)
		} else if !r.match.Found {
			r.reasons = append(r.reasons, r.match.Reason)
		}
	}
	if r.facts.PatientID != "" {
		err := read(requestActs.ResolveNationalID, r.facts.PatientID, &r.natID)
		switch {
		case err != nil:
			reason, err := business(err, "reading the patient's record from PKB")
			if err != nil {
				return err
			}
			r.reasons = append(r.reasons, reason)
		case r.natID.Status != activities.NHSValid:
			r.reasons = append(r.reasons, r.natID.Reason)
		case !r.natID.Verified:
			r.flags = append(r.flags, "NHS number not verified in PKB")
		}
	}

	in := activities.RouteInput{
		MessageID: r.ref.ID, WorkflowID: r.wfID, ReceivedAt: r.facts.ReceivedAt, PatientID: r.facts.PatientID,
		RequestType: r.facts.Type, Specialty: r.match.Specialty, SpecialtyCode: r.match.SpecialtyCode, Clinic: r.match.Clinic,
		AppointmentID: r.match.AppointmentID, PlacerID: r.match.PlacerID, PlacerSystem: r.match.PlacerSystem,
		AppointmentUpdatedAt: r.match.UpdatedAt, NHSDigest: r.natID.Digest, Start: r.facts.Start, Triage: len(r.reasons) > 0,
		Reason: strings.Join(r.reasons, "; "), Flags: r.flags,
	}
	if r.match.Found {
		in.Start = r.match.Start
	}
	in.Card = r.card()
	if err := workflow.ExecuteActivity(withSlack(ctx), routeActs.RouteToTeam, in).Get(ctx, &r.route); err != nil {
		return err
	}
	r.state = StateRouted
	if r.route.Triage {
		r.state = StateTriaged
	}
	r.routed(ctx)
	return workflow.UpsertTypedSearchAttributes(ctx,
		RequestTypeKey.ValueSet(orUnknown(r.facts.Type)), SpecialtyKey.ValueSet(orUnknown(r.match.Specialty)),
		TeamKey.ValueSet(r.route.Team), RequestStateKey.ValueSet(r.state))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func (r *request) resume(c Carried) {
	r.facts, r.match, r.flags, r.route, r.state, r.claimed = c.Facts, c.Match, c.Flags, c.Route, c.State, c.Claimed
	r.seen, r.updates, r.seenSets, r.waiting, r.evidence, r.seq = c.Seen, c.Pending, c.PendingSeen, c, true, c.Seq
}

// evidenceOf is what closing the request needs PKB to show.
func (r *request) evidenceOf() activities.Evidence {
	return activities.Evidence{RequestType: r.facts.Type, AppointmentID: r.match.AppointmentID, Start: r.match.Start,
		SpecialtyCode: r.match.SpecialtyCode, ReceivedAt: r.facts.ReceivedAt, Known: r.match.Known, ChangeOutlivesAppointment: r.safely,
		OneBookingOneRequest: r.safely, Confirmed: r.waiting.Confirmed, Rejected: r.waiting.Rejected}
}

// apply takes in what PKB shows: a check's whole answer (snapshot), which
// replaces what was seen, or the watcher's single updates.
func (r *request) apply(ctx workflow.Context, updates []activities.AppointmentUpdate, snapshot bool) {
	if !r.evidence {
		r.applyLatched(updates)
		return
	}
	if snapshot {
		r.seen = append([]activities.AppointmentUpdate(nil), updates...)
	} else {
		for _, u := range updates {
			i := slices.IndexFunc(r.seen, func(s activities.AppointmentUpdate) bool { return s.AppointmentID == u.AppointmentID })
			switch {
			case i < 0:
				r.seen = append(r.seen, u)
			case u.Via == activities.ViaFeed && r.seen[i].Via == activities.ViaFeed && u.PASTime.Before(r.seen[i].PASTime):
				// Two feed updates signalled out of the PAS's order: the
				// older one changes nothing (the feed audits staleness).
			default:
				if u.Competing == 0 {
					// A single update does not know the patient's other
					// requests; the last snapshot did.
					u.Competing = r.seen[i].Competing
				}
				r.seen[i] = u
			}
		}
	}
	if r.outcome != nil || !r.match.Found {
		return
	}
	v := r.evidenceOf().Judge(r.seen, workflow.Now(ctx))
	r.progress = v.Progress
	switch v.Kind {
	case activities.VerdictActioned:
		r.outcome = r.actioned(v.How)
		if r.ownSeen().Via == activities.ViaFeed {
			r.outcome.Note = "The PAS feed shows the appointment " + v.How
		}
	case activities.VerdictEnded:
		r.outcome = &Outcome{State: StateEnded, Note: "Ended without the requested change: the appointment " + v.How + "."}
	}
	r.cancelledNotRebooked = v.CancelledNotRebooked
	r.stillNeeded = v.StillNeeded
	r.ask, r.askWhy = v.Ask, v.AskWhy
}

// ownSeen is the latest seen of the request's own appointment.
func (r *request) ownSeen() activities.AppointmentUpdate {
	for _, u := range r.seen {
		if u.AppointmentID == r.match.AppointmentID {
			return u
		}
	}
	return activities.AppointmentUpdate{}
}

// applyLatched is how requests started before close-on-evidence fold
// updates: kept so their histories replay.
func (r *request) applyLatched(updates []activities.AppointmentUpdate) {
	for _, u := range updates {
		r.progress = r.progress.Apply(u, r.match.AppointmentID, r.match.Start)
	}
	if r.outcome != nil || !r.match.Found {
		return
	}
	if ok, how := r.progress.Actioned(r.facts.Type); ok {
		r.outcome = r.actioned(how)
	}
}

// actioned is the outcome of a request PKB shows done, as how says.
func (r *request) actioned(how string) *Outcome {
	state := StateCompleted
	if r.route.Triage {
		state = StateTriagedThenCompleted
	}
	return &Outcome{State: state, Note: "PKB shows the appointment " + how}
}

func (r *request) check(ctx workflow.Context) error {
	var updates []activities.AppointmentUpdate
	err := workflow.ExecuteActivity(withPKB(ctx), apptActs.CheckAppointment, activities.CheckInput{
		AppointmentID: r.match.AppointmentID, PatientID: r.facts.PatientID, SpecialtyCode: r.match.SpecialtyCode,
		RequestType: r.facts.Type, ReceivedAt: r.facts.ReceivedAt, Known: r.match.Known,
	}).Get(ctx, &updates)
	if err != nil {
		if _, berr := business(err, "checking the appointment"); berr != nil {
			return err
		}
		var ae *temporal.ApplicationError
		if r.safely && errors.As(err, &ae) {
			switch ae.Type() {
			case "PKB:forbidden":
				return r.toTriage(ctx, "PKB refused access to this patient's record (HTTP 403): Rebook cannot check the appointment")
			case "PKB:not-found":
				return r.toTriage(ctx, "PKB no longer has this appointment")
			}
		}
		return nil // the safety net tries again later
	}
	r.apply(ctx, updates, true)
	return nil
}

// toTriage sends a waiting request to triage with the reason, once for
// each reason: PKB cannot show its appointment, or its team's channel
// cannot take Rebook's posts. The triage team is told; the card, where it
// can be edited, shows why.
func (r *request) toTriage(ctx workflow.Context, reason string) error {
	if r.outcome != nil || strings.Contains(r.route.Reason, reason) {
		return nil
	}
	r.route.Triage = true
	if r.route.Reason == "" {
		r.route.Reason = reason
	} else {
		r.route.Reason += "; " + reason
	}
	if r.claimed == "" {
		r.state = StateTriaged
	}
	err := r.record(ctx, activities.StateInput{State: r.state, Actor: "rebook", Action: "moved-to-triage", TriageReason: r.route.Reason,
		Detail: map[string]string{"reason": reason}})
	if err != nil {
		return err
	}
	text := fmt.Sprintf(":warning: %s (%s) needs a person: %s. It stays open until someone acts on it and presses Done on its card.",
		r.route.Ref, r.route.Team, reason)
	r.say(ctx, activities.NotifyInput{Text: text, Key: r.wfID + "#triage/" + shortKey(reason)})
	if !strings.Contains(reason, "Slack") {
		r.sayInThread(ctx, "triage/"+shortKey(reason), r.route.Ref+" is now with triage: "+reason+".")
		r.redrawOrReport(ctx)
	}
	return workflow.UpsertTypedSearchAttributes(ctx, RequestStateKey.ValueSet(r.state))
}

// shortKey names a reason in a notice's once-only key.
func shortKey(reason string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(reason))
	return fmt.Sprintf("%08x", h.Sum32())
}

// say posts a notice, trying a bounded number of times; a notice that
// cannot be posted is logged (ids only) and the request goes on.
func (r *request) say(ctx workflow.Context, in activities.NotifyInput) {
	if err := workflow.ExecuteActivity(withBoundedSlack(ctx), noticeActs.Notify, in).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("a notice could not be posted", "request", r.route.Ref, "err", err)
	}
}

// sayInThread posts in the card's thread, once for its key, within
// bounds: a channel Slack refuses sends the request to triage.
func (r *request) sayInThread(ctx workflow.Context, key, text string) {
	r.sayInThreadWith(ctx, key, text, nil)
}

func (r *request) sayInThreadWith(ctx workflow.Context, key, text string, q *card.Question) {
	in := activities.NotifyInput{Channel: r.route.ChannelID, ThreadTS: r.route.TS, Text: text, Key: r.wfID + "#" + key, Question: q}
	if err := workflow.ExecuteActivity(withBoundedSlack(ctx), noticeActs.Notify, in).Get(ctx, nil); err != nil {
		r.channelFailed(ctx, err)
	}
}

// channelFailed takes a failed post or edit in the team's channel: the
// request goes to triage with the reason, and the admins are told once
// per channel.
func (r *request) channelFailed(ctx workflow.Context, err error) {
	code := "it kept failing"
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == activities.SlackUndeliverable {
		code = ae.Message()
	}
	reason := fmt.Sprintf("Slack would not take Rebook's posts in #%s (%s)", strings.TrimPrefix(r.route.Channel, "#"), code)
	if r.route.Triage && r.route.Team == activities.TriageTeam {
		workflow.GetLogger(ctx).Warn("the triage channel refuses posts", "request", r.route.Ref, "err", err)
		return
	}
	r.say(ctx, activities.NotifyInput{ToAdmins: true, Key: "undeliverable-channel/" + r.route.Channel,
		Text: fmt.Sprintf(":warning: Rebook cannot post to #%s (%s): its waiting requests go to triage until the channel is fixed.", strings.TrimPrefix(r.route.Channel, "#"), code)})
	if terr := r.toTriage(ctx, reason); terr != nil {
		workflow.GetLogger(ctx).Warn("could not record the move to triage", "request", r.route.Ref, "err", terr)
	}
}

// redrawOrReport edits the card within bounds; an edit that fails is
// reported to the admins, and the request goes on.
func (r *request) redrawOrReport(ctx workflow.Context) {
	in := activities.CardInput{ChannelID: r.route.ChannelID, TS: r.route.TS, Card: r.card()}
	if err := workflow.ExecuteActivity(withBoundedSlack(ctx), noticeActs.UpdateCard, in).Get(ctx, nil); err != nil {
		r.say(ctx, activities.NotifyInput{ToAdmins: true, Key: r.wfID + "#card-edit/" + r.state,
			Text: fmt.Sprintf(":warning: Rebook could not update the card of %s in #%s to show it %s; the dashboard shows it as it stands.",
				r.route.Ref, strings.TrimPrefix(r.route.Channel, "#"), r.state)})
	}
}

// tell posts a line in the card's thread, once for its key. Since
// wait-safely it tries a bounded number of times and never fails the
// request.
func (r *request) tell(ctx workflow.Context, key, text string) error {
	if r.safely {
		r.sayInThread(ctx, key, text)
		return nil
	}
	in := activities.NotifyInput{Channel: r.route.ChannelID, ThreadTS: r.route.TS, Text: text, Key: r.wfID + "#" + key}
	return workflow.ExecuteActivity(withSlack(ctx), noticeActs.Notify, in).Get(ctx, nil)
}

func (r *request) wait(ctx workflow.Context, signals workflow.ReceiveChannel) error {
	w := &r.waiting
	// Versioned, in every run.
	r.safely = workflow.GetVersion(ctx, changeWaitSafely, workflow.DefaultVersion, 1) >= 1
	// Versioned, in every run: runs written before it continued at 20.
	continueAt := legacyContinueAfterEvents
	if workflow.GetVersion(ctx, changeContinueLater, workflow.DefaultVersion, 1) >= 1 {
		continueAt = continueAfterEvents
	}
	if w.WaitStart.IsZero() {
		// Versioned: before it, evidence was latched and the wait had no
		// end but the SLA's notices and staff.
		r.evidence = workflow.GetVersion(ctx, changeCloseOnEvidence, workflow.DefaultVersion, 1) >= 1
		if r.match.Found {
			// The PAS may have acted before the request was routed.
			r.apply(ctx, []activities.AppointmentUpdate{{AppointmentID: r.match.AppointmentID, Status: r.match.Status, Start: r.match.Start,
				SpecialtyCode: r.match.SpecialtyCode}}, false)
		}
		w.SafetyEvery = legacySafetyCheckEvery
		if r.evidence && workflow.GetVersion(ctx, changeWatcherChecks, workflow.DefaultVersion, 1) >= 1 {
			w.SafetyEvery = SafetyCheckEvery
		}
		w.WaitStart = workflow.Now(ctx)
		w.NextCheck = w.WaitStart.Add(w.SafetyEvery)
	}
	if w.SafetyEvery == 0 {
		w.SafetyEvery = legacySafetyCheckEvery
	}
	if r.evidence && len(r.updates) > 0 {
		updates := r.updates
		r.updates = nil
		r.apply(ctx, updates, false)
	} else if r.evidence && r.match.Found {
		r.apply(ctx, nil, false)
	}
	sla := time.Duration(r.route.SLAHours) * time.Hour
	remindAt, escalateAt := w.WaitStart.Add(sla*3/4), w.WaitStart.Add(sla)
	var passAt time.Time
	if r.evidence && r.match.Found && !r.match.Start.IsZero() {
		passAt = r.match.Start.Add(activities.PassedGrace + time.Minute)
	}
	for r.outcome == nil {
		if r.evidence {
			if workflow.GetInfo(ctx).GetCurrentHistoryLength() >= continueAt {
				if err := r.continueAsNew(ctx, signals); err != nil || r.outcome != nil {
					return err
				}
			}
			if err := r.tellCancelled(ctx); err != nil {
				return err
			}
		}
		now := workflow.Now(ctx)
		nextCheck := w.NextCheck
		if !passAt.IsZero() && passAt.After(now) && passAt.Before(nextCheck) {
			nextCheck = passAt
		}
		var next time.Time
		for _, t := range []struct {
			at time.Time
			on bool
		}{{nextCheck, r.match.Found}, {remindAt, !w.Reminded}, {escalateAt, !w.Escalated}} {
			if t.on && (next.IsZero() || t.at.Before(next)) {
				next = t.at
			}
		}
		cond := func() bool {
			return r.outcome != nil || len(r.updates) > 0 || len(r.seenSets) > 0 || r.cancelledNotRebooked && !w.ToldCancelled ||
				len(r.refusals) > 0 || r.stillNeeded && !w.ToldStillNeeded || r.ask != nil && r.ask.AppointmentID != w.Asked
		}
		if next.IsZero() {
			if err := workflow.Await(ctx, cond); err != nil {
				return err
			}
		} else if d := next.Sub(now); d > 0 {
			if _, err := workflow.AwaitWithTimeout(ctx, d, cond); err != nil {
				return err
			}
		}
		if len(r.updates) > 0 {
			updates := r.updates
			r.updates = nil
			r.apply(ctx, updates, false)
		}
		for len(r.seenSets) > 0 {
			seen := r.seenSets[0]
			r.seenSets = r.seenSets[1:]
			r.apply(ctx, seen, true)
		}
		if r.outcome != nil {
			break
		}
		for len(r.refusals) > 0 {
			reason := r.refusals[0]
			r.refusals = r.refusals[1:]
			if err := r.toTriage(ctx, reason); err != nil {
				return err
			}
		}
		if err := r.tellStillNeeded(ctx); err != nil {
			return err
		}
		r.askRebooking(ctx)
		now = workflow.Now(ctx)
		if r.match.Found && !now.Before(nextCheck) {
			if err := r.check(ctx); err != nil {
				return err
			}
			w.NextCheck = workflow.Now(ctx).Add(w.SafetyEvery)
		}
		if !w.Reminded && !now.Before(remindAt) && r.outcome == nil {
			w.Reminded = true
			text := fmt.Sprintf("Reminder: %s is due within %d h (SLA %d h).", r.route.Ref, r.route.SLAHours/4, r.route.SLAHours)
			if err := r.tell(ctx, "reminder", text); err != nil {
				return err
			}
		}
		if !w.Escalated && !now.Before(escalateAt) && r.outcome == nil {
			w.Escalated = true
			text := fmt.Sprintf(":rotating_light: Overdue: %s for %s has passed its %d h SLA and is still open.", r.route.Ref, r.route.Team, r.route.SLAHours)
			in := activities.NotifyInput{Text: text, Key: r.wfID + "#overdue"}
			if r.safely {
				r.say(ctx, in)
			} else if err := workflow.ExecuteActivity(withSlack(ctx), noticeActs.Notify, in).Get(ctx, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// tellCancelled tells the team, once, that a change request's appointment
// is cancelled with no new booking yet: the patient still needs one.
func (r *request) tellCancelled(ctx workflow.Context) error {
	if !r.cancelledNotRebooked || r.waiting.ToldCancelled || r.outcome != nil {
		return nil
	}
	r.waiting.ToldCancelled = true
	// The note names no specialty: under REBOOK_SLACK_DETAIL=minimal the
	// card does not either. Replay does not compare an activity's input,
	// so the wording can change without a version.
	source := "PKB shows"
	if r.ownSeen().Via == activities.ViaFeed {
		source = "The PAS feed shows"
	}
	return r.tell(ctx, "cancelled-not-rebooked", fmt.Sprintf("%s the appointment for %s cancelled, not yet rebooked: the request stays open until a new booking in the same specialty appears.",
		source, r.route.Ref))
}

// tellStillNeeded tells the team, once, that a change request's
// appointment passed or was missed: the patient still needs a new one,
// and the request stays open until it is booked.
func (r *request) tellStillNeeded(ctx workflow.Context) error {
	if !r.stillNeeded || r.waiting.ToldStillNeeded || r.outcome != nil {
		return nil
	}
	r.waiting.ToldStillNeeded = true
	return r.tell(ctx, "still-needed", fmt.Sprintf("The appointment for %s has passed or was missed without the change the patient asked for: the patient still needs a new appointment. The request stays open until one is booked.",
		r.route.Ref))
}

// askRebooking asks the team, in the card's thread, whether a new booking
// Rebook cannot attribute on its own is this request's rebooking: Yes
// closes it, No keeps it open and the booking is not asked about again.
func (r *request) askRebooking(ctx workflow.Context) {
	if r.ask == nil || r.ask.AppointmentID == r.waiting.Asked || r.outcome != nil {
		return
	}
	c := *r.ask
	r.waiting.Asked = c.AppointmentID
	when := c.Start.In(subject.London()).Format("Mon 2 Jan 2006 at 15:04")
	where := c.Clinic
	if where == "" {
		where = "a clinic PKB does not name"
	}
	text := fmt.Sprintf("*Is this the rebooking?* The patient of %s has a new appointment on %s, %s. Rebook cannot tell on its own whether it is this request's rebooking: %s. Yes closes %s; No keeps it open.",
		r.route.Ref, when, where, r.askWhy, r.route.Ref)
	err := r.record(ctx, activities.StateInput{State: r.state, Actor: "rebook", Action: AuditRebookingAsked,
		Detail: map[string]string{"appointment": c.AppointmentID, "when": when, "clinic": where, "why": r.askWhy}})
	if err != nil {
		workflow.GetLogger(ctx).Warn("could not record the question", "request", r.route.Ref, "err", err)
	}
	r.sayInThreadWith(ctx, "rebooking?"+c.AppointmentID, text, &card.Question{WorkflowID: r.wfID, Candidate: c.AppointmentID})
}

// continueAsNew starts the wait's next run with what this one knows, once
// staff's button presses in progress have finished and every signal
// received is carried. It returns nil, and the request closes in this run,
// when a press meanwhile closed it.
func (r *request) continueAsNew(ctx workflow.Context, signals workflow.ReceiveChannel) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	if r.outcome != nil {
		return nil
	}
	var u activities.AppointmentUpdate
	for signals.ReceiveAsync(&u) {
		r.updates = append(r.updates, u)
	}
	var seen []activities.AppointmentUpdate
	for r.seenCh.ReceiveAsync(&seen) {
		r.seenSets = append(r.seenSets, seen)
	}
	c := r.waiting
	c.Facts, c.Match, c.Flags, c.Route, c.State, c.Claimed = r.facts, r.match, r.flags, r.route, r.state, r.claimed
	c.Seen, c.Pending, c.PendingSeen, c.Seq = r.seen, r.updates, r.seenSets, r.seq
	return workflow.NewContinueAsNewError(ctx, AppointmentRequestWorkflow, r.ref, &c)
}

// card is the request's Slack card as the workflow knows it: the one
// builder for the first post and every redraw.
func (r *request) card() card.Card {
	c := card.Card{
		Ref: r.route.Ref, WorkflowID: r.wfID, RequestType: r.facts.Type, Specialty: r.match.Specialty, Clinic: r.match.Clinic,
		Start: r.facts.Start, ReceivedAt: r.facts.ReceivedAt, Triage: r.route.Triage, Reason: r.route.Reason, Flags: r.flags,
		State: card.Open, ClaimedBy: r.claimed,
	}
	if r.match.Found {
		c.Start = r.match.Start
	}
	if r.claimed != "" {
		c.State = card.Claimed
	}
	if r.outcome != nil {
		c.State, c.ClosedBy, c.CloseNote = card.Completed, r.outcome.ClosedBy, r.outcome.Note
		switch r.outcome.State {
		case StateClosedByStaff:
			c.State = card.Closed
		case StateEnded:
			c.State = card.Ended
		}
	}
	return c
}

// redraw edits the posted card to show the request as it stands.
func (r *request) redraw(ctx workflow.Context) error {
	in := activities.CardInput{ChannelID: r.route.ChannelID, TS: r.route.TS, Card: r.card()}
	return workflow.ExecuteActivity(withSlack(ctx), noticeActs.UpdateCard, in).Get(ctx, nil)
}

func (r *request) close(ctx workflow.Context) error {
	r.state = r.outcome.State
	if r.outcome.State == StateEnded {
		if err := r.tell(ctx, "ended", r.route.Ref+": "+r.outcome.Note); err != nil {
			return err
		}
	}
	in := activities.StateInput{
		State: r.state, Actor: orRebook(r.outcome.ClosedBy), Action: r.state,
		ClosedBy: r.outcome.ClosedBy, CloseNote: r.outcome.Note, Closed: true,
	}
	if r.outcome.ClosedBy == "" && r.match.Found {
		// What the closing evidence was, and where it came from.
		own := r.ownSeen()
		in.Detail = map[string]string{"via": "pkb", "status": own.Status}
		if own.Via == activities.ViaFeed {
			in.Detail["via"], in.Detail["pas_time"] = "pas-feed", own.PASTime.UTC().Format(time.RFC3339)
		}
	}
	err := r.record(ctx, in)
	if err != nil {
		return err
	}
	if r.safely {
		// A card that cannot be edited does not keep the request open.
		r.redrawOrReport(ctx)
	} else if err := r.redraw(ctx); err != nil {
		return err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, RequestStateKey.ValueSet(r.state)); err != nil {
		return err
	}
	r.closed(ctx)
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// record writes a transition to the read model and the audit log,
// numbered so that a write landing late never replaces a newer one.
func (r *request) record(ctx workflow.Context, in activities.StateInput) error {
	r.seq++
	in.MessageID, in.WorkflowID, in.Seq = r.ref.ID, r.wfID, r.seq
	return workflow.ExecuteActivity(withDB(ctx), routeActs.RecordState, in).Get(ctx, nil)
}

// audit records a staff answer to a question, with the booking it was
// about; a failure to write it is logged, the answer stands.
func (r *request) audit(ctx workflow.Context, a StaffAction, action string) {
	err := r.record(ctx, activities.StateInput{State: r.state, Actor: a.User, Action: action, Detail: map[string]string{"appointment": a.Candidate}})
	if err != nil {
		workflow.GetLogger(ctx).Warn("could not audit a staff answer", "request", r.route.Ref, "err", err)
	}
}

func orRebook(user string) string {
	if user == "" {
		return "rebook"
	}
	return user
}

func (r *request) validate(ctx workflow.Context, a StaffAction) error {
	switch a.Action {
	case ActionClaim, ActionDone, ActionCantAction:
	case ActionRebookingYes, ActionRebookingNo:
		if r.outcome == nil && (a.Candidate == "" || a.Candidate != r.waiting.Asked || r.ask == nil || r.ask.AppointmentID != a.Candidate) {
			return errors.New("this question is no longer open: Rebook has since learned more from PKB")
		}
	default:
		return fmt.Errorf("unknown action %q", a.Action)
	}
	if a.User == "" {
		return errors.New("who pressed the button is not known")
	}
	if r.outcome != nil {
		return errors.New("this request is already closed")
	}
	if r.route.TS == "" {
		return errors.New("this request is still being routed; try again in a moment")
	}
	if a.Action == ActionClaim && r.claimed != "" {
		if r.claimed == a.User {
			return errors.New("you have already claimed this request")
		}
		return fmt.Errorf("already claimed by %s", card.Mention(r.claimed))
	}
	return nil
}

// staffAction applies a button press and says what happened. A refusal
// is an error, which the Slack front door shows to the clicker alone.
func (r *request) staffAction(ctx workflow.Context, a StaffAction) (string, error) {
	switch a.Action {
	case ActionClaim:
		r.claimed, r.state = a.User, StateClaimed
		err := r.record(ctx, activities.StateInput{State: StateClaimed, Actor: a.User, Action: StateClaimed, ClaimedBy: a.User, CheckSoon: true})
		if err != nil {
			return "", err
		}
		// The request may have closed while the claim was written: the
		// search attribute shows the state now, not the claim's.
		if err := workflow.UpsertTypedSearchAttributes(ctx, RequestStateKey.ValueSet(r.state)); err != nil {
			return "", err
		}
		if r.outcome != nil {
			return "", fmt.Errorf("%s closed while you claimed it: %s", r.route.Ref, r.outcome.Note)
		}
		return "You have claimed " + r.route.Ref + ".", r.redraw(ctx)
	case ActionRebookingYes:
		r.waiting.Confirmed, r.waiting.Asked = a.Candidate, ""
		r.apply(ctx, nil, false)
		if r.outcome == nil {
			return "", errors.New("PKB no longer shows that booking as the request needs; " + r.route.Ref + " stays open")
		}
		r.outcome.ClosedBy = a.User
		r.outcome.Note += " (" + card.Mention(a.User) + " confirmed the rebooking)"
		r.audit(ctx, a, ActionRebookingYes)
		return "Thank you: " + r.route.Ref + " is closed as rebooked.", nil
	case ActionRebookingNo:
		r.waiting.Rejected = append(r.waiting.Rejected, a.Candidate)
		r.waiting.Asked = ""
		r.apply(ctx, nil, false)
		r.audit(ctx, a, ActionRebookingNo)
		return "Thank you: " + r.route.Ref + " stays open until its own rebooking appears.", nil
	case ActionCantAction:
		note := "Closed as not actionable by " + card.Mention(a.User)
		if a.Note != "" {
			note += ": " + a.Note
		}
		r.outcome = &Outcome{State: StateClosedByStaff, ClosedBy: a.User, Note: note}
		return "Closed " + r.route.Ref + " as not actionable.", nil
	}
	// Done.
	if r.route.Triage && !r.match.Found {
		r.outcome = &Outcome{State: StateTriagedThenCompleted, ClosedBy: a.User, Note: "Completed by " + card.Mention(a.User) + " from triage"}
		return "Marked " + r.route.Ref + " done.", nil
	}
	if err := r.check(ctx); err != nil {
		return "", err
	}
	if r.outcome != nil {
		if r.outcome.ClosedBy == "" {
			r.outcome.ClosedBy = a.User
		}
		return "PKB shows it done: " + r.route.Ref + " is closed.", nil
	}
	if r.route.Triage {
		r.outcome = &Outcome{State: StateTriagedThenCompleted, ClosedBy: a.User, Note: "Completed by " + card.Mention(a.User) + " from triage"}
		return "Marked " + r.route.Ref + " done.", nil
	}
	return "", errors.New("PKB does not show the appointment changed yet; " + r.route.Ref + " stays open and closes itself when it does")
}
