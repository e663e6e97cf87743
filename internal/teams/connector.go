// Package teams posts and edits Rebook's Microsoft Teams messages as a
// Teams bot (the Bot Connector REST API, v3) and checks what the Bot
// Connector sends it. One Adaptive Card per request is the root of a
// thread in its team's channel, carrying what the Slack card carries and
// nothing more: no NHS number, name, patient id or message text, at any
// detail level. ../shared/teams-api.md is the contract.
package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Defaults for the public cloud; tests point each at teamsfake.
const (
	DefaultLoginBase  = "https://login.microsoftonline.com"
	DefaultOpenIDURL  = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	DefaultServiceURL = "https://smba.trafficmanager.net/teams/"
	// ConnectorScope is the scope of the bot's client-credentials token.
	ConnectorScope = "https://api.botframework.com/.default"
	// BotIssuer is the issuer of the Bot Connector's tokens to bots.
	BotIssuer = "https://api.botframework.com"
)

// Config is the bot's registration in the trust's tenant.
type Config struct {
	AppID, AppPassword, TenantID string
	LoginBase                    string // DefaultLoginBase if empty
	ServiceURL                   string // DefaultServiceURL if empty
	HTTP                         *http.Client
}

// Client makes the Bot Connector calls Rebook makes: a new thread in a
// channel, a reply in it, an edit of its root card.
type Client struct {
	appID, tenantID string
	service         string
	http            *http.Client
	tokens          oauth2.TokenSource
}

// New makes a Client. Its token is fetched by client credentials from the
// trust's tenant and cached until shortly before it expires.
func New(cfg Config) *Client {
	base := strings.TrimRight(cfgOr(cfg.LoginBase, DefaultLoginBase), "/")
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	cc := clientcredentials.Config{ClientID: cfg.AppID, ClientSecret: cfg.AppPassword,
		TokenURL: base + "/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token", Scopes: []string{ConnectorScope}}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	return &Client{appID: cfg.AppID, tenantID: cfg.TenantID, service: serviceBase(cfgOr(cfg.ServiceURL, DefaultServiceURL)),
		http: hc, tokens: oauth2.ReuseTokenSourceWithExpiry(nil, cc.TokenSource(ctx), 5*time.Minute)}
}

