package interactions

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/internal/teams"
	"github.com/rebookhq/rebook/internal/wfclient"
	"github.com/rebookhq/rebook/workflows"
)

// TeamsPath is where the Bot Connector posts activities for the bot (the
// Azure Bot's messaging endpoint).
const TeamsPath = "/teams/messages"

// Teams is Microsoft Teams' way in: Action.Execute presses on request
// cards arrive as adaptiveCard/action invokes, each with the Bot
// Connector's token, and become the same workflow updates as Slack's
// buttons. The answer to the press says what happened, to the presser.
type Teams struct {
	Requests Requests
	Verifier *teams.Verifier
	AppID    string
	TenantID string
	Log      *slog.Logger
	// Timeout bounds one update; 10 s if zero (Teams waits about 15).
	Timeout time.Duration
}

var verbs = map[string]string{
	teams.VerbClaim:        workflows.ActionClaim,
	teams.VerbDone:         workflows.ActionDone,
	teams.VerbCantAction:   workflows.ActionCantAction,
	teams.VerbRebookingYes: workflows.ActionRebookingYes,
	teams.VerbRebookingNo:  workflows.ActionRebookingNo,
}

// inbound is what Rebook reads of an activity.
type inbound struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	ID         string `json:"id"`
	ChannelID  string `json:"channelId"`
	ServiceURL string `json:"serviceUrl"`
	From       struct {
		Name        string `json:"name"`
		AADObjectID string `json:"aadObjectId"`
	} `json:"from"`
	Recipient struct {
		ID string `json:"id"`
	} `json:"recipient"`
	Conversation struct {
		TenantID string `json:"tenantId"`
	} `json:"conversation"`
	ChannelData struct {
		Tenant struct {
			ID string `json:"id"`
		} `json:"tenant"`
	} `json:"channelData"`
	Value struct {
		Action struct {
			Verb string         `json:"verb"`
			Data map[string]any `json:"data"`
		} `json:"action"`
	} `json:"value"`
}

// ServeHTTP answers the Bot Connector. The token is checked before the
// body is read, and the body against the token after; any failure is 401
// and changes nothing. An activity for another tenant or bot, or of a
// kind Rebook does not act on, is acknowledged and ignored.
func (h *Teams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	claims, err := h.Verifier.Verify(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		h.Log.Warn("teams activity refused", "why", err, "remote", r.RemoteAddr)
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	var a inbound
	if err := json.Unmarshal(body, &a); err != nil {
		http.Error(w, "not an activity", http.StatusBadRequest)
		return
	}
	if err := claims.Check(a.ServiceURL, a.ChannelID); err != nil {
		h.Log.Warn("teams activity refused", "why", err, "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	tenant := a.Conversation.TenantID
	if tenant == "" {
		tenant = a.ChannelData.Tenant.ID
	}
	if a.ChannelID != "msteams" || tenant != h.TenantID || a.Recipient.ID != "28:"+h.AppID {
		h.Log.Info("teams activity ignored: another channel, tenant or bot")
		w.WriteHeader(http.StatusOK)
		return
	}
	if a.Type != "invoke" || a.Name != "adaptiveCard/action" {
		w.WriteHeader(http.StatusOK)
		return
	}
	h.press(w, r.Context(), a)
}

func (h *Teams) press(w http.ResponseWriter, ctx context.Context, a inbound) {
	action, ok := verbs[a.Value.Action.Verb]
	wid, _ := a.Value.Action.Data[teams.DataWorkflow].(string)
	if _, isRequest := workflows.MessageIDFromWorkflowID(wid); !ok || !isRequest {
		invokeAnswer(w, http.StatusBadRequest, "This button is not one of Rebook's.")
		return
	}
	if a.From.AADObjectID == "" {
		invokeAnswer(w, http.StatusBadRequest, "Teams did not say who pressed the button.")
		return
	}
	candidate, _ := a.Value.Action.Data[teams.DataCandidate].(string)
	reason, _ := a.Value.Action.Data[teams.InputReason].(string)
	user := card.TeamsUser(a.From.AADObjectID, a.From.Name)
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if a.ID != "" {
		// Teams sends an invoke again when it did not hear the answer:
		// the same activity id is the same press.
		ctx = wfclient.WithPress(ctx, "teams/"+a.ID)
	}
	msg, err := h.Requests.StaffAction(ctx, wid, workflows.StaffAction{Action: action, User: user, Candidate: candidate, Note: trimNote(reason)})
	log := h.Log.With("workflow_id", wid, "action", action, "via", "teams")
	if err != nil {
		log.Info("staff action refused", "why", err)
		invokeAnswer(w, http.StatusOK, wfclient.Refusal(err))
		return
	}
	log.Info("staff action applied")
	invokeAnswer(w, http.StatusOK, msg)
}

func trimNote(s string) string {
	if len(s) > 300 {
		return s[:300]
	}
	return s
}

// invokeAnswer is an adaptiveCard/action's answer: HTTP 200 always, the
// outcome in statusCode, a message the presser sees.
func invokeAnswer(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if status == http.StatusOK {
		_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": text})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"statusCode": status, "type": "application/vnd.microsoft.error",
		"value": map[string]string{"code": "BadRequest", "message": text}})
}
