package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/rebookhq/rebook/internal/metrics"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/store"
)

// AppointmentsCursor is the stored cursor of the appointment watcher.
const AppointmentsCursor = "pkb-appointments-last-updated"

// AppointmentActivities ask PKB how waiting requests' appointments stand.
type AppointmentActivities struct {
	PKB      PKB
	Store    *store.Store
	Requests Requests
	// CallsPerHour is REBOOK_PKB_CALLS_PER_HOUR, the watcher's PKB budget
	// (3,000 if zero); FirstCheckAfter is REBOOK_FIRST_CHECK_AFTER (5 min).
	CallsPerHour    int
	FirstCheckAfter time.Duration
	// Now is the clock (time.Now if nil); benchmarks run it faster.
	Now func() time.Time
	// Notices tells the admins of requests the watcher is not reaching;
	// nil tells nobody.
	Notices *NoticeActivities
}

// CheckAppointment asks PKB, once, how a waiting request's appointment
// and the patient's other appointments in its specialty stand: the safety
// net under the watcher, and what a Done click runs. The matched
// appointment comes first; the workflow judges the rest as evidence. One
// search for the patient answers it; a read only when the search does not
// hold the appointment.
func (a *AppointmentActivities) CheckAppointment(ctx context.Context, in CheckInput) ([]AppointmentUpdate, error) {
	var found []fhir.Appointment
	if in.PatientID != "" {
		var err error
		if found, err = a.PKB.search(ctx, pkb.AppointmentQuery{PatientID: in.PatientID, Count: 100}); err != nil {
			return nil, a.PKB.err(ctx, err)
		}
	}
	ev := Evidence{AppointmentID: in.AppointmentID, SpecialtyCode: in.SpecialtyCode, ReceivedAt: in.ReceivedAt, Known: in.Known}
	var own *AppointmentUpdate
	var others []AppointmentUpdate
	for _, ap := range found {
		u := updateOf(ap)
		switch {
		case u.AppointmentID == in.AppointmentID:
			own = &u
		case u.SpecialtyCode == in.SpecialtyCode:
			u.NewBooking = in.RequestType == "change" && ev.IsNewBooking(u)
			others = append(others, u)
		}
	}
	if own == nil {
		ap, err := a.PKB.Client.Appointment(ctx, in.AppointmentID)
		if err != nil {
			return nil, a.PKB.err(ctx, err)
		}
		u := updateOf(ap)
		own = &u
	}
	if in.PatientID != "" && a.Store != nil {
		waiting, err := a.Store.WaitingOf(ctx, in.PatientID)
		if err != nil {
			return nil, err
		}
		own.Competing = competing(waiting, in.AppointmentID, in.SpecialtyCode)
	}
	return append([]AppointmentUpdate{*own}, others...), nil
}

// updateOf is what an update says of a FHIR appointment.
func updateOf(ap fhir.Appointment) AppointmentUpdate {
	d := describe(ap)
	u := AppointmentUpdate{AppointmentID: d.AppointmentID, Status: d.Status, Start: d.Start, SpecialtyCode: d.SpecialtyCode,
		Updated: d.UpdatedAt, Clinic: d.Clinic}
	if ap.Created != nil {
		if t, err := time.Parse(time.RFC3339, *ap.Created); err == nil {
			u.Created = t
		}
	}
	return u
}

// The watcher's bookkeeping in the store.
const (
	// watchBudgetAt is the budget's clock (epoch ms): calls may be made
	// while it is behind now, one per 1/CallsPerHour hour.
	watchBudgetAt = "pkb-watch-budget-at"
	// OrgWideProbeCursor is when the org-wide search was last probed
	// (epoch ms), negative when PKB refused it.
	OrgWideProbeCursor = "pkb-watch-org-wide"
)

// Watch modes, as WatchResult reports them.
const (
	WatchPatientScoped = "patient-scoped"
	WatchOrgWide       = "org-wide"
)

// orgWideProbeEvery is how often the watcher asks again whether PKB
// answers a search that names no patient.
const orgWideProbeEvery = 24 * time.Hour

// maxCheckEvery is the widest spacing of a waiting request's checks.
const maxCheckEvery = 4 * time.Hour

// WatchResult is what one watcher run did.
type WatchResult struct {
	Mode      string
	Patients  int // patients asked about
	Failed    int // patients whose search failed (backed off; not charged)
	Signalled int // requests told what PKB shows
	Budget    int // calls the budget allowed this run
}

