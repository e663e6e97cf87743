// Package slackfake is a stateful Slack Web API for tests and `make dev`,
// built on slack-go's slacktest server. slacktest answers chat.postMessage
// with second-resolution timestamps and keeps no history; Rebook edits its
// messages and looks for them again after a lost response, so this fake
// adds unique timestamps, chat.update, conversations.history and
// conversations.list on top.
package slackfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
)

// Message is one message the fake holds.
type Message struct {
	Channel   string // channel id
	TS        string
	ThreadTS  string
	Text      string
	Blocks    slack.Blocks
	Ephemeral bool
	User      string // for ephemeral messages: who sees it
	Edits     int
	// Unfurl is the post's unfurl_links and unfurl_media, as sent ("" if
	// not sent: Slack's default, which unfurls).
	Unfurl [2]string
}

// Server is the fake. Its zero value is not usable: call New.
type Server struct {
	*slacktest.Server
	mu       sync.Mutex
	seq      int64
	names    map[string]string // channel id -> name
	msgs     []*Message
	failNext map[string]int    // method -> failures to inject
	refuse   map[string]string // channel id -> Slack error code for every post
	onPost   func(Message)
	// limitShare of Web API calls are answered 429 with limitAfter as
	// Retry-After (RateLimit); limited counts them.
	limitShare float64
	limitAfter time.Duration
	calls      int64
	limited    int64
}

// New starts a fake. onPost, if set, sees every message posted or edited.
func New(onPost func(Message)) *Server {
	s := &Server{names: map[string]string{}, failNext: map[string]int{}, refuse: map[string]string{}, onPost: onPost}
	s.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.rateLimited(s.post))
		c.Handle("/chat.update", s.rateLimited(s.update))
		c.Handle("/chat.postEphemeral", s.rateLimited(s.ephemeral))
		c.Handle("/conversations.history", s.rateLimited(s.history))
		c.Handle("/conversations.replies", s.rateLimited(s.replies))
		c.Handle("/conversations.list", s.rateLimited(s.list))
	})
	s.Start()
	return s
}

// ChannelID is the id the fake gives a channel name.
func ChannelID(name string) string {
	if strings.HasPrefix(name, "C") && strings.ToUpper(name) == name {
		return name
	}
	h := sha256.Sum256([]byte(strings.TrimPrefix(name, "#")))
	return "C" + strings.ToUpper(hex.EncodeToString(h[:5]))
}

func (s *Server) channel(v string) string {
	id := ChannelID(v)
	if id != v {
		s.names[id] = strings.TrimPrefix(v, "#")
	}
	return id
}

// RefuseIn makes every post to channel (name or id), and every edit of a
// message there, fail with Slack's error code, changing nothing; an empty
// code lifts it.
func (s *Server) RefuseIn(channel, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == "" {
		delete(s.refuse, ChannelID(channel))
		return
	}
	s.refuse[ChannelID(channel)] = code
}

// refused answers Slack's error for a call to a channel RefuseIn names,
// and says whether it did. Called under the lock.
func (s *Server) refused(w http.ResponseWriter, r *http.Request) bool {
	code, ok := s.refuse[ChannelID(r.FormValue("channel"))]
	if ok {
		fail(w, code)
	}
	return ok
}

// RateLimit answers share (0 to 1) of the Web API calls from now on with
// HTTP 429 and Retry-After, as Slack does past a method's rate limit,
// spread evenly; 0 lifts it.
func (s *Server) RateLimit(share float64, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitShare, s.limitAfter, s.calls = share, retryAfter, 0
}

// RateLimited is how many calls were answered 429.
func (s *Server) RateLimited() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited
}

func (s *Server) rateLimited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		share, after := s.limitShare, s.limitAfter
		s.calls++
		// Every call whose share crosses a whole number is refused.
		refuse := share > 0 && int64(float64(s.calls)*share) > int64(float64(s.calls-1)*share)
		if refuse {
			s.limited++
		}
		s.mu.Unlock()
		if refuse {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(after.Seconds()))))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		h(w, r)
	}
}

// FailNext makes the next n calls to method ("chat.postMessage") fail
// after doing their work, as a lost response would.
func (s *Server) FailNext(method string, n int) {
	s.mu.Lock()
	s.failNext[method] = n
	s.mu.Unlock()
}

func (s *Server) lost(w http.ResponseWriter, method string) bool {
	if s.failNext[method] > 0 {
		s.failNext[method]--
		w.WriteHeader(http.StatusBadGateway)
		return true
	}
	return false
}

func reply(w http.ResponseWriter, v map[string]any) {
	v["ok"] = true
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
}

// nextTS gives Slack-style timestamps ("seconds.micros"): the clock's,
// but always increasing, so each message has its own.
func (s *Server) nextTS() string {
	now := time.Now().UnixMicro()
	if now <= s.seq {
		now = s.seq + 1
	}
	s.seq = now
	return fmt.Sprintf("%d.%06d", now/1_000_000, now%1_000_000)
}

func blocks(r *http.Request) (slack.Blocks, error) {
	var b slack.Blocks
	if v := r.FormValue("blocks"); v != "" {
		if err := json.Unmarshal([]byte(v), &b); err != nil {
			return b, err
		}
	}
	return b, nil
}

