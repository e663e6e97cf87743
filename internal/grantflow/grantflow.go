// Package grantflow is how a clinician grants Rebook access to PKB:
// /oauth/start, opened from a single-use grant link an admin was given
// (`starter grant-link`, or the admins' Slack alert), sends them to PKB's
// consent page with a fresh single-use state, and /oauth/callback checks
// that state, exchanges the code and stores the token pair sealed. Without
// a live link /oauth/start answers 401: nobody else can replace the trust's
// grant. A denied, replayed, expired or forged callback is refused with a
// page that says why, and changes nothing.
package grantflow

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"time"

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
	m.HandleFunc("GET /oauth/start", h.start)
	m.HandleFunc("GET /oauth/callback", h.callback)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rebook: {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}</style></head>
<body><h1>{{.Title}}</h1>{{range .Lines}}<p>{{.}}</p>{{end}}</body></html>
`))

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

func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	link := r.URL.Query().Get(LinkParam)
	if link == "" {
		page(w, http.StatusUnauthorized, "A grant link is needed", "Only an admin can start Rebook's access to PKB.", again)
		return
	}
	issuedBy, err := h.Store.ConsumeGrantLink(r.Context(), link, h.OAuth.ClientID)
	switch {
	case errors.Is(err, store.ErrLinkUnknown) || errors.Is(err, store.ErrLinkExpired):
		h.Log.Warn("oauth start refused: grant link unknown, used or expired")
		page(w, http.StatusUnauthorized, "This grant link was used already, has expired, or was not made by Rebook",
			"Grant links work once, for 30 minutes. Nothing was changed.", again)
		return
	case err != nil:
		h.Log.Error("oauth start: cannot read grant link", "err", err)
		page(w, http.StatusServiceUnavailable, "Rebook cannot start the grant right now", "Its database did not answer. Please try again in a minute.")
		return
	}
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
		Detail: map[string]string{"started_by": startedBy}})
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