func (a *AppointmentActivities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *AppointmentActivities) firstCheck() time.Duration { return firstCheckOr(a.FirstCheckAfter) }

// firstCheckOr is REBOOK_FIRST_CHECK_AFTER as configured, 5 min if zero:
// when a routed or just claimed request is first checked.
func firstCheckOr(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return 5 * time.Minute
}

// WatchAppointments tells waiting requests what PKB shows of their
// appointments. PKB documents an Appointment search for one patient at a
// time, so it asks about the patients whose requests are due a check,
// longest overdue first, one search per patient for all of that patient's
// requests, never spending more than CallsPerHour. Each request's checks
// start FirstCheckAfter routing (or a claim) and back off towards 4 hours,
// closer again as its SLA runs out. Only when a daily probe shows PKB
// answers a search across all patients does it use that instead.
func (a *AppointmentActivities) WatchAppointments(ctx context.Context) (WatchResult, error) {
	res := WatchResult{Mode: WatchPatientScoped}
	open, err := a.Store.CountOpen(ctx)
	if err != nil || open == 0 {
		return res, err
	}
	now := a.now()
	orgWide, err := a.orgWideAllowed(ctx, now)
	if err != nil {
		return res, err
	}
	if orgWide {
		res.Mode = WatchOrgWide
		res.Signalled, err = a.watchOrgWide(ctx)
		return res, err
	}
	if err := a.tellOverdue(ctx, now); err != nil {
		return res, err
	}
	budget, budgetAt, err := a.spend(ctx, now)
	if err != nil || budget == 0 {
		return res, err
	}
	res.Budget = budget
	err = a.checkDue(ctx, now, budget, &res)
	// Calls not made, or that failed, stay in the budget for the next run.
	if rerr := a.refund(ctx, budgetAt, budget-res.Patients); err == nil {
		err = rerr
	}
	return res, err
}

// maxTransientInARow is how many patients in a row may fail for a reason
// of PKB's own (5xx, a timeout, no answer) before a run stops: PKB is
// down, not the patients.
const maxTransientInARow = 3

// checkDue checks the patients due, each on their own: one whose search
// PKB refuses or garbles backs off and the run goes on, and a refusal of
// the patient's record (403) sends their requests to triage. Only a
// grant-wide refusal, PKB asking to slow down, PKB failing for several
// patients in a row, or the store stops the run.
func (a *AppointmentActivities) checkDue(ctx context.Context, now time.Time, budget int, res *WatchResult) error {
	patients, err := a.Store.DuePatients(ctx, now, budget)
	if err != nil {
		return err
	}
	inARow := 0
	for _, p := range patients {
		n, err := a.checkPatient(ctx, p, now)
		var pe *pkb.Error
		switch {
		case err == nil:
			res.Patients++
			res.Signalled += n
			inARow = 0
			continue
		case !errors.As(err, &pe):
			return err // the store, or a signal: retried
		}
		res.Failed++
		a.countFailure(ctx, pe)
		if berr := a.backOff(ctx, p, now); berr != nil {
			return berr
		}
		switch {
		case pe.Kind == pkb.KindForbidden:
			// Asked again of a call that names no patient: refused too,
			// the grant itself is gone and all work pauses.
			if werr := a.PKB.err(ctx, err); !isForbiddenPatient(werr) {
				return werr
			}
			if rerr := a.refuse(ctx, p, "PKB refused access to this patient's record (HTTP 403): Rebook cannot check the appointment"); rerr != nil {
				return rerr
			}
		case pe.Kind == pkb.KindRateLimited || pe.Kind == pkb.KindUnauthorized:
			return a.PKB.err(ctx, err)
		case pe.Retryable():
			if inARow++; inARow >= maxTransientInARow {
				return a.PKB.err(ctx, err)
			}
		}
	}
	return nil
}

// isForbiddenPatient says whether PKB.err judged a 403 this patient's
// alone (a non-retryable refusal), not the grant's.
func isForbiddenPatient(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == "PKB:"+string(pkb.KindForbidden) && ae.NonRetryable()
}

