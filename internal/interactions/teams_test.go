package interactions_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/dev/teamsfake"
	"github.com/rebookhq/rebook/internal/interactions"
	"github.com/rebookhq/rebook/internal/teams"
	"github.com/rebookhq/rebook/internal/wfclient"
	"github.com/rebookhq/rebook/workflows"
)

const (
	appID  = "00000000-0000-0000-0000-00000000a001"
	tenant = "00000000-0000-0000-0000-00000000t001"
)

type press struct {
	wid, id string
	a       workflows.StaffAction
}

// requests records the updates that reach "the workflow", once per press
// id as Temporal keeps one update per id.
type requests struct {
	mu  sync.Mutex
	got []press
}

func (r *requests) StaffAction(ctx context.Context, wid string, a workflows.StaffAction) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := wfclient.PressOf(ctx)
	for _, p := range r.got {
		if p.id == id && id != "" {
			return "You have claimed it.", nil
		}
	}
	r.got = append(r.got, press{wid, id, a})
	return "You have claimed it.", nil
}

func teamsDoor(t *testing.T) (*teamsfake.Server, *requests, string) {
	f := teamsfake.New(appID, tenant, "s3cret")
	t.Cleanup(f.Close)
	reqs := &requests{}
	h := &interactions.Teams{Requests: reqs, AppID: appID, TenantID: tenant, Log: slog.New(slog.DiscardHandler),
		Verifier: &teams.Verifier{AppID: appID, OpenIDURL: f.OpenIDURL()}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return f, reqs, srv.URL
}

var jane = teamsfake.Person{ObjectID: "6b7b3b2a-2c4b-4175-8582-41c9e685c1b5", Name: "Jane Smith"}

func thread() teamsfake.Thread {
	return teamsfake.Thread{Conversation: "19:c@thread.tacv2;messageid=1", Channel: "19:c@thread.tacv2", Root: &teamsfake.Message{ID: "1"}}
}

// A press in Teams reaches the workflow as the same update as Slack's, as
// the person who pressed it, once however often Teams sends it; the
// answer tells the presser.
func TestTeamsPressReachesTheWorkflowOnce(t *testing.T) {
	f, reqs, url := teamsDoor(t)
	wid := workflows.RequestWorkflowID("m1")
	inv := f.Press(thread(), jane, teams.VerbCantAction, map[string]any{teams.DataWorkflow: wid, teams.InputReason: "Patient moved trust"}, "f:1")
	for range 3 {
		status, body, err := teamsfake.Send(url, f.Token(teamsfake.Endorsed, nil), inv)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		var ans struct {
			StatusCode int    `json:"statusCode"`
			Type       string `json:"type"`
			Value      string `json:"value"`
		}
		require.NoError(t, json.Unmarshal(body, &ans))
		assert.Equal(t, 200, ans.StatusCode)
		assert.Equal(t, "You have claimed it.", ans.Value)
	}
	require.Len(t, reqs.got, 1, "an invoke sent again is the same press")
	p := reqs.got[0]
	assert.Equal(t, wid, p.wid)
	assert.Equal(t, workflows.ActionCantAction, p.a.Action)
	assert.Equal(t, "Patient moved trust", p.a.Note)
	oid, name, ok := card.ParseTeamsUser(p.a.User)
	require.True(t, ok)
	assert.Equal(t, jane.ObjectID, oid)
	assert.Equal(t, jane.Name, name)
}

// Every inbound activity's token is checked, before its body is read:
// forged, expired, for another bot, from another issuer, signed by a key
// not endorsed for Teams, or naming another serviceUrl: 401, and nothing
// reaches a workflow. Another tenant's activity is acknowledged and
// ignored.
func TestTeamsInboundTokenRefusals(t *testing.T) {
	f, reqs, url := teamsDoor(t)
	wid := workflows.RequestWorkflowID("m1")
	inv := f.Press(thread(), jane, teams.VerbClaim, map[string]any{teams.DataWorkflow: wid}, "f:2")
	hour := time.Hour
	for name, tok := range map[string]string{
		"no token":             "",
		"forged (unknown key)": f.Token("nobody's", nil),
		"expired":              f.Token(teamsfake.Endorsed, teamsfake.Claims{"exp": time.Now().Add(-10 * time.Minute).Unix(), "nbf": time.Now().Add(-2 * hour).Unix()}),
		"not yet valid":        f.Token(teamsfake.Endorsed, teamsfake.Claims{"nbf": time.Now().Add(hour).Unix()}),
		"wrong audience":       f.Token(teamsfake.Endorsed, teamsfake.Claims{"aud": "another-bot"}),
		"wrong issuer":         f.Token(teamsfake.Endorsed, teamsfake.Claims{"iss": "https://evil.example"}),
		"unendorsed key":       f.Token(teamsfake.Unendorsed, nil),
		"other serviceurl":     f.Token(teamsfake.Endorsed, teamsfake.Claims{"serviceurl": "https://evil.example/teams/"}),
		"no serviceurl":        f.Token(teamsfake.Endorsed, teamsfake.Claims{"serviceurl": nil}),
	} {
		status, _, err := teamsfake.Send(url, tok, inv)
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, status, name)
	}
	// A body whose serviceUrl is not the token's.
	moved := teamsfake.Invoke{}
	for k, v := range inv {
		moved[k] = v
	}
	moved["serviceUrl"] = "https://evil.example/teams/"
	status, _, err := teamsfake.Send(url, f.Token(teamsfake.Endorsed, nil), moved)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status, "activity serviceUrl differs from the token's")
	assert.Empty(t, reqs.got, "nothing reached a workflow")

	other := teamsfake.Invoke{}
	for k, v := range inv {
		other[k] = v
	}
	other["conversation"] = map[string]any{"id": "x", "tenantId": "another-tenant"}
	other["channelData"] = map[string]any{}
	status, _, err = teamsfake.Send(url, f.Token(teamsfake.Endorsed, nil), other)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Empty(t, reqs.got, "another tenant's press is ignored")
}
