package signin

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// flow is what a sign-in carries from /signin to the provider's callback,
// in a short-lived sealed cookie: nothing about it is kept server-side.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
}

const flowTTL = 10 * time.Minute

var signinTmpl = template.Must(template.New("signin").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · Rebook</title>
<link rel="stylesheet" href="/static/nhsuk/nhsuk-frontend.min.css"><link rel="stylesheet" href="/static/rebook.css">
<link rel="icon" href="/static/nhsuk/assets/images/favicon.ico"></head>
<body class="rebook-narrow"><a class="nhsuk-skip-link" href="#maincontent">Skip to main content</a>
<header class="nhsuk-header" role="banner"><div class="nhsuk-header__container nhsuk-width-container"><div class="nhsuk-header__service">
<span class="nhsuk-header__service-logo"><svg class="nhsuk-header__logo" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 80" height="40" width="100" focusable="false" role="img" aria-label="NHS"><title>NHS</title><path fill="currentcolor" d="M200 0v80H0V0h200Zm-27.5 5.5c-14.5 0-29 5-29 22 0 10.2 7.7 13.5 14.7 16.3l.7.3c5.4 2 10.1 3.9 10.1 8.4 0 6.5-8.5 7.5-14 7.5s-12.5-1.5-16-3.5L135 70c5.5 2 13.5 3.5 20 3.5 15.5 0 32-4.5 32-22.5 0-19.5-25.5-16.5-25.5-25.5 0-5.5 5.5-6.5 12.5-6.5a35 35 0 0 1 14.5 3l4-13.5c-4.5-2-12-3-20-3Zm-131 2h-22l-14 65H22l9-45h.5l13.5 45h21.5l14-65H64l-9 45h-.5l-13-45Zm63 0h-18l-13 65h17l6-28H117l-5.5 28H129l13.5-65H125L119.5 32h-20l5-24.5Z"/></svg>
<span class="nhsuk-header__service-name">Rebook</span></span></div></div></header>
<div class="nhsuk-width-container"><main class="nhsuk-main-wrapper" id="maincontent">
<h1>Sign in to Rebook</h1>
{{with .User}}<p>Signed in as <strong>{{.Name}}</strong>. <a href="/requests">Go to the requests</a>.</p>
<form method="post" action="/signout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button class="nhsuk-button nhsuk-button--secondary" type="submit">Sign out</button></form>
<p>Or sign in again:</p>{{end}}
{{if .Problem}}<div class="nhsuk-error-summary"><div role="alert"><h2 class="nhsuk-error-summary__title">There is a problem</h2><div class="nhsuk-error-summary__body"><p class="problem">{{.Problem}}</p></div></div></div>{{end}}
{{if .IdP}}<p><a class="nhsuk-button nhsuk-button--login" href="/signin?idp=1&amp;next={{.Next}}">Sign in with your organisation's account</a></p>{{end}}
{{if .Local}}<h2>Local users</h2><p>This machine only, no identity provider.</p>
{{range .Local}}<form method="post" action="/signin/local">
<input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="next" value="{{$.Next}}">
<input type="hidden" name="user" value="{{.Name}}">
<div class="nhsuk-hint" id="hint-{{.Name}}">{{range $i, $r := .Roles}}{{if $i}}, {{end}}{{$r}}{{end}}{{if .Teams}} of {{range $i, $t := .Teams}}{{if $i}}, {{end}}{{$t}}{{end}}{{end}}</div>
<button class="nhsuk-button nhsuk-button--secondary" type="submit" id="signin-{{.Name}}" aria-describedby="hint-{{.Name}}">Sign in as {{.Name}}</button>
</form>{{end}}{{end}}
{{if .Elsewhere}}<div class="nhsuk-warning-callout"><h2 class="nhsuk-warning-callout__label"><span role="text"><span class="nhsuk-u-visually-hidden">Important: </span>Local users</span></h2><p>Local users sign in only on the machine Rebook runs on, not through a proxy or from another address.</p></div>{{end}}
{{if not (or .IdP .Local .Elsewhere)}}<div class="nhsuk-error-summary"><div role="alert"><h2 class="nhsuk-error-summary__title">Sign-in is not configured</h2><div class="nhsuk-error-summary__body"><p class="problem">Set REBOOK_OIDC_ISSUER, REBOOK_OIDC_CLIENT_ID and REBOOK_OIDC_CLIENT_SECRET for the trust's identity provider.</p></div></div></div>{{end}}
</main></div></body></html>`))

func (a *Auth) signinPage(w http.ResponseWriter, r *http.Request) {
	next := localPath(r.URL.Query().Get("next"))
	signedIn := a.session(r)
	var local []LocalUser
	if fromThisMachine(r) {
		local = a.o.LocalUsers
	}
	if a.oauth != nil && (r.URL.Query().Get("idp") != "" || len(local) == 0 && signedIn == nil) {
		a.toProvider(w, r, next)
		return
	}
	f := flow{State: random(), Next: next}
	v, err := a.sealCookie(flowCookie, f)
	if err != nil {
		http.Error(w, "could not start sign-in", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, a.cookie(flowCookie, v, flowTTL))
	status := http.StatusOK
	if a.oauth == nil && len(local) == 0 {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = signinTmpl.Execute(w, map[string]any{"IdP": a.oauth != nil, "Local": local, "Elsewhere": len(local) < len(a.o.LocalUsers), "CSRF": f.State, "Next": next, "User": signedIn})
}

// toProvider sends the browser to the identity provider with state, a
// nonce and a PKCE challenge, each checked on the way back.
func (a *Auth) toProvider(w http.ResponseWriter, r *http.Request, next string) {
	f := flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: next}
	v, err := a.sealCookie(flowCookie, f)
	if err != nil {
		http.Error(w, "could not start sign-in", http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, a.cookie(flowCookie, v, flowTTL))
	http.Redirect(w, r, a.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

func (a *Auth) readFlow(w http.ResponseWriter, r *http.Request) (flow, bool) {
	var f flow
	c, err := r.Cookie(flowCookie)
	ok := err == nil && a.openCookie(c.Value, flowCookie, &f)
	http.SetCookie(w, a.cookie(flowCookie, "", -time.Second))
	return f, ok
}

func (a *Auth) localSignin(w http.ResponseWriter, r *http.Request) {
	f, ok := a.readFlow(w, r)
	if !ok || !a.validCSRF(r, f.State) {
		http.Error(w, "the sign-in form was stale; go back and reload it", http.StatusForbidden)
		return
	}
	if !fromThisMachine(r) {
		a.o.Log.Warn("local sign-in refused: not from this machine")
		http.Error(w, "local users sign in only from the machine Rebook runs on; sign in through your organisation's identity provider", http.StatusForbidden)
		return
	}
	name := r.PostFormValue("user")
	i := slices.IndexFunc(a.o.LocalUsers, func(u LocalUser) bool { return u.Name == name })
	if i < 0 {
		http.Error(w, "no such local user", http.StatusForbidden)
		return
	}
	lu := a.o.LocalUsers[i]
	if err := a.startSession(w, r, User{Name: lu.Name, Roles: lu.Roles, Teams: lu.Teams, Local: true, Subject: "local:" + lu.Name}, ""); err != nil {
		http.Error(w, "could not sign in", http.StatusInternalServerError)
		return
	}
	a.o.Log.Info("signed in", "user", lu.Name, "how", "local user")
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

func (a *Auth) callback(w http.ResponseWriter, r *http.Request) {
	if a.oauth == nil {
		http.NotFound(w, r)
		return
	}
	f, ok := a.readFlow(w, r)
	q := r.URL.Query()
	if !ok || f.Nonce == "" || q.Get("state") != f.State {
		http.Error(w, "sign-in expired or was not started here; start again at /signin", http.StatusBadRequest)
		return
	}
	if e := q.Get("error"); e != "" {
		a.o.Log.Info("sign-in refused by the identity provider", "error", e)
		http.Error(w, "the identity provider refused the sign-in ("+e+")", http.StatusForbidden)
		return
	}
	tok, err := a.oauth.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		a.o.Log.Warn("sign-in: code exchange failed", "err", err)
		http.Error(w, "the identity provider did not complete the sign-in", http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(r.Context(), raw)
	if err != nil || idt.Nonce != f.Nonce {
		a.o.Log.Warn("sign-in: ID token refused", "err", err)
		http.Error(w, "the identity provider's answer could not be verified", http.StatusForbidden)
		return
	}
	u, err := a.user(idt)
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if err := a.startSession(w, r, *u, tok.RefreshToken); err != nil {
		http.Error(w, "could not sign in", http.StatusInternalServerError)
		return
	}
	a.o.Log.Info("signed in", "user", u.Name, "roles", u.Roles)
	http.Redirect(w, r, f.Next, http.StatusSeeOther)
}

// user reads who the token names and what they may do.
func (a *Auth) user(t *oidc.IDToken) (*User, error) {
	var claims map[string]any
	if err := t.Claims(&claims); err != nil {
		return nil, errors.New("the identity provider's token could not be read")
	}
	u := &User{}
	for _, k := range []string{"preferred_username", "email", "upn", "name"} {
		if s, _ := claims[k].(string); s != "" {
			u.Name = s
			break
		}
	}
	u.Subject = t.Subject
	if oid, _ := claims["oid"].(string); oid != "" {
		u.Subject = oid // Entra ID: the same across its applications
	}
	if u.Name == "" {
		u.Name = t.Subject
	}
	for _, r := range claimStrings(claims[a.o.RolesClaim]) {
		if role, ok := cutFold(r, "rebook."); ok && slices.Contains(roles, role) && !slices.Contains(u.Roles, role) {
			u.Roles = append(u.Roles, role)
		}
	}
	u.Teams = claimStrings(claims[a.o.TeamsClaim])
	if len(u.Roles) == 0 {
		return nil, fmt.Errorf("%s has no Rebook role (rebook.staff, rebook.operator or rebook.admin); ask your administrator", u.Name)
	}
	return u, nil
}

func (a *Auth) signout(w http.ResponseWriter, r *http.Request) {
	u := a.session(r)
	if u != nil && a.validCSRF(r, u.CSRF) {
		a.endSession(r)
		http.SetCookie(w, a.cookie(sessionCookie, "", -time.Second))
		a.o.Log.Info("signed out", "user", u.Name)
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// claimStrings reads a claim that is a string or a list of strings.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// cutFold cuts prefix from s ignoring case, and lowers what is left.
func cutFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return strings.ToLower(s[len(prefix):]), true
}