func (s *Server) post(w http.ResponseWriter, r *http.Request) {
	b, err := blocks(r)
	if err != nil || r.FormValue("channel") == "" {
		fail(w, "invalid_arguments")
		return
	}
	s.mu.Lock()
	if s.refused(w, r) {
		s.mu.Unlock()
		return
	}
	m := &Message{Channel: s.channel(r.FormValue("channel")), TS: s.nextTS(), ThreadTS: r.FormValue("thread_ts"), Text: r.FormValue("text"), Blocks: b,
		Unfurl: [2]string{r.FormValue("unfurl_links"), r.FormValue("unfurl_media")}}
	s.msgs = append(s.msgs, m)
	cp := *m
	lost := s.lost(w, "chat.postMessage")
	s.mu.Unlock()
	if s.onPost != nil {
		s.onPost(cp)
	}
	if !lost {
		reply(w, map[string]any{"channel": m.Channel, "ts": m.TS})
	}
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	b, err := blocks(r)
	if err != nil {
		fail(w, "invalid_blocks")
		return
	}
	s.mu.Lock()
	id := s.channel(r.FormValue("channel"))
	if s.refused(w, r) {
		s.mu.Unlock()
		return
	}
	var found *Message
	for _, m := range s.msgs {
		if m.Channel == id && m.TS == r.FormValue("ts") && !m.Ephemeral {
			found = m
		}
	}
	if found == nil {
		s.mu.Unlock()
		fail(w, "message_not_found")
		return
	}
	found.Text, found.Blocks = r.FormValue("text"), b
	found.Edits++
	cp := *found
	lost := s.lost(w, "chat.update")
	s.mu.Unlock()
	if s.onPost != nil {
		s.onPost(cp)
	}
	if !lost {
		reply(w, map[string]any{"channel": id, "ts": cp.TS, "text": cp.Text})
	}
}

func (s *Server) ephemeral(w http.ResponseWriter, r *http.Request) {
	b, _ := blocks(r)
	s.mu.Lock()
	if s.refused(w, r) {
		s.mu.Unlock()
		return
	}
	m := &Message{Channel: s.channel(r.FormValue("channel")), TS: s.nextTS(), Text: r.FormValue("text"), Blocks: b, Ephemeral: true, User: r.FormValue("user")}
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	reply(w, map[string]any{"message_ts": m.TS})
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	id := r.FormValue("channel")
	oldest := r.FormValue("oldest")
	s.mu.Lock()
	var out []map[string]any
	for i := len(s.msgs) - 1; i >= 0; i-- { // newest first, as Slack
		m := s.msgs[i]
		if m.Channel != id || m.Ephemeral || m.ThreadTS != "" || (oldest != "" && m.TS < oldest) {
			continue
		}
		out = append(out, map[string]any{"type": "message", "ts": m.TS, "text": m.Text})
	}
	s.mu.Unlock()
	reply(w, map[string]any{"messages": out, "has_more": false})
}

func (s *Server) replies(w http.ResponseWriter, r *http.Request) {
	id, thread, oldest := r.FormValue("channel"), r.FormValue("ts"), r.FormValue("oldest")
	s.mu.Lock()
	var out []map[string]any
	for _, m := range s.msgs { // oldest first, as Slack
		if m.Channel != id || m.Ephemeral || (m.TS != thread && m.ThreadTS != thread) || (oldest != "" && m.TS < oldest) {
			continue
		}
		out = append(out, map[string]any{"type": "message", "ts": m.TS, "thread_ts": thread, "text": m.Text})
	}
	s.mu.Unlock()
	reply(w, map[string]any{"messages": out, "has_more": false})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var out []map[string]any
	for id, name := range s.names {
		out = append(out, map[string]any{"id": id, "name": name, "is_channel": true, "is_member": true})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	reply(w, map[string]any{"channels": out, "response_metadata": map[string]string{"next_cursor": ""}})
}

// AddChannel makes a channel known to conversations.list before anything is
// posted to it, as a real workspace's channels are.
func (s *Server) AddChannel(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channel(name)
}

// Messages returns copies of every message, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = *m
	}
	return out
}

// Roots returns the top-level, non-ephemeral messages in a channel (name
// or id); an empty channel means every channel.
func (s *Server) Roots(channel string) []Message {
	id := ""
	if channel != "" {
		id = ChannelID(channel)
	}
	var out []Message
	for _, m := range s.Messages() {
		if !m.Ephemeral && m.ThreadTS == "" && (id == "" || m.Channel == id) {
			out = append(out, m)
		}
	}
	return out
}

// Name returns the name of a channel id the fake has seen.
func (s *Server) Name(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[id]
}

// Button is the value of the message's button with actionID, or "".
func (m Message) Button(actionID string) string {
	for _, b := range m.Blocks.BlockSet {
		if ab, ok := b.(*slack.ActionBlock); ok {
			for _, e := range ab.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok && btn.ActionID == actionID {
					return btn.Value
				}
			}
		}
	}
	return ""
}

// Press sends what Slack sends to an app's interactivity URL when user
// presses a button (block_actions) in channel, signed with the app's
// signing secret as of at, and returns the answer's status.
func Press(client *http.Client, interactionsURL, secret, channel, user, actionID, value string, at time.Time) (int, error) {
	cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user},
		Channel: slack.Channel{GroupConversation: slack.GroupConversation{Conversation: slack.Conversation{ID: ChannelID(channel)}}}}
	cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: actionID, Value: value, ActionTs: fmt.Sprintf("%d.%06d", at.Unix(), at.Nanosecond()/1000)}}
	payload, err := json.Marshal(cb)
	if err != nil {
		return 0, err
	}
	body := "payload=" + url.QueryEscape(string(payload))
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	req, err := http.NewRequest(http.MethodPost, interactionsURL, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
