// Package interactions is Slack's way in: button presses on request cards
// arrive over HTTP (signed with the app's signing secret) or over Socket
// Mode, and become updates to the request's workflow. A refused action is
// explained to the person who pressed the button, and to no one else.
package interactions

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/wfclient"
	"github.com/rebookhq/rebook/workflows"
)

// Requests applies a staff action to a request's workflow and returns
// what to tell the person.
type Requests interface {
	StaffAction(ctx context.Context, workflowID string, a workflows.StaffAction) (string, error)
}

// Handler turns interactions into workflow updates.
type Handler struct {
	Requests      Requests
	Slack         *slackmsg.Client
	SigningSecret string
	Log           *slog.Logger
	// Timeout bounds one update, Slack's answer included; 30 s if zero.
	Timeout time.Duration
	// SocketOptions tune the Socket Mode client (tests: its ping timeout).
	SocketOptions []socketmode.Option

	wg sync.WaitGroup
}

var actions = map[string]string{
	slackmsg.ActionClaim:        workflows.ActionClaim,
	slackmsg.ActionDone:         workflows.ActionDone,
	slackmsg.ActionCantAction:   workflows.ActionCantAction,
	slackmsg.ActionRebookingYes: workflows.ActionRebookingYes,
	slackmsg.ActionRebookingNo:  workflows.ActionRebookingNo,
}

// ServeHTTP answers Slack's interaction requests. Anything not signed
// with the signing secret within the last five minutes gets 401 and
// changes nothing. Slack wants an answer within three seconds, so the
// update runs after the answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	v, err := slack.NewSecretsVerifier(r.Header, h.SigningSecret)
	if err == nil {
		_, _ = v.Write(body)
		err = v.Ensure()
	}
	if err != nil || h.SigningSecret == "" {
		h.Log.Warn("slack interaction refused: bad or stale signature", "remote", r.RemoteAddr)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(r.PostForm.Get("payload")), &cb); err != nil {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.Handle(context.Background(), cb)
	}()
}

// Wait waits for updates still running, for a clean shutdown.
func (h *Handler) Wait() { h.wg.Wait() }

// Handle applies the button presses in one interaction.
func (h *Handler) Handle(ctx context.Context, cb slack.InteractionCallback) {
	if cb.Type != slack.InteractionTypeBlockActions {
		return
	}
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	for _, a := range cb.ActionCallback.BlockActions {
		action, ok := actions[a.ActionID]
		// An answer's value also names the booking it is about.
		wid, candidate, _ := strings.Cut(a.Value, "|")
		if _, isRequest := workflows.MessageIDFromWorkflowID(wid); !ok || !isRequest {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		if a.ActionTs != "" {
			ctx = wfclient.WithPress(ctx, "slack/"+cb.User.ID+"/"+a.ActionID+"/"+a.ActionTs)
		}
		msg, err := h.Requests.StaffAction(ctx, wid, workflows.StaffAction{Action: action, User: cb.User.ID, Candidate: candidate})
		cancel()
		log := h.Log.With("workflow_id", wid, "action", action, "user", cb.User.ID)
		if err != nil {
			log.Info("staff action refused", "why", err)
			h.whisper(cb, wfclient.Refusal(err))
			continue
		}
		log.Info("staff action applied")
		if (action == workflows.ActionDone || action == workflows.ActionRebookingYes || action == workflows.ActionRebookingNo) && msg != "" {
			h.whisper(cb, msg)
		}
	}
}

func (h *Handler) whisper(cb slack.InteractionCallback, text string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Slack.Whisper(ctx, cb.Channel.ID, cb.User.ID, text); err != nil {
		h.Log.Warn("could not tell the user", "err", err)
	}
}

// recent remembers the last n envelope ids.
type recent struct {
	ids  map[string]bool
	ring []string
	next int
}

func newRecent(n int) *recent { return &recent{ids: map[string]bool{}, ring: make([]string, n)} }

// add says whether id is new, and remembers it.
func (r *recent) add(id string) bool {
	if id == "" {
		return true
	}
	if r.ids[id] {
		return false
	}
	delete(r.ids, r.ring[r.next])
	r.ring[r.next], r.ids[id] = id, true
	r.next = (r.next + 1) % len(r.ring)
	return true
}

// RunSocketMode receives interactions over Socket Mode until ctx ends, so
// a trust needs no public URL for Slack.
func (h *Handler) RunSocketMode(ctx context.Context, botToken, appToken, apiURL string) error {
	opts := []slack.Option{slack.OptionAppLevelToken(appToken)}
	if apiURL != "" {
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	sm := socketmode.New(slack.New(botToken, opts...), h.SocketOptions...)
	seen := newRecent(4096)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt, ok := <-sm.Events:
				if !ok {
					return
				}
				if evt.Type != socketmode.EventTypeInteractive || evt.Request == nil {
					continue
				}
				cb, ok := evt.Data.(slack.InteractionCallback)
				_ = sm.Ack(*evt.Request)
				// Slack sends an envelope again when it did not hear the
				// ack, as across a reconnect: it is acked, and applied once
				// (the workflow update's id covers another process).
				if seen.add(evt.Request.EnvelopeID) && ok {
					h.wg.Add(1)
					go func() {
						defer h.wg.Done()
						h.Handle(context.Background(), cb)
					}()
				}
			}
		}
	}()
	return sm.RunContext(ctx)
}
