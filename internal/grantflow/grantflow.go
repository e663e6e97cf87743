// Package grantflow is how a clinician grants Rebook access to PKB:
// /oauth/start, opened from a single-use grant link an admin was given
// (`starter grant-link`, or the admins' Slack alert), asks first: a GET
// only shows what will happen, since mail and chat link scanners open
// links too. Its button (a POST carrying a CSRF token) spends the link and
// sends the clinician to PKB's consent page with a fresh single-use state,
// and /oauth/callback checks
// that state, exchanges the code and stores the token pair sealed. Without
// a live link /oauth/start answers 401: nobody else can replace the trust's
// grant. A denied, replayed, expired or forged callback is refused with a
// page that says why, and changes nothing.
package grantflow

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/store"
)

// Granted is called after a grant is stored, to wake whoever waits for
// it (the TokenKeeper). Its error is logged, not shown.
type Granted func(ctx context.Context, clientID string) error

// Handler serves /oauth/start and /oauth/callback.
type Handler struct {
	Store    *store.Store
	OAuth    *pkb.OAuthConfig
	StateTTL time.Duration // 10 minutes if zero
	Granted  Granted
	Log      *slog.Logger
}

// Register mounts the two paths on m.
func (h *Handler) Register(m *http.ServeMux) {
	m.HandleFunc("GET /oauth/start", h.confirm)
	m.HandleFunc("POST /oauth/start", h.start)
	m.HandleFunc("GET /oauth/callback", h.callback)
}

