package dashboard

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/rebookhq/rebook/internal/grantflow"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
)

// The audit log's actions for a grant link made, and for everyone signed
// out by an admin.
const (
	ActionGrantLinkIssued   = "grant-link-issued"
	ActionSignedOutEveryone = "signed-out-everyone"
)

// admin shows the routing rules and the PKB grant's state (never its
// tokens), for admins only.
func (d *dashboard) admin(w http.ResponseWriter, r *http.Request) {
	u := signin.FromContext(r.Context())
	if !u.Has(signin.Admin) {
		http.Error(w, "the admin page is for admins", http.StatusForbidden)
		return
	}
	data, err := d.adminData(r, u)
	if err != nil {
		d.Log.Error("dashboard: admin page", "err", err)
		http.Error(w, "could not read the rules or the grant; try again", http.StatusInternalServerError)
		return
	}
	d.render(w, "admin", data)
}

func (d *dashboard) adminData(r *http.Request, u *signin.User) (map[string]any, error) {
	rules, err := d.Store.Rules(r.Context())
	if err != nil {
		return nil, err
	}
	data := map[string]any{"Title": "Admin", "User": u, "Rules": rules, "ClientID": d.PKBClientID}
	if d.PKBClientID != "" {
		g, err := d.Store.Grant(r.Context(), d.PKBClientID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			data["Grant"] = map[string]any{"Status": g.Status, "NeedKind": g.NeedKind, "NeededSince": g.NeededSince,
				"LastError": g.LastError, "UpdatedAt": g.UpdatedAt, "Expires": g.AccessExpiresAt}
		}
	}
	return data, nil
}

// grantLink makes a single-use grant link, as `starter grant-link` does,
// for the admin to give to the clinician who will grant access.
func (d *dashboard) grantLink(w http.ResponseWriter, r *http.Request) {
	u := signin.FromContext(r.Context())
	if !u.Has(signin.Admin) {
		http.Error(w, "grant links are for admins", http.StatusForbidden)
		return
	}
	if d.PKBClientID == "" || d.GrantLinkURL == nil {
		http.Error(w, "PKB is not configured here", http.StatusConflict)
		return
	}
	link, err := d.Store.NewGrantLink(r.Context(), d.PKBClientID, u.Name, grantflow.LinkTTL)
	if err == nil {
		err = d.Store.Audit(r.Context(), store.AuditEntry{Actor: u.Name, Action: ActionGrantLinkIssued, Subject: "pkb-grant/" + d.PKBClientID,
			Detail: map[string]string{"via": "web", "subject": u.Subject}})
	}
	if err != nil {
		d.Log.Error("dashboard: grant link", "err", err)
		http.Error(w, "could not make a grant link; try again", http.StatusInternalServerError)
		return
	}
	d.Log.Info("grant link issued", "user", u.Name, "via", "web")
	data, err := d.adminData(r, u)
	if err != nil {
		http.Error(w, "could not read the rules or the grant; try again", http.StatusInternalServerError)
		return
	}
	until := d.Now().Add(grantflow.LinkTTL)
	data["Link"], data["LinkUntil"] = d.GrantLinkURL(link), &until
	d.render(w, "admin", data)
}

// signOutEveryone ends every session at once, the admin's own included:
// after a lost laptop, a leaked cookie, or roles changed in a hurry.
func (d *dashboard) signOutEveryone(w http.ResponseWriter, r *http.Request) {
	u := signin.FromContext(r.Context())
	if !u.Has(signin.Admin) {
		http.Error(w, "signing everyone out is for admins", http.StatusForbidden)
		return
	}
	n, err := d.Auth.EndAllSessions(r.Context())
	if err != nil {
		d.Log.Error("dashboard: sign out everyone", "err", err)
		http.Error(w, "could not sign everyone out; try again", http.StatusInternalServerError)
		return
	}
	if err := d.Store.Audit(r.Context(), store.AuditEntry{Actor: u.Name, Action: ActionSignedOutEveryone, Subject: "sessions",
		Detail: map[string]string{"sessions": strconv.FormatInt(n, 10), "subject": u.Subject}}); err != nil {
		d.Log.Error("dashboard: sign out everyone: audit", "err", err)
	}
	d.Log.Info("everyone signed out", "user", u.Name, "sessions", n)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
