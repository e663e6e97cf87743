package teams_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/dev/teamsfake"
	"github.com/rebookhq/rebook/internal/teams"
)

const (
	appID  = "00000000-0000-0000-0000-00000000a001"
	tenant = "00000000-0000-0000-0000-00000000t001"
	ch     = "19:cardiology@thread.tacv2"
)

func client(f *teamsfake.Server) *teams.Client {
	return teams.New(teams.Config{AppID: appID, AppPassword: "s3cret", TenantID: tenant, LoginBase: f.LoginBase(), ServiceURL: f.ServiceURL()})
}

// A card is the root of a thread in its channel, carries no patient
// identifier, is edited in place, and replies go into its thread; one
// token serves many calls.
func TestTeamsPostsEditsAndReplies(t *testing.T) {
	f := teamsfake.New(appID, tenant, "s3cret")
	t.Cleanup(f.Close)
	f.Install(ch)
	c := client(f)
	ctx := context.Background()
	now := time.Now()
	cd := card.Card{Ref: "RB-7KQ2-M9XD", WorkflowID: "wf-m1", RequestType: "cancel", Specialty: "Cardiology",
		Clinic: "Outpatients", ReceivedAt: now.Add(-time.Hour), DashboardURL: "https://rebook.test/requests/RB-7KQ2-M9XD"}
	conv, root, err := c.CreateThread(ctx, ch, teams.Card(cd, now, card.DetailAppointment))
	require.NoError(t, err)
	assert.Contains(t, conv, ch+";messageid=")
	threads := f.Threads(ch)
	require.Len(t, threads, 1)
	assert.Equal(t, root, threads[0].Root.ID)
	assert.Empty(t, threads[0].Root.Text, "a root with text would be split by Teams and could not be edited")
	assert.Equal(t, "1.5", threads[0].Root.Card["version"])

	cd.State, cd.ClaimedBy = card.Claimed, card.TeamsUser("6b7b3b2a-2c4b-4175-8582-41c9e685c1b5", "Jane Smith")
	require.NoError(t, c.Update(ctx, conv, root, teams.Card(cd, now, card.DetailAppointment)))
	_, err = c.Reply(ctx, conv, teams.Notice("Reminder: RB-7KQ2-M9XD is due in 6 h."))
	require.NoError(t, err)
	threads = f.Threads(ch)
	require.Len(t, threads, 1)
	assert.Equal(t, 1, threads[0].Root.Edits)
	assert.Contains(t, mustJSON(t, threads[0].Root.Card), "<at>Jane Smith</at>")
	assert.Contains(t, mustJSON(t, threads[0].Root.Card), "6b7b3b2a-2c4b-4175-8582-41c9e685c1b5", "the mention names the Entra object id")
	require.Len(t, threads[0].Replies, 1)
	assert.Equal(t, 1, f.TokensIssued(), "the token is cached")

	// Minimal detail: no specialty, clinic or time.
	min := mustJSON(t, teams.Card(cd, now, card.DetailMinimal))
	assert.NotContains(t, min, "Cardiology")
	assert.NotContains(t, min, "Outpatients")
}

// A channel the bot is not in, or one deleted, is undeliverable with
// Teams' code; throttling carries its Retry-After; a wrong secret says so.
func TestTeamsRefusals(t *testing.T) {
	f := teamsfake.New(appID, tenant, "s3cret")
	t.Cleanup(f.Close)
	c := client(f)
	ctx := context.Background()
	a := teams.Card(card.Card{Ref: "RB-1", WorkflowID: "wf-m1"}, time.Now(), card.DetailMinimal)

	_, _, err := c.CreateThread(ctx, ch, a)
	code, undeliverable := teams.Undeliverable(err)
	assert.True(t, undeliverable)
	assert.Equal(t, "BotNotInConversationRoster", code)

	f.Install(ch)
	f.Fail(http.MethodPost, "/v3/conversations", http.StatusTooManyRequests, "Throttled", "7")
	_, _, err = c.CreateThread(ctx, ch, a)
	var te *teams.Error
	require.True(t, errors.As(err, &te))
	assert.Equal(t, 7*time.Second, te.RetryAfter)
	_, undeliverable = teams.Undeliverable(err)
	assert.False(t, undeliverable, "throttling is retried, not a dead channel")

	f.Fail(http.MethodPost, "/v3/conversations", http.StatusForbidden, "", "")
	_, _, err = c.CreateThread(ctx, ch, a)
	_, undeliverable = teams.Undeliverable(err)
	assert.True(t, undeliverable, "any 403 from Teams is a channel that cannot take posts")

	bad := teams.New(teams.Config{AppID: appID, AppPassword: "wrong", TenantID: tenant, LoginBase: f.LoginBase(), ServiceURL: f.ServiceURL()})
	_, _, err = bad.CreateThread(ctx, ch, a)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid_client")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	var sb strings.Builder
	e := json.NewEncoder(&sb)
	e.SetEscapeHTML(false) // the mention's <at> as Teams reads it
	require.NoError(t, e.Encode(v))
	return sb.String()
}
