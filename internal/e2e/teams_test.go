package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/teamsfake"
	"github.com/rebookhq/rebook/internal/interactions"
	"github.com/rebookhq/rebook/internal/teams"
	"github.com/rebookhq/rebook/workflows"
)

const (
	teamsApp    = "00000000-0000-0000-0000-00000000e2e1"
	teamsTenant = "00000000-0000-0000-0000-00000000e2e2"
)

// teamsChannel is the Teams channel id a team's rule names in the test.
func teamsChannel(team string) string {
	return "19:" + strings.ToLower(strings.NewReplacer(" ", "-", ",", "").Replace(team)) + "@thread.tacv2"
}

// TestTeamsAndSlackEndToEnd runs requests through both notifiers: every
// other team's rule names a Teams channel, the rest Slack. Each request
// gets exactly one card, in its team's service; a press in Teams (an
// adaptiveCard/action invoke, sent twice as Teams does when it hears no
// answer) claims the request once and the card shows who claimed it; then
// every request completes and its card says so.
func TestTeamsAndSlackEndToEnd(t *testing.T) {
	f := teamsfake.New(teamsApp, teamsTenant, "teams-e2e-secret")
	t.Cleanup(f.Close)
	n := 24
	s := start(t, n, func(c *config.Config) {
		c.TeamsAppID, c.TeamsAppPassword, c.TeamsTenantID = teamsApp, "teams-e2e-secret", teamsTenant
		c.TeamsLoginBase, c.TeamsServiceURL, c.TeamsOpenIDURL = f.LoginBase(), f.ServiceURL(), f.OpenIDURL()
	})
	s.teams = f
	ctx := context.Background()
	rules := s.rules
	onTeams := map[string]bool{}
	for i := range rules {
		if i%2 == 0 && rules[i].Specialty != "" {
			ch := teamsChannel(rules[i].Team)
			f.Install(ch)
			rules[i].SlackChannel = "teams:" + ch
			onTeams[rules[i].Team] = true
		}
	}
	require.NotEmpty(t, onTeams)
	require.NoError(t, s.st.ReplaceRules(ctx, rules))
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "every request routed", limit(3*time.Minute), func() bool { return len(s.cards())+len(s.teamsCards()) >= n })
	inTeams := s.teamsCards()
	require.NotEmpty(t, inTeams, "some requests went to Teams")
	require.NotEmpty(t, s.cards(), "and some to Slack")
	for ref, threads := range inTeams {
		row, err := s.st.RequestByRef(ctx, ref)
		require.NoError(t, err)
		assert.True(t, onTeams[row.Team], "%s is for %s, whose rule names Teams", ref, row.Team)
		b, _ := json.Marshal(threads[0].Root.Card)
		assert.NotContains(t, string(b), row.PatientID, "no patient identifier in a Teams card")
	}

	// Presses through Teams: one Claim per Teams card, each sent twice.
	jane := teamsfake.Person{ObjectID: "6b7b3b2a-2c4b-4175-8582-41c9e685c1b5", Name: "Jane Smith"}
	i := 0
	for ref, threads := range inTeams {
		row, err := s.st.RequestByRef(ctx, ref)
		require.NoError(t, err)
		inv := f.Press(threads[0], jane, teams.VerbClaim, map[string]any{teams.DataWorkflow: row.WorkflowID}, fmt.Sprintf("f:%d", i))
		i++
		for range 2 {
			status, body, err := teamsfake.Send(s.door+interactions.TeamsPath, f.Token(teamsfake.Endorsed, nil), inv)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, status, string(body))
			assert.Contains(t, string(body), `"statusCode":200`)
		}
	}
	waitFor(t, "every Teams card shows who claimed it", limit(time.Minute), func() bool {
		for _, threads := range s.teamsCards() {
			b, _ := json.Marshal(threads[0].Root.Card)
			if !strings.Contains(string(b), `Claimed by \u003cat\u003eJane Smith\u003c/at\u003e`) && !strings.Contains(string(b), "Claimed by <at>Jane Smith</at>") {
				return false
			}
		}
		return true
	})
	for ref := range inTeams {
		row, err := s.st.RequestByRef(ctx, ref)
		require.NoError(t, err)
		assert.Equal(t, workflows.StateClaimed, row.State, ref)
		trail, err := s.st.AuditTrail(ctx, row.WorkflowID)
		require.NoError(t, err)
		claims := 0
		for _, e := range trail {
			if e.Action == workflows.StateClaimed {
				claims++
			}
		}
		assert.Equal(t, 1, claims, "%s claimed once, however often Teams sent the press", ref)
	}

	s.closeAll(t, n, limit(4*time.Minute))
	waitFor(t, "every Teams card shows the request closed", limit(time.Minute), func() bool {
		for _, threads := range s.teamsCards() {
			b, _ := json.Marshal(threads[0].Root.Card)
			if strings.Contains(string(b), teams.VerbDone) {
				return false // still has its buttons
			}
		}
		return true
	})
}
