// Package activities holds every piece of I/O Rebook's workflows do (PKB,
// PostgreSQL, Slack, Temporal), grouped by domain: each struct holds only
// what its activities use. Workflows call them through typed method
// references (`var a *RequestActivities; workflow.ExecuteActivity(ctx,
// a.FetchMessage, …)`), so a name cannot drift from its method. Inputs and
// results carry ids, categories and appointment facts, which the payload
// codec encrypts.
//
// The activities never spell a workflow's id, signal or type: what they
// need of the workflows reaches them through the Requests interface, which
// package wfclient implements.
package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
)

// Set is every activity struct the worker serves.
type Set struct {
	Poll         *PollActivities
	Request      *RequestActivities
	Route        *RouteActivities
	Appointments *AppointmentActivities
	Notices      *NoticeActivities
	Grant        *GrantActivities
	Retention    *RetentionActivities
}

// Registry is what can take activities: a worker, or a test environment.
type Registry interface {
	RegisterActivityWithOptions(a interface{}, options activity.RegisterOptions)
}

// Register registers every activity under its name. The names are in
// recorded histories: a name changed here no longer replays them. Typed
// references resolve to these names (the SDK keeps the method name as an
// alias), so workflows never spell them. Nil structs register too, for
// workflow tests that mock every activity.
func Register(r Registry, s Set) {
	if s.Poll == nil {
		s.Poll = new(PollActivities)
	}
	if s.Request == nil {
		s.Request = new(RequestActivities)
	}
	if s.Route == nil {
		s.Route = new(RouteActivities)
	}
	if s.Appointments == nil {
		s.Appointments = new(AppointmentActivities)
	}
	if s.Notices == nil {
		s.Notices = new(NoticeActivities)
	}
	if s.Grant == nil {
		s.Grant = new(GrantActivities)
	}
	if s.Retention == nil {
		s.Retention = new(RetentionActivities)
	}
	for name, fn := range map[string]interface{}{
		"load-cursor":       s.Poll.LoadCursor,
		"read-messages":     s.Poll.ReadMessages,
		"start-requests":    s.Poll.StartRequests,
		"advance-cursor":    s.Poll.AdvanceCursor,
		"fetch-message":     s.Request.FetchMessage,
		"match-appointment": s.Request.MatchAppointment,
		// The seed's name for the step that waits for the rebooked FHIR
		// update; the activity itself is one check, which the workflow
		// repeats while it waits.
		"await-rebooked-FHIR-update": s.Appointments.CheckAppointment,
		"resolve-national-ID":        s.Request.ResolveNationalID,
		"route-to-team":              s.Route.RouteToTeam,
		"record-state":               s.Route.RecordState,
		"watch-appointments":         s.Appointments.WatchAppointments,
		"update-card":                s.Notices.UpdateCard,
		"notify":                     s.Notices.Notify,
		"load-grant":                 s.Grant.LoadGrant,
		"refresh-grant":              s.Grant.RefreshGrant,
		"mark-grant-needed":          s.Grant.MarkGrantNeeded,
		"ask-for-grant":              s.Grant.AskForGrant,
		"probe-access":               s.Grant.ProbeAccess,
		"redact-closed":              s.Retention.RedactClosed,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// Requests is how activities reach request workflows without knowing
// their ids or message names.
type Requests interface {
	// Start starts the request for a message and returns its workflow id;
	// false if it already existed.
	Start(ctx context.Context, ref MessageRef) (workflowID string, started bool, err error)
	// AppointmentChanged tells a waiting request what PKB shows. A request
	// that has ended is not an error.
	AppointmentChanged(ctx context.Context, workflowID string, u AppointmentUpdate) error
	// AppointmentsSeen tells a waiting request what one search of its
	// patient's appointments shows, its own appointment first.
	AppointmentsSeen(ctx context.Context, workflowID string, seen []AppointmentUpdate) error
	// CheckRefused tells a waiting request that PKB refuses to show its
	// patient's appointments, and why: it goes to triage.
	CheckRefused(ctx context.Context, workflowID, reason string) error
}

// States are the request states the read model records, as the request
// workflow names them. The workflow owns them; the wiring passes them in.
type States struct {
	Received, Routed, Triaged string
}

// Links makes Rebook's own URLs from REBOOK_PUBLIC_URL.
type Links struct{ PublicURL string }

// Request is a request's page, or "" without a public URL.
func (l Links) Request(ref string) string {
	if l.PublicURL == "" {
		return ""
	}
	return l.PublicURL + "/requests/" + ref
}

// Grant is where a clinician begins the PKB grant.
func (l Links) Grant() string { return l.PublicURL + "/oauth/start" }

// GrantLink is the URL that starts the PKB grant with a single-use link.
func (l Links) GrantLink(link string) string { return l.Grant() + "?link=" + link }
