// Package testrig builds Rebook's activities for a test against the real
// store (a fresh PostgreSQL database), the PKB simulator over HTTP with a
// real grant, and the fake Slack: the paths a real run takes, short of a
// Temporal server.
package testrig

import (
	"bytes"
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// Requests stands in for the request workflows: which were started,
// which were told of a change.
type Requests struct {
	mu       sync.Mutex
	Started  map[string]bool
	Signals  map[string][]activities.AppointmentUpdate
	Seen     map[string][][]activities.AppointmentUpdate
	StartErr error
	// Forward, if set, passes each watcher snapshot on, as the signal to
	// the request's workflow would.
	Forward func(workflowID string, seen []activities.AppointmentUpdate)
	// ForwardChanged, if set, passes each single update on (the PAS
	// feed's, the org-wide watcher's).
	ForwardChanged func(workflowID string, u activities.AppointmentUpdate)
	// Refused are the CheckRefused reasons told to each request;
	// ForwardRefused, if set, passes each on.
	Refused        map[string][]string
	ForwardRefused func(workflowID, reason string)
}

func (f *Requests) CheckRefused(_ context.Context, workflowID, reason string) error {
	f.mu.Lock()
	if f.Refused == nil {
		f.Refused = map[string][]string{}
	}
	f.Refused[workflowID] = append(f.Refused[workflowID], reason)
	forward := f.ForwardRefused
	f.mu.Unlock()
	if forward != nil {
		forward(workflowID, reason)
	}
	return nil
}

func (f *Requests) Start(_ context.Context, ref activities.MessageRef) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	wid := workflows.RequestWorkflowID(ref.ID)
	if f.StartErr != nil {
		return "", false, f.StartErr
	}
	if f.Started[ref.ID] {
		return wid, false, nil
	}
	f.Started[ref.ID] = true
	return wid, true, nil
}

func (f *Requests) AppointmentChanged(_ context.Context, workflowID string, u activities.AppointmentUpdate) error {
	f.mu.Lock()
	f.Signals[workflowID] = append(f.Signals[workflowID], u)
	forward := f.ForwardChanged
	f.mu.Unlock()
	if forward != nil {
		forward(workflowID, u)
	}
	return nil
}

func (f *Requests) AppointmentsSeen(_ context.Context, workflowID string, seen []activities.AppointmentUpdate) error {
	f.mu.Lock()
	f.Seen[workflowID] = append(f.Seen[workflowID], seen)
	forward := f.Forward
	f.mu.Unlock()
	if forward != nil {
		forward(workflowID, seen)
	}
	return nil
}

// Rig is the activities against a real store, the PKB simulator over HTTP
// with a real grant, and the fake Slack, with the request workflows
// replaced by Requests.
type Rig struct {
	Set      activities.Set
	Store    *store.Store
	Sim      *pkbsim.Server
	DS       pkbsim.Dataset
	Slack    *slackfake.Server
	Requests *Requests
	// Clock is the simulator's clock: a test that runs a workflow on the
	// test environment's clock sets it to env.Now so tokens expire on it.
	Clock func() time.Time
}

// New builds the rig for a test; everything stops when it ends.
func New(t testing.TB) *Rig {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, testdb.URL(t), bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	r := &Rig{Clock: time.Now, Store: st, Requests: &Requests{Started: map[string]bool{}, Signals: map[string][]activities.AppointmentUpdate{}, Seen: map[string][][]activities.AppointmentUpdate{}}}
	r.DS = pkbsim.Generate(pkbsim.ScenarioOptions{Name: "small", Seed: 3, Requests: 40, MessagesUntil: time.Now().Add(-time.Minute)})
	const redirect = "http://rebook.test/oauth/callback"
	r.Sim = pkbsim.New(pkbsim.Config{ClientID: "c", ClientSecret: "s", RedirectURL: redirect, AutoApprove: true, Seed: 1, Now: func() time.Time { return r.Clock() }}, r.DS)
	srv := httptest.NewServer(r.Sim)
	t.Cleanup(srv.Close)
	oauth := pkb.OAuth(srv.URL, "c", "s", redirect)
	require.NoError(t, pkbauth.AutoGrant(ctx, oauth, st))
	tokens := &pkbauth.Tokens{Store: st, ClientID: "c"}
	client, err := pkb.New(pkb.Options{BaseURL: srv.URL, FHIRBaseURL: srv.URL + "/fhir", Tokens: tokens})
	require.NoError(t, err)
	r.Slack = slackfake.New(nil)
	t.Cleanup(r.Slack.Stop)
	for _, ch := range []string{"rebook-triage", "rebook-admin", "rebook-cardiology"} {
		r.Slack.AddChannel(ch)
	}
	p := activities.PKB{Client: client, GrantRetryDelay: time.Second, Forbidden: tokens.Forbidden}
	sl, links := slackmsg.New("xoxb-test", r.Slack.GetAPIURL()), activities.Links{PublicURL: "http://rebook.test"}
	notices := &activities.NoticeActivities{Out: notify.Router{Slack: sl}, Store: st, TriageChannel: "rebook-triage", AdminChannel: "rebook-admin", Links: links}
	r.Set = activities.Set{
		Poll:    &activities.PollActivities{PKB: p, Store: st, Requests: r.Requests, States: workflows.ReadModelStates},
		Request: &activities.RequestActivities{PKB: p, Digest: st.PatientDigest},
		Route: &activities.RouteActivities{Store: st, Out: notify.Router{Slack: sl}, TriageChannel: "rebook-triage", Links: links, States: workflows.ReadModelStates,
			Notices: notices, AdminChannel: "rebook-admin"},
		Appointments: &activities.AppointmentActivities{PKB: p, Store: st, Requests: r.Requests, Notices: notices},
		Notices:      notices,
		Grant:        &activities.GrantActivities{Store: st, OAuth: oauth, Notices: notices, AdminChannel: "rebook-admin", Links: links, PKB: client},
	}
	return r
}

// Expect is the scenario's first expectation of a kind.
func (r *Rig) Expect(kind string) pkbsim.Expectation {
	for _, e := range r.DS.Expect {
		if e.Kind == kind {
			return e
		}
	}
	panic("scenario has no " + kind)
}

// Message is the scenario's message with this id.
func (r *Rig) Message(id string) pkbsim.Message {
	for _, m := range r.DS.Messages {
		if m.ID == id {
			return m
		}
	}
	panic("no message " + id)
}
