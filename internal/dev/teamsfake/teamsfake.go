// Package teamsfake stands in for Microsoft Teams in tests and `make dev`:
// the tenant's token endpoint, the Bot Framework's OpenID metadata and
// keys (one endorsed for msteams, one not), the Bot Connector's
// conversation and activity endpoints, and a person pressing a card's
// button (a signed adaptiveCard/action invoke to Rebook). It keeps every
// thread so a test can read what was posted and edited.
package teamsfake

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is the Bot Connector's issuer, as the real one's.
const Issuer = "https://api.botframework.com"

// Key ids: Endorsed signs for msteams; Unendorsed is in the key set but
// endorsed for nothing.
const (
	Endorsed   = "fake-msteams"
	Unendorsed = "fake-other"
)

// Message is one message in a thread, as last written.
type Message struct {
	ID       string
	Text     string
	Card     map[string]any // the Adaptive Card, if any
	Entities []map[string]any
	Edits    int
}

// Thread is a card and its replies in a channel.
type Thread struct {
	Conversation string
	Channel      string
	Root         *Message
	Replies      []*Message
}

// Server is a running stand-in.
type Server struct {
	URL                      string
	AppID, TenantID, Secrets string

	srv  *httptest.Server
	keys map[string]*rsa.PrivateKey

	mu       sync.Mutex
	tokens   map[string]time.Time
	issued   int
	channels map[string]bool // installed channel ids
	threads  map[string]*Thread
	order    []string
	next     int
	faults   []fault
	TokenTTL time.Duration
}

type fault struct {
	method, contains string
	status           int
	code             string
	retryAfter       string
}

// New starts a stand-in for a bot (appID) in a tenant, whose client
// secret is secret.
func New(appID, tenantID, secret string) *Server {
	s := &Server{AppID: appID, TenantID: tenantID, Secrets: secret, keys: map[string]*rsa.PrivateKey{},
		tokens: map[string]time.Time{}, channels: map[string]bool{}, threads: map[string]*Thread{}, TokenTTL: time.Hour}
	for _, kid := range []string{Endorsed, Unendorsed} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		s.keys[kid] = k
	}
	m := http.NewServeMux()
	m.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	m.HandleFunc("GET /v1/.well-known/openidconfiguration", s.metadata)
	m.HandleFunc("GET /v1/.well-known/keys", s.jwks)
	m.HandleFunc("POST /v3/conversations", s.createConversation)
	m.HandleFunc("POST /v3/conversations/{conv}/activities", s.reply)
	m.HandleFunc("PUT /v3/conversations/{conv}/activities/{id}", s.update)
	m.HandleFunc("GET /v3/teams/{team}/conversations", s.listChannels)
	m.HandleFunc("GET /v3/conversations/{conv}/pagedmembers", s.members)
	s.srv = httptest.NewServer(m)
	s.URL = s.srv.URL
	return s
}

// Close stops the stand-in.
func (s *Server) Close() { s.srv.Close() }

// LoginBase, OpenIDURL and ServiceURL are what Rebook is configured with.
func (s *Server) LoginBase() string  { return s.URL }
func (s *Server) OpenIDURL() string  { return s.URL + "/v1/.well-known/openidconfiguration" }
func (s *Server) ServiceURL() string { return s.URL + "/" }

// Install puts the bot in a team's channel; posts elsewhere are refused
// as Teams refuses them (403 BotNotInConversationRoster).
func (s *Server) Install(channelID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[channelID] = true
}

// Uninstall takes the bot out of a channel's team.
func (s *Server) Uninstall(channelID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.channels, channelID)
}

// Fail makes the next Connector call whose method and path match answer
// status with code (and Retry-After, when set), once.
func (s *Server) Fail(method, pathContains string, status int, code, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{method, pathContains, status, code, retryAfter})
}

// TokensIssued counts the access tokens the token endpoint gave.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Threads are the threads in a channel, or in every channel when
// channelID is empty, oldest first (copies).
func (s *Server) Threads(channelID string) []Thread {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Thread
	for _, id := range s.order {
		if t := s.threads[id]; channelID == "" || t.Channel == channelID {
			cp := *t
			root := *t.Root
			cp.Root = &root
			cp.Replies = append([]*Message(nil), t.Replies...)
			out = append(out, cp)
		}
	}
	return out
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	switch {
	case r.PathValue("tenant") != s.TenantID || id != s.AppID || secret != s.Secrets:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"unknown client or secret"}`)
		return
	case r.PostFormValue("grant_type") != "client_credentials" || r.PostFormValue("scope") != "https://api.botframework.com/.default":
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_request"}`)
		return
	}
	tok := rand.Text()
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.TokenTTL)
	s.issued++
	ttl := s.TokenTTL
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": int(ttl / time.Second), "access_token": tok})
}