// frameTop and frameBottom are the NHS design system's page around each
// of the grant's pages; .Title is the page's title.
const frameTop = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Rebook: {{.Title}}</title>
<link rel="stylesheet" href="/static/nhsuk/nhsuk-frontend.min.css"><link rel="icon" href="/static/nhsuk/assets/images/favicon.ico"></head>
<body><a class="nhsuk-skip-link" href="#maincontent">Skip to main content</a>
<header class="nhsuk-header" role="banner"><div class="nhsuk-header__container nhsuk-width-container"><div class="nhsuk-header__service">
<span class="nhsuk-header__service-logo"><svg class="nhsuk-header__logo" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 80" height="40" width="100" focusable="false" role="img" aria-label="NHS"><title>NHS</title><path fill="currentcolor" d="M200 0v80H0V0h200Zm-27.5 5.5c-14.5 0-29 5-29 22 0 10.2 7.7 13.5 14.7 16.3l.7.3c5.4 2 10.1 3.9 10.1 8.4 0 6.5-8.5 7.5-14 7.5s-12.5-1.5-16-3.5L135 70c5.5 2 13.5 3.5 20 3.5 15.5 0 32-4.5 32-22.5 0-19.5-25.5-16.5-25.5-25.5 0-5.5 5.5-6.5 12.5-6.5a35 35 0 0 1 14.5 3l4-13.5c-4.5-2-12-3-20-3Zm-131 2h-22l-14 65H22l9-45h.5l13.5 45h21.5l14-65H64l-9 45h-.5l-13-45Zm63 0h-18l-13 65h17l6-28H117l-5.5 28H129l13.5-65H125L119.5 32h-20l5-24.5Z"/></svg>
<span class="nhsuk-header__service-name">Rebook</span></span></div></div></header>
<div class="nhsuk-width-container"><main class="nhsuk-main-wrapper" id="maincontent">
`

const frameBottom = `</main></div></body></html>
`

var pageTmpl = template.Must(template.New("page").Parse(frameTop + `<h1>{{.Title}}</h1>{{range .Lines}}<p>{{.}}</p>{{end}}
` + frameBottom))

func page(w http.ResponseWriter, status int, title string, lines ...string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, map[string]any{"Title": title, "Lines": lines})
}

const again = "To grant access, start again from a fresh grant link: the newest one Rebook posted in the admins' Slack channel, or one an admin makes with `starter grant-link`."

// LinkTTL is how long a grant link can be used.
const LinkTTL = 30 * time.Minute

// LinkParam is the query parameter of /oauth/start that carries the link.
const LinkParam = "link"

var confirmTmpl = template.Must(template.New("confirm").Parse(frameTop + `<h1>Grant Rebook access to PKB</h1>
<p>Rebook reads your teams' appointment-request messages in Patients Know Best, and the appointments and patient records they concern (PKB scope CLINICIAN), so it can route each request to the team that acts on it.</p>
<div class="nhsuk-inset-text"><span class="nhsuk-u-visually-hidden">Information: </span><p>Continue only if you are the clinician asked to grant access. PKB will ask you to sign in and approve. Rebook records which PKB account granted access, when PKB names it.</p></div>
<p>This link was made for {{.IssuedBy}}. It works once.</p>
<form method="post" action="/oauth/start">
<input type="hidden" name="` + LinkParam + `" value="{{.Link}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button class="nhsuk-button" type="submit" id="continue-to-pkb">Continue to PKB</button>
</form>
` + frameBottom))

// csrfCookie carries the confirm page's token back with its POST. The
// grant page has no signed-in session to hang a token on, so the token is
// a double-submitted cookie: another site can make a browser post the
// form but cannot read or set this cookie.
const csrfCookie = "rebook_grant_csrf"

// confirm answers the GET of a grant link with what pressing on will do.
// It spends nothing: a scanner that fetches the link leaves it working.
func (h *Handler) confirm(w http.ResponseWriter, r *http.Request) {
	link := r.URL.Query().Get(LinkParam)
	issuedBy, ok := h.checkLink(w, r, link, h.Store.PeekGrantLink)
	if !ok {
		return
	}
	token := random()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: "/oauth/start", MaxAge: int(LinkTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil || strings.HasPrefix(h.OAuth.RedirectURL, "https:"), SameSite: http.SameSiteStrictMode})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = confirmTmpl.Execute(w, map[string]string{"Title": "grant access to PKB", "Link": link, "CSRF": token, "IssuedBy": issuedBy})
}

// checkLink answers for a missing, unknown, spent or expired link, and
// otherwise says who the link was made for.
func (h *Handler) checkLink(w http.ResponseWriter, r *http.Request, link string, look func(context.Context, string, string) (string, error)) (string, bool) {
	if link == "" {
		page(w, http.StatusUnauthorized, "A grant link is needed", "Only an admin can start Rebook's access to PKB.", again)
		return "", false
	}
	issuedBy, err := look(r.Context(), link, h.OAuth.ClientID)
	switch {
	case errors.Is(err, store.ErrLinkUnknown) || errors.Is(err, store.ErrLinkExpired):
		h.Log.Warn("oauth start refused: grant link unknown, used or expired")
		page(w, http.StatusUnauthorized, "This grant link was used already, has expired, or was not made by Rebook",
			"Grant links work once, for 30 minutes. Nothing was changed.", again)
		return "", false
	case err != nil:
		h.Log.Error("oauth start: cannot read grant link", "err", err)
		page(w, http.StatusServiceUnavailable, "Rebook cannot start the grant right now", "Its database did not answer. Please try again in a minute.")
		return "", false
	}
	return issuedBy, true
}

// start spends the link once the clinician has pressed on, and sends them
// to PKB's consent page.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		h.Log.Warn("oauth start refused: the confirm page's token is missing or wrong")
		page(w, http.StatusForbidden, "This request did not come from Rebook's grant page",
			"Open the grant link again and press Continue on the page it shows. Nothing was changed.")
		return
	}
	issuedBy, ok := h.checkLink(w, r, r.PostFormValue(LinkParam), h.Store.ConsumeGrantLink)
	if !ok {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Path: "/oauth/start", MaxAge: -1})
	ttl := h.StateTTL
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	state, err := h.Store.NewOAuthState(r.Context(), h.OAuth.ClientID, issuedBy, ttl)
	if err != nil {
		h.Log.Error("oauth start: cannot store state", "err", err)
		page(w, http.StatusServiceUnavailable, "Rebook cannot start the grant right now", "Its database did not answer. Please try again in a minute.")
		return
	}
	http.Redirect(w, r, h.OAuth.AuthCodeURL(state), http.StatusFound)
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		page(w, http.StatusBadRequest, "This is not a valid grant link", "It carries no state, so Rebook cannot tell it started it. Nothing was changed.", again)
		return
	}
	clientID, startedBy, err := h.Store.ConsumeOAuthState(r.Context(), state)
	switch {
	case errors.Is(err, store.ErrStateUnknown):
		h.Log.Warn("oauth callback refused: unknown or used state")
		page(w, http.StatusBadRequest, "This grant link was already used, or Rebook did not make it", "Nothing was changed.", again)
		return
	case errors.Is(err, store.ErrStateExpired):
		page(w, http.StatusBadRequest, "This grant link has expired", "Grant links last a few minutes. Nothing was changed.", again)
		return
	case err != nil:
		h.Log.Error("oauth callback: cannot read state", "err", err)
		page(w, http.StatusServiceUnavailable, "Rebook cannot finish the grant right now", "Its database did not answer. Nothing was changed.", again)
		return
	case clientID != h.OAuth.ClientID:
		page(w, http.StatusBadRequest, "This grant link is for another PKB client", "Nothing was changed.", again)
		return
	}
	if e := q.Get("error"); e != "" {
		h.Log.Info("oauth callback: PKB did not grant access", "error", e)
		page(w, http.StatusBadRequest, "Access was not granted", "PKB answered "+e+". Rebook's access is unchanged.", again)
		return
	}
	code := q.Get("code")
	if code == "" {
		page(w, http.StatusBadRequest, "PKB sent no authorization code", "Nothing was changed.", again)
		return
	}
	tok, err := pkb.Exchange(r.Context(), h.OAuth, code)
	if err != nil {
		h.Log.Warn("oauth callback: code exchange failed", "err", err)
		page(w, http.StatusBadGateway, "PKB did not accept the grant", "Rebook could not exchange the code PKB gave it ("+errKind(err)+"). Nothing was changed.", again)
		return
	}
	if err := h.Store.SaveGrant(r.Context(), pkbauth.Grant(h.OAuth.ClientID, tok)); err != nil {
		h.Log.Error("oauth callback: cannot store grant", "err", err)
		page(w, http.StatusServiceUnavailable, "Rebook could not keep the grant", "Its database did not answer. Please start again.", again)
		return
	}
	_ = h.Store.Audit(r.Context(), store.AuditEntry{Actor: "oauth-callback", Action: "pkb-granted", Subject: "pkb-grant/" + h.OAuth.ClientID,
		Detail: map[string]string{"started_by": startedBy, "pkb_account": Account(tok)}})
	if h.Granted != nil {
		if err := h.Granted(r.Context(), h.OAuth.ClientID); err != nil {
			h.Log.Warn("oauth callback: could not signal the token keeper", "err", err)
		}
	}
	h.Log.Info("pkb access granted", "client_id", h.OAuth.ClientID)
	page(w, http.StatusOK, "Access granted",
		"Rebook can now read your teams' appointment-request messages in PKB, and the appointments and patient records they concern (PKB scope CLINICIAN).",
		"Requests that were waiting for access carry on by themselves. Rebook keeps the access alive; if PKB ends it, the admins' Slack channel will be asked to grant it again.",
		"You can close this page.")
}

func errKind(err error) string {
	var pe *pkb.Error
	if errors.As(err, &pe) {
		return string(pe.Kind)
	}
	return "no answer"
}

// accountFields are where an OAuth token answer commonly names the account
// that granted. PKB documents none of them, so each is tried in turn.
var accountFields = []string{"user_id", "userId", "sub", "username", "email"}

// NotNamed is what the audit says when PKB's token answer names nobody.
const NotNamed = "not named by PKB's token answer"

// Account is the PKB account a token answer says granted it, or NotNamed.
func Account(tok *oauth2.Token) string {
	for _, f := range accountFields {
		if v, ok := tok.Extra(f).(string); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return NotNamed
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