// backOff puts a failed patient's next check further off, as a check
// that found nothing would, so the others come first in the next run.
func (a *AppointmentActivities) backOff(ctx context.Context, patientID string, now time.Time) error {
	waiting, err := a.Store.WaitingOf(ctx, patientID)
	if err != nil {
		return err
	}
	for _, w := range waiting {
		every := a.nextEvery(w, now)
		if err := a.Store.ScheduleCheck(ctx, w.MessageID, now.Add(every), every, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// refuse tells a patient's waiting requests that PKB will not show their
// appointments: each goes to triage with the reason, once.
func (a *AppointmentActivities) refuse(ctx context.Context, patientID, reason string) error {
	waiting, err := a.Store.WaitingOf(ctx, patientID)
	if err != nil {
		return err
	}
	for _, w := range waiting {
		if err := a.Requests.CheckRefused(ctx, w.WorkflowID, reason); err != nil {
			return err
		}
	}
	return nil
}

func (a *AppointmentActivities) countFailure(ctx context.Context, pe *pkb.Error) {
	if activity.IsActivity(ctx) {
		activity.GetMetricsHandler(ctx).WithTags(map[string]string{"kind": string(pe.Kind)}).Counter(metrics.WatchPatientFailures).Inc(1)
	}
}

// OverdueNoticeKey is the once-only key of the admins' notice that a
// request is not being checked.
func OverdueNoticeKey(workflowID string) string { return "check-overdue/" + workflowID }

// overdueAfter is how far past its due check a waiting request may go
// before the admins are told.
const overdueAfter = 24 * time.Hour

// tellOverdue tells the admins, once a request, of waiting requests not
// checked for more than a day past their due check: the watcher is not
// reaching them.
func (a *AppointmentActivities) tellOverdue(ctx context.Context, now time.Time) error {
	if a.Notices == nil {
		return nil
	}
	late, err := a.Store.OverdueChecks(ctx, now.Add(-overdueAfter), 20)
	if err != nil {
		return err
	}
	for _, r := range late {
		text := fmt.Sprintf(":warning: %s has not been checked in PKB for more than a day past its due check: Rebook cannot see whether its appointment has changed. Check PKB by hand, and the watcher's runs in Temporal.", r.Ref)
		if err := a.Notices.Notify(ctx, NotifyInput{Text: text, ToAdmins: true, Key: OverdueNoticeKey(r.WorkflowID)}); err != nil {
			return err
		}
		if activity.IsActivity(ctx) {
			activity.GetMetricsHandler(ctx).Counter(metrics.ChecksOverdue).Inc(1)
		}
	}
	return nil
}

// The budget: calls accrue at a steady rate and at most watchCarry's
// worth is kept for a later run, so calls are spread evenly and, in any
// hour, rate·1h + the carry never exceeds CallsPerHour.
const watchCarry = 5 * time.Minute

// perCall is the budget's spacing of calls.
func (a *AppointmentActivities) perCall() time.Duration {
	budget := a.CallsPerHour
	if budget <= 0 {
		budget = 3000
	}
	// rate·(1h + carry) = budget.
	return time.Duration(float64(time.Hour+watchCarry) / float64(budget))
}

// spend takes what the budget allows now: the number of calls, and the
// budget's clock as it stored it, for refund.
func (a *AppointmentActivities) spend(ctx context.Context, now time.Time) (int, int64, error) {
	per := a.perCall()
	at, err := a.Store.Cursor(ctx, watchBudgetAt)
	if err != nil {
		return 0, 0, err
	}
	clock := time.UnixMilli(at)
	if floor := now.Add(-watchCarry); clock.Before(floor) {
		clock = floor
	}
	n := int(now.Sub(clock) / per)
	if n <= 0 {
		return 0, 0, nil
	}
	at = clock.Add(time.Duration(n) * per).UnixMilli()
	return n, at, a.Store.SetCursor(ctx, watchBudgetAt, at)
}

// refund gives n unmade calls back to the budget whose clock spend stored
// as at.
func (a *AppointmentActivities) refund(ctx context.Context, at int64, n int) error {
	if n <= 0 {
		return nil
	}
	return a.Store.SetCursor(ctx, watchBudgetAt, at-(time.Duration(n)*a.perCall()).Milliseconds())
}

// orgWideAllowed says whether PKB answers a search naming no patient,
// probing again once a day. A probe counts as allowed only when it proves
// itself: the answer holds the appointment of a waiting request that
// Rebook knows was updated in the window it asks for. An empty or
// incomplete answer, or a refusal, keeps the watcher patient by patient;
// a switch either way is told to the admins.
func (a *AppointmentActivities) orgWideAllowed(ctx context.Context, now time.Time) (bool, error) {
	last, err := a.Store.Cursor(ctx, OrgWideProbeCursor)
	if err != nil {
		return false, err
	}
	probed := time.UnixMilli(max(last, -last))
	if last != 0 && now.Sub(probed) < orgWideProbeEvery {
		return last > 0, nil
	}
	allowed, why, err := a.probeOrgWide(ctx)
	if err != nil {
		return false, err
	}
	if allowed != (last > 0) && (allowed || last > 0) {
		a.tellMode(ctx, allowed, why)
	}
	at := now.UnixMilli()
	if !allowed {
		at = -at
	}
	return allowed, a.Store.SetCursor(ctx, OrgWideProbeCursor, at)
}

// probeOrgWide asks PKB for the appointments changed since a known
// appointment was, naming no patient, and says whether the answer held
// it, and if not why.
func (a *AppointmentActivities) probeOrgWide(ctx context.Context) (bool, string, error) {
	known, err := a.Store.KnownAppointment(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return false, "no waiting request's appointment to prove the answer with", nil
	}
	if err != nil {
		return false, "", err
	}
	page, err := a.PKB.Client.SearchAppointments(ctx, pkb.AppointmentQuery{UpdatedAfter: known.UpdatedAt.Add(-time.Millisecond), SortByLastUpdated: true, Count: 100})
	var pe *pkb.Error
	switch {
	case err == nil:
	case errors.As(err, &pe) && (pe.Kind == pkb.KindBadRequest || pe.Kind == pkb.KindForbidden || pe.Kind == pkb.KindNotFound || pe.Kind == pkb.KindMalformed):
		return false, fmt.Sprintf("PKB refuses an appointment search that names no patient (%s)", pe.Kind), nil
	default:
		return false, "", a.PKB.err(ctx, err)
	}
	for _, ap := range page.Appointments {
		if ap.Id != nil && *ap.Id == known.AppointmentID {
			return true, "", nil
		}
	}
	return false, fmt.Sprintf("PKB answered an appointment search that names no patient with %d appointments, without one Rebook knows was updated in that window", len(page.Appointments)), nil
}

// tellMode tells the admins the watcher changed how it asks PKB.
func (a *AppointmentActivities) tellMode(ctx context.Context, orgWide bool, why string) {
	text := ":information_source: The appointment watcher now asks PKB about all patients at once (PKB proved it answers such a search)."
	if !orgWide {
		text = ":warning: The appointment watcher now asks PKB patient by patient: " + why + "."
	}
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Info("appointment watcher mode changed", "org_wide", orgWide)
	}
	if a.Notices != nil {
		key := fmt.Sprintf("watch-mode/%t/%d", orgWide, a.now().UnixMilli())
		if err := a.Notices.Notify(ctx, NotifyInput{ToAdmins: true, Text: text, Key: key}); err != nil && activity.IsActivity(ctx) {
			activity.GetLogger(ctx).Warn("could not tell the admins of the watcher's mode", "err", err)
		}
	}
}

// checkPatient makes one search for a patient and tells each of the
// patient's waiting requests what it shows of its appointment and the
// patient's others in the same specialty; then schedules their next checks.
func (a *AppointmentActivities) checkPatient(ctx context.Context, patientID string, now time.Time) (int, error) {
	found, err := a.PKB.search(ctx, pkb.AppointmentQuery{PatientID: patientID, Count: 100})
	if err != nil {
		return 0, err // judged by checkDue, patient by patient
	}
	updates := make([]AppointmentUpdate, 0, len(found))
	for _, ap := range found {
		updates = append(updates, updateOf(ap))
	}
	waiting, err := a.Store.WaitingOf(ctx, patientID)
	if err != nil {
		return 0, err
	}
	signalled := 0
	for _, w := range waiting {
		var seen []AppointmentUpdate
		for _, u := range updates {
			if u.AppointmentID == w.AppointmentID {
				u.Competing = competing(waiting, w.AppointmentID, w.SpecialtyCode)
				seen = append([]AppointmentUpdate{u}, seen...)
			} else if u.SpecialtyCode == w.SpecialtyCode {
				seen = append(seen, u)
			}
		}
		// Told only what it has not been told: each signal is history,
		// and a request waiting for weeks is checked every few hours.
		if len(seen) > 0 && seen[0].AppointmentID == w.AppointmentID {
			if d := digest(seen); d != w.SeenDigest {
				if err := a.Requests.AppointmentsSeen(ctx, w.WorkflowID, seen); err != nil {
					return signalled, err
				}
				signalled++
				if err := a.Store.SetSeenDigest(ctx, w.MessageID, d); err != nil {
					return signalled, err
				}
			}
		}
		every := a.nextEvery(w, now)
		if err := a.Store.ScheduleCheck(ctx, w.MessageID, now.Add(every), every, time.Time{}); err != nil {
			return signalled, err
		}
	}
	return signalled, nil
}

// competing counts a patient's other waiting requests (not about
// appointmentID) in the same specialty: a new booking could be theirs.
func competing(waiting []store.Waiting, appointmentID, specialtyCode string) int {
	n := 0
	for _, w := range waiting {
		if w.AppointmentID != appointmentID && w.SpecialtyCode == specialtyCode {
			n++
		}
	}
	return n
}

// digest identifies a snapshot: the request's appointment, then the
// others in PKB's order, which a search need not keep, so sorted.
func digest(seen []AppointmentUpdate) string {
	rest := slices.Clone(seen[1:])
	slices.SortFunc(rest, func(a, b AppointmentUpdate) int { return strings.Compare(a.AppointmentID, b.AppointmentID) })
	all := append([]AppointmentUpdate{seen[0]}, rest...)
	for i := range all {
		// An edit PKB makes that changes nothing the request judges (a
		// comment) is not news.
		all[i].Updated = time.Time{}
	}
	b, _ := json.Marshal(all)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// nextEvery doubles a request's spacing of checks up to 4 hours, and
// narrows it as the SLA runs out: half the time left, never below the
// first check's delay.
func (a *AppointmentActivities) nextEvery(w store.Waiting, now time.Time) time.Duration {
	first := a.firstCheck()
	every := min(max(2*w.CheckEvery, first), maxCheckEvery)
	if w.DueAt != nil {
		if left := w.DueAt.Sub(now); left > 0 && left/2 < every {
			every = max(left/2, first)
		}
	}
	return every
}

// watchOrgWide finds appointments PKB shows changed since the last look,
// with one search across all patients, and tells the requests waiting on
// them. Used only where PKB answers such a search.
func (a *AppointmentActivities) watchOrgWide(ctx context.Context) (int, error) {
	cursor, err := a.Store.Cursor(ctx, AppointmentsCursor)
	if err != nil {
		return 0, err
	}
	since := time.UnixMilli(cursor)
	if cursor == 0 {
		since = time.Now().Add(-24 * time.Hour)
	}
	// A millisecond of overlap: an update in the same millisecond as the
	// last one seen is not missed; signalling twice is harmless.
	changed, err := a.PKB.search(ctx, pkb.AppointmentQuery{UpdatedAfter: since.Add(-time.Millisecond), SortByLastUpdated: true, Count: 100})
	if err != nil {
		return 0, a.PKB.err(ctx, err)
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
		u := updateOf(ap)
		// Candidates only: each request judges the update against the
		// appointments it recorded when it was matched.
		bookedBy := u.Created
		if bookedBy.IsZero() {
			bookedBy = time.Now()
		}
		waiting, err := a.Store.WaitingFor(ctx, d.AppointmentID, patient, d.SpecialtyCode, bookedBy)
		if err != nil {
			return signalled, err
		}
		for _, w := range waiting {
			u := u
			if w.AppointmentID != d.AppointmentID {
				ev := Evidence{AppointmentID: w.AppointmentID, SpecialtyCode: w.SpecialtyCode, ReceivedAt: w.ReceivedAt}
				u.NewBooking = ev.IsNewBooking(u)
			}
			if err := a.Requests.AppointmentChanged(ctx, w.WorkflowID, u); err != nil {
				return signalled, err
			}
			signalled++
		}
	}
	// A PKB clock ahead of ours must not push the cursor past changes yet
	// to come.
	if now := time.Now(); latest.After(now) {
		latest = now
	}
	return signalled, a.Store.AdvanceCursor(ctx, AppointmentsCursor, latest.UnixMilli())
}
