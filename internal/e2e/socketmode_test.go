package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/socketfake"
	"github.com/rebookhq/rebook/internal/interactions"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/wfclient"
	"github.com/rebookhq/rebook/workflows"
)

// Socket Mode, the way in for trusts that cannot expose a URL, end to end
// against a local server that speaks its protocol: the front door opens a
// connection, is greeted, receives a button press in an interactive
// envelope and acks it, and the press reaches the workflow. Slack asks it
// to reconnect and it does; a press whose connection drops is sent again
// after the reconnect, and one is sent again to a restarted front door:
// each press reaches the workflow exactly once.
func TestSocketModePressesReachTheWorkflowOnce(t *testing.T) {
	const n = 8
	s := start(t, n)
	ctx := context.Background()
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "all routed", limit(2*time.Minute), func() bool { return len(s.cards()) >= n })

	// A triaged request: staff's Done closes it without waiting for PKB.
	var wid string
	for _, m := range s.slack.Roots(triage) {
		if wid = m.Button(slackmsg.ActionClaim); wid != "" {
			break
		}
	}
	require.NotEmpty(t, wid, "a triaged request's Claim button")

	fake := socketfake.New("xapp-e2e")
	t.Cleanup(fake.Close)
	frontDoor := func() context.CancelFunc {
		h := &interactions.Handler{Requests: wfclient.Client{Temporal: s.tc}, Slack: app.Slack(s.cfg, nil), Log: quietLog(),
			SocketOptions: []socketmode.Option{socketmode.OptionPingInterval(5 * time.Second)}}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := h.RunSocketMode(rctx, s.cfg.SlackBotToken, "xapp-e2e", fake.APIURL()); rctx.Err() == nil {
				t.Logf("socket mode stopped: %v", err)
			}
		}()
		return func() { cancel(); <-done; h.Wait() }
	}
	connected := func(k int) {
		t.Helper()
		require.True(t, fake.Wait(20*time.Second, func() bool { return fake.Connections() >= k }), "connection %d", k)
	}
	press := func(action, ts string) slack.InteractionCallback {
		cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "USOCKET"},
			Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: slackfake.ChannelID(triage)}}}}
		cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: action, Value: wid, ActionTs: ts}}
		return cb
	}
	state := func() workflows.RequestStatus {
		var st workflows.RequestStatus
		v, err := s.tc.QueryWorkflow(ctx, wid, "", workflows.QueryState)
		if err == nil {
			_ = v.Get(&st)
		}
		return st
	}
	whispers := func() int {
		c := 0
		for _, m := range s.slack.Messages() {
			if m.Ephemeral && m.User == "USOCKET" {
				c++
			}
		}
		return c
	}

	stop := frontDoor()
	connected(1)
	claim := press(slackmsg.ActionClaim, "1795600000.000100")
	require.NoError(t, fake.Interactive("E-claim", claim, 0))
	require.True(t, fake.Wait(10*time.Second, func() bool { return fake.Acks("E-claim") == 1 }), "the claim is acked")
	waitFor(t, "the claim applied", 20*time.Second, func() bool { return state().ClaimedBy == "USOCKET" })

	// Slack refreshes the connection: the client reconnects.
	// Each wait is for a connection after the one just ended: a client
	// may open more than one (a reconnect racing the close), and counting
	// from the start would pass before the new one is up.
	c := fake.Connections()
	require.NoError(t, fake.Disconnect())
	connected(c + 1)

	// The front door restarts, and Slack, which never heard the first
	// ack, sends the claim again: it is applied once, and nobody is told
	// "you already claimed it".
	c = fake.Connections()
	stop()
	stop = frontDoor()
	connected(c + 1)
	require.NoError(t, fake.Interactive("E-claim", claim, 1))
	require.True(t, fake.Wait(10*time.Second, func() bool { return fake.Acks("E-claim") == 2 }))

	// The Done press goes out as the connection drops; after the
	// reconnect Slack sends it again. Nothing is lost, nothing doubled.
	done := press(slackmsg.ActionDone, "1795600001.000200")
	require.NoError(t, fake.Interactive("E-done", done, 0))
	c = fake.Connections()
	fake.Drop()
	connected(c + 1)
	// Sent once the new connection is in place (nothing is sent while
	// none is).
	require.True(t, fake.Wait(10*time.Second, func() bool { return fake.Interactive("E-done", done, 1) == nil }), "the press is sent again")
	require.True(t, fake.Wait(10*time.Second, func() bool { return fake.Acks("E-done") >= 1 }), "the resent press is acked")
	waitFor(t, "the request closed by the press", 30*time.Second, func() bool {
		d, err := s.tc.DescribeWorkflowExecution(ctx, wid, "")
		return err == nil && d.WorkflowExecutionInfo.Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	time.Sleep(time.Second) // any second application would have landed
	stop()

	updates := map[string]int{}
	for _, run := range runsOf(t, s, wid) {
		it := s.tc.GetWorkflowHistory(ctx, wid, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			require.NoError(t, err)
			if a := e.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil {
				updates[a.GetAcceptedRequest().GetMeta().GetUpdateId()]++
			}
		}
	}
	assert.Equal(t, map[string]int{"slack/USOCKET/" + slackmsg.ActionClaim + "/1795600000.000100": 1,
		"slack/USOCKET/" + slackmsg.ActionDone + "/1795600001.000200": 1}, updates, "each press reached the workflow once")
	row, err := s.st.Request(ctx, mustMessageID(t, wid))
	require.NoError(t, err)
	assert.Equal(t, "USOCKET", row.ClosedBy)
	for _, m := range s.slack.Messages() {
		if m.Ephemeral && m.User == "USOCKET" {
			assert.NotContains(t, m.Text, "already", "no press was refused as a repeat: %q", m.Text)
		}
	}
	t.Logf("connections %d; whispers to the presser %d", fake.Connections(), whispers())
}

// runsOf lists a workflow's runs, oldest first.
func runsOf(t *testing.T, s *stack, wid string) []string {
	t.Helper()
	resp, err := s.tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", Query: "WorkflowId = '" + wid + "'"})
	require.NoError(t, err)
	var runs []string
	for i := len(resp.Executions) - 1; i >= 0; i-- {
		runs = append(runs, resp.Executions[i].GetExecution().GetRunId())
	}
	require.NotEmpty(t, runs)
	return runs
}

func mustMessageID(t *testing.T, wid string) string {
	id, ok := workflows.MessageIDFromWorkflowID(wid)
	require.True(t, ok)
	return id
}