func (s *Server) metadata(w http.ResponseWriter, _ *http.Request) {
	_ = json.NewEncoder(w).Encode(map[string]any{"issuer": Issuer, "jwks_uri": s.URL + "/v1/.well-known/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"}})
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	var keys []json.RawMessage
	for kid, k := range s.keys {
		b, _ := jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}.MarshalJSON()
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["endorsements"] = []string{}
		if kid == Endorsed {
			m["endorsements"] = []string{"msteams"}
		}
		b, _ = json.Marshal(m)
		keys = append(keys, b)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// refuse answers a Connector call that has no live token, or a scripted
// fault; it says whether it did.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request) bool {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	var f *fault
	for i, x := range s.faults {
		if x.method == r.Method && strings.Contains(r.URL.Path, x.contains) {
			f = &x
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if !ok || time.Now().After(exp) {
		connectorError(w, http.StatusUnauthorized, "Unauthorized", "", "")
		return true
	}
	if f != nil {
		connectorError(w, f.status, f.code, "scripted fault", f.retryAfter)
		return true
	}
	return false
}

func connectorError(w http.ResponseWriter, status int, code, msg, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// activity is what the fake reads of a posted activity.
type activity struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	Attachments []struct {
		ContentType string         `json:"contentType"`
		Content     map[string]any `json:"content"`
	} `json:"attachments"`
	Entities []map[string]any `json:"entities"`
}

func (s *Server) message(w http.ResponseWriter, r *http.Request) (*Message, bool) {
	var a activity
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(body) > 40<<10 {
		connectorError(w, http.StatusRequestEntityTooLarge, "MessageSizeTooBig", "", "")
		return nil, false
	}
	if json.Unmarshal(body, &a) != nil || a.Type != "message" {
		connectorError(w, http.StatusBadRequest, "BadArgument", "not a message activity", "")
		return nil, false
	}
	m := &Message{Text: a.Text, Entities: a.Entities}
	for _, at := range a.Attachments {
		if at.ContentType != "application/vnd.microsoft.card.adaptive" {
			connectorError(w, http.StatusBadRequest, "BadArgument", "unknown attachment type", "")
			return nil, false
		}
		m.Card = at.Content
	}
	for _, e := range a.Entities {
		if t, _ := e["text"].(string); t == "" || !strings.Contains(a.Text, t) {
			connectorError(w, http.StatusBadRequest, "BadArgument", "a mention's text is not in the message", "")
			return nil, false
		}
	}
	return m, true
}

func (s *Server) createConversation(w http.ResponseWriter, r *http.Request) {
	if s.refuse(w, r) {
		return
	}
	var in struct {
		IsGroup     bool `json:"isGroup"`
		ChannelData struct {
			Channel struct{ ID string } `json:"channel"`
		} `json:"channelData"`
		Activity json.RawMessage `json:"activity"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if json.Unmarshal(body, &in) != nil || !in.IsGroup {
		connectorError(w, http.StatusBadRequest, "BadArgument", "isGroup and a channel are needed", "")
		return
	}
	s.mu.Lock()
	installed := s.channels[in.ChannelData.Channel.ID]
	s.mu.Unlock()
	if !installed {
		connectorError(w, http.StatusForbidden, "BotNotInConversationRoster", "The bot is not part of the conversation roster.", "")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(in.Activity))
	m, ok := s.message(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	m.ID = s.newID()
	conv := in.ChannelData.Channel.ID + ";messageid=" + m.ID
	s.threads[conv] = &Thread{Conversation: conv, Channel: in.ChannelData.Channel.ID, Root: m}
	s.order = append(s.order, conv)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": conv, "activityId": m.ID})
}

func (s *Server) thread(w http.ResponseWriter, r *http.Request) *Thread {
	s.mu.Lock()
	t := s.threads[r.PathValue("conv")]
	installed := t != nil && s.channels[t.Channel]
	s.mu.Unlock()
	switch {
	case t == nil:
		connectorError(w, http.StatusNotFound, "ConversationNotFound", "", "")
		return nil
	case !installed:
		connectorError(w, http.StatusForbidden, "BotNotInConversationRoster", "", "")
		return nil
	}
	return t
}

// incoming reads an activity posted to a thread the bot may write in, or
// answers why not; ok is false when it has answered.
func (s *Server) incoming(w http.ResponseWriter, r *http.Request) (*Thread, *Message, bool) {
	if s.refuse(w, r) {
		return nil, nil, false
	}
	t := s.thread(w, r)
	if t == nil {
		return nil, nil, false
	}
	m, ok := s.message(w, r)
	return t, m, ok
}

// newID is a new activity id, in time order; the caller holds s.mu.
func (s *Server) newID() string {
	s.next++
	return strconv.FormatInt(time.Now().UnixMilli()*1000+int64(s.next), 10)
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request) {
	t, m, ok := s.incoming(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	m.ID = s.newID()
	t.Replies = append(t.Replies, m)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": m.ID})
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	t, m, ok := s.incoming(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Root.ID != r.PathValue("id") {
		connectorError(w, http.StatusNotFound, "ActivityNotFoundInConversation", "", "")
		return
	}
	m.ID, m.Edits = t.Root.ID, t.Root.Edits+1
	t.Root = m
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"id": m.ID})
}

func (s *Server) members(w http.ResponseWriter, r *http.Request) {
	if s.refuse(w, r) {
		return
	}
	s.mu.Lock()
	installed := s.channels[r.PathValue("conv")]
	s.mu.Unlock()
	if !installed {
		connectorError(w, http.StatusForbidden, "BotNotInConversationRoster", "", "")
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"members": []map[string]any{{"id": "29:someone", "name": "Someone"}}})
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) {
	if s.refuse(w, r) {
		return
	}
	s.mu.Lock()
	var out []map[string]any
	for ch := range s.channels {
		out = append(out, map[string]any{"id": ch, "name": nil})
	}
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"conversations": out})
}

// Claims are the inbound token's claims; Token fills what is not set.
type Claims map[string]any

// Token signs an inbound token with the key kid, as the Bot Connector
// signs one for Rebook; claims override the defaults (the bot's audience,
// the Connector's issuer, this stand-in's serviceurl, an hour's life).
func (s *Server) Token(kid string, claims Claims) string {
	k := s.keys[kid]
	if k == nil {
		k, _ = rsa.GenerateKey(rand.Reader, 2048) // a key nobody published
	}
	now := time.Now()
	c := Claims{"iss": Issuer, "aud": s.AppID, "serviceurl": s.ServiceURL(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}
	for key, v := range claims {
		if v == nil {
			delete(c, key)
			continue
		}
		c[key] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	out, err := jwt.Signed(signer).Claims(map[string]any(c)).Serialize()
	if err != nil {
		panic(err)
	}
	return out
}

// Person is who presses a button in Teams.
type Person struct {
	ObjectID, Name string
}

// Invoke is the adaptiveCard/action a press sends; Activity builds it.
type Invoke map[string]any

// Press builds the invoke a person's press of a card's button sends:
// the verb and data of the button, with typed inputs merged in.
func (s *Server) Press(t Thread, p Person, verb string, data map[string]any, id string) Invoke {
	return Invoke{
		"type": "invoke", "name": "adaptiveCard/action", "id": id, "channelId": "msteams", "serviceUrl": s.ServiceURL(),
		"from":         map[string]any{"id": "29:" + p.ObjectID, "name": p.Name, "aadObjectId": p.ObjectID},
		"recipient":    map[string]any{"id": "28:" + s.AppID, "name": "Rebook"},
		"conversation": map[string]any{"id": t.Conversation, "conversationType": "channel", "isGroup": true, "tenantId": s.TenantID},
		"channelData":  map[string]any{"tenant": map[string]any{"id": s.TenantID}, "channel": map[string]any{"id": t.Channel}},
		"replyToId":    t.Root.ID,
		"value":        map[string]any{"action": map[string]any{"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
	}
}

// Send posts an activity to Rebook's messaging endpoint with token as
// its bearer, and returns the status and the answer's body.
func Send(url, token string, a Invoke) (int, []byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, nil
}
