package interactions

import (
	"context"
	"log/slog"
	"testing"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/workflows"
)

type pressed struct {
	wid []string
	got []workflows.StaffAction
}

func (p *pressed) StaffAction(_ context.Context, wid string, a workflows.StaffAction) (string, error) {
	p.wid, p.got = append(p.wid, wid), append(p.got, a)
	return "Thank you.", nil
}

// An answer to "Is this the rebooking?" reaches the request's workflow
// with the booking its button names; a value that names no request is
// ignored.
func TestRebookingAnswersReachTheWorkflowWithTheirBooking(t *testing.T) {
	fake := slackfake.New(nil)
	t.Cleanup(fake.Stop)
	ch := fake.AddChannel("rebook-cardiology")
	p := &pressed{}
	h := &Handler{Requests: p, Slack: slackmsg.New("xoxb-test", fake.GetAPIURL()), Log: slog.New(slog.DiscardHandler)}
	wid := workflows.RequestWorkflowID("msg-1")
	value := slackmsg.QuestionValue(card.Question{WorkflowID: wid, Candidate: "appt-9"})
	cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: "U1"}, Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: ch}}}}
	cb.ActionCallback.BlockActions = []*slack.BlockAction{
		{ActionID: slackmsg.ActionRebookingNo, Value: value},
		{ActionID: slackmsg.ActionRebookingYes, Value: "not-a-request|appt-9"},
	}
	h.Handle(context.Background(), cb)
	require.Len(t, p.got, 1)
	assert.Equal(t, wid, p.wid[0])
	assert.Equal(t, workflows.StaffAction{Action: workflows.ActionRebookingNo, User: "U1", Candidate: "appt-9"}, p.got[0])
}