func cfgOr(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// serviceBase keeps the service URL's path and ends it with one "/".
func serviceBase(s string) string { return strings.TrimRight(s, "/") + "/" }

// Error is the Bot Connector's refusal.
type Error struct {
	Status     int
	Code       string // e.g. BotNotInConversationRoster, ConversationNotFound
	Message    string
	RetryAfter time.Duration // from a 429's Retry-After
}

func (e *Error) Error() string {
	s := fmt.Sprintf("teams: %d %s", e.Status, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// undeliverable are the refusals that mean the channel cannot take the
// bot's posts (not installed in the team, blocked, deleted): retrying
// does not help; the request goes to triage and the admins are told.
var undeliverable = map[string]bool{
	"BotNotInConversationRoster": true, "BotDisabledByAdmin": true, "ConversationBlockedByUser": true,
	"NotEnoughPermissions": true, "ForbiddenOperationException": true, "MessageWritesBlocked": true,
	"ConversationNotFound": true,
}

// Undeliverable says whether err means the channel cannot take posts, and
// Teams' code for why.
func Undeliverable(err error) (string, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return "", false
	}
	if undeliverable[e.Code] {
		return e.Code, true
	}
	if e.Status == http.StatusForbidden {
		return cfgOr(e.Code, "Forbidden"), true
	}
	return "", false
}

// Activity is the part of a Bot Framework activity Rebook writes.
type Activity struct {
	Type        string       `json:"type"`
	Text        string       `json:"text,omitempty"`
	Attachments []Attachment `json:"attachments,omitempty"`
	Entities    []Entity     `json:"entities,omitempty"`
}

// Attachment carries an Adaptive Card.
type Attachment struct {
	ContentType string `json:"contentType"`
	Content     any    `json:"content"`
}

// Entity is a mention.
type Entity struct {
	Type      string  `json:"type"`
	Text      string  `json:"text"`
	Mentioned Account `json:"mentioned"`
}

// Account is a person or the bot.
type Account struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	AADObjectID string `json:"aadObjectId,omitempty"`
}

// CardContentType is an Adaptive Card attachment's content type.
const CardContentType = "application/vnd.microsoft.card.adaptive"

// CreateThread posts activity as the root of a new thread in a channel
// and returns the thread's conversation id and the root's activity id.
// A card root is attachment-only: an activity with text and a card is
// split by Teams and could not be edited later.
func (c *Client) CreateThread(ctx context.Context, channelID string, a Activity) (conversation, root string, err error) {
	if len(a.Attachments) > 0 {
		a.Text = ""
	}
	body := map[string]any{
		"isGroup": true, "bot": Account{ID: "28:" + c.appID}, "tenantId": c.tenantID,
		"channelData": map[string]any{"channel": map[string]string{"id": channelID}, "tenant": map[string]string{"id": c.tenantID}},
		"activity":    a,
	}
	var out struct {
		ID         string `json:"id"`
		ActivityID string `json:"activityId"`
	}
	if err := c.call(ctx, http.MethodPost, "v3/conversations", body, &out); err != nil {
		return "", "", err
	}
	if out.ActivityID == "" {
		return "", "", fmt.Errorf("teams: the new thread's answer has no activity id")
	}
	conversation = out.ID
	if !strings.Contains(conversation, ";messageid=") {
		conversation = channelID + ";messageid=" + out.ActivityID
	}
	return conversation, out.ActivityID, nil
}

// Reply posts activity into a thread and returns its id.
func (c *Client) Reply(ctx context.Context, conversation string, a Activity) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, http.MethodPost, "v3/conversations/"+conversation+"/activities", a, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Update replaces an activity (the thread's root card) in place.
func (c *Client) Update(ctx context.Context, conversation, activityID string, a Activity) error {
	a.Text = ""
	return c.call(ctx, http.MethodPut, "v3/conversations/"+conversation+"/activities/"+activityID, a, nil)
}

// CheckChannel asks whether the bot can post in a channel: Teams answers
// its roster only to a bot installed in the channel's team.
func (c *Client) CheckChannel(ctx context.Context, channelID string) error {
	return c.call(ctx, http.MethodGet, "v3/conversations/"+channelID+"/pagedmembers?pageSize=1", nil, nil)
}

// Channels lists a team's channels (the General channel's id is the
// team's), for checking a rule's channel.
func (c *Client) Channels(ctx context.Context, teamID string) ([]string, error) {
	var out struct {
		Conversations []struct {
			ID string `json:"id"`
		} `json:"conversations"`
	}
	if err := c.call(ctx, http.MethodGet, "v3/teams/"+url.PathEscape(teamID)+"/conversations", nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out.Conversations))
	for _, c := range out.Conversations {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// maxActivity caps what Rebook sends: Teams refuses much over 28 KiB in
// some paths, and a request's card is a fraction of that.
const maxActivity = 28 << 10

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		if len(b) > maxActivity {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "MessageSizeTooBig", Message: "Rebook will not send this much"}
		}
		body = bytes.NewReader(b)
	}
	tok, err := c.tokens.Token()
	if err != nil {
		return fmt.Errorf("teams: token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.service+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("teams: %s %s: %w", method, strings.SplitN(path, "/", 3)[1], err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return refusal(resp, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("teams: unreadable answer: %w", err)
		}
	}
	return nil
}

// refusal reads the Connector's error in either of its shapes.
func refusal(resp *http.Response, raw []byte) error {
	e := &Error{Status: resp.StatusCode}
	var std struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	var alt struct {
		ErrorCode any    `json:"errorCode"`
		Message   string `json:"message"`
	}
	switch {
	case json.Unmarshal(raw, &std) == nil && std.Error.Code != "":
		e.Code, e.Message = std.Error.Code, std.Error.Message
	case json.Unmarshal(raw, &alt) == nil && alt.ErrorCode != nil:
		var sub struct{ SubCode string }
		if json.Unmarshal([]byte(alt.Message), &sub) == nil && sub.SubCode != "" {
			e.Code = sub.SubCode
		} else {
			e.Code = fmt.Sprint(alt.ErrorCode)
		}
	}
	if v := resp.Header.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(v); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			e.RetryAfter = time.Until(t)
		}
	}
	return e
}
