// Package dashboard is the teams' web view, served by `starter serve`
// behind sign-in: the open requests of the signed-in person's teams, a
// request's page with its timeline and the same Claim, Done and Can't
// action as the Slack buttons, and the reports. Everything it loads is
// served from this package (no CDN).
package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/nhsnumber"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/rebookhq/rebook/internal/wfclient"
	"github.com/rebookhq/rebook/workflows"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ActionViewedPatient is the audit log's action for a view of a
// request's patient details.
const ActionViewedPatient = "viewed-patient-details"

// ActionWebPress is the audit log's action for a button pressed on the
// web, applied or refused, with who pressed it (display name and stable
// subject).
const ActionWebPress = "web-press"

// Requests applies a staff action to a request's workflow (wfclient).
type Requests interface {
	StaffAction(ctx context.Context, workflowID string, a workflows.StaffAction) (string, error)
}

// Patient is what a request's page shows of its patient, read from PKB
// when asked for and never kept.
type Patient struct {
	Name, NHSNumber, BirthDate string
	Subject, Text              string
}

// Patients reads a request's patient details from PKB.
type Patients interface {
	Patient(ctx context.Context, r store.Request) (Patient, error)
}

// Options are what the dashboard serves with.
type Options struct {
	Store    *store.Store
	Auth     *signin.Auth
	Requests Requests
	// Patients may be nil (no PKB configured): the page says so.
	Patients   Patients
	TemporalUI string
	Namespace  string
	// PKBClientID names the grant the admin page shows; GrantLinkURL
	// turns a grant link into the URL a clinician opens.
	PKBClientID  string
	GrantLinkURL func(link string) string
	Log          *slog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

type dashboard struct {
	Options
	pages *template.Template
}

// Register adds the dashboard's pages to m, each behind sign-in.
func Register(m *http.ServeMux, o Options) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	d := &dashboard{Options: o}
	d.pages = template.Must(template.New("").Funcs(template.FuncMap{
		"uk": func(t *time.Time) string {
			if t == nil {
				return "—"
			}
			return t.In(subject.London()).Format("Mon 2 Jan 2006 15:04")
		},
		"when": func(t time.Time) string { return t.In(subject.London()).Format("2 Jan 2006 15:04") },
		"now":  func() string { return d.Now().In(subject.London()).Format("15:04:05") },
		"age":  func(t time.Time) string { return span(d.Now().Sub(t)) },
		"sla":  d.sla,
		// The NHS number as the NHS writes it: 999 123 4567.
		"nhsNumber": func(n string) string {
			digits := strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, n)
			if len(digits) != 10 {
				return n
			}
			return nhsnumber.Format(digits)
		},
		"stateTag": stateTag,
		"channel": func(c string) string {
			_, where := activities.Place(c)
			return where
		},
	}).ParseFS(templateFS, "templates/*.html"))

	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	page := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, o.Auth.Page(h)) }
	m.Handle("GET /{$}", http.RedirectHandler("/requests", http.StatusSeeOther))
	page("GET /requests", d.list)
	page("GET /requests/{ref}", d.request)
	page("POST /requests/{ref}/action", d.action)
	page("POST /requests/{ref}/patient", d.patient)
	page("GET /reports", d.reports)
	page("GET /reports.csv", d.reportCSV)
	page("GET /reports/chart.svg", d.reportSVG)
	page("GET /admin", d.admin)
	page("POST /admin/grant-link", d.grantLink)
	page("POST /admin/sign-out-everyone", d.signOutEveryone)
}

// stateTag is a state's NHS tag colour: blue while it waits on a team,
// yellow in triage, green once claimed or done, grey once closed
// otherwise.
func stateTag(state string) string {
	switch state {
	case workflows.StateTriaged:
		return "nhsuk-tag--yellow"
	case workflows.StateClaimed:
		return "nhsuk-tag--aqua-green"
	case workflows.StateCompleted, workflows.StateTriagedThenCompleted:
		return "nhsuk-tag--green"
	case workflows.StateClosedByStaff, workflows.StateEnded:
		return "nhsuk-tag--grey"
	}
	return "nhsuk-tag--blue"
}

// span says a duration the way a ward clerk would.
func span(d time.Duration) string {
	switch {
	case d < 0:
		d = -d
		fallthrough
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func (d *dashboard) sla(due, closed *time.Time) template.HTML {
	switch {
	case due == nil:
		return "—"
	case closed != nil && closed.After(*due):
		return template.HTML(`<span class="overdue">closed ` + span(closed.Sub(*due)) + ` late</span>`)
	case closed != nil:
		return "met"
	}
	left := due.Sub(d.Now())
	if left < 0 {
		return template.HTML(`<span class="overdue">overdue by ` + span(-left) + `</span>`)
	}
	return template.HTML(`<span class="due">due in ` + span(left) + `</span>`)
}

func (d *dashboard) render(w http.ResponseWriter, name string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages name requests and, on request, patients: never cached.
	w.Header().Set("Cache-Control", "no-store")
	if err := d.pages.ExecuteTemplate(w, name, data); err != nil {
		d.Log.Error("dashboard: render", "page", name, "err", err)
	}
}

var ages = []struct{ Value, Label string }{{"1h", "1 hour"}, {"4h", "4 hours"}, {"24h", "1 day"}, {"72h", "3 days"}, {"168h", "1 week"}}

func (d *dashboard) list(w http.ResponseWriter, r *http.Request) {
	u := signin.FromContext(r.Context())
	q := r.URL.Query()
	f := store.RequestFilter{Team: q.Get("team"), Specialty: q.Get("specialty"), Type: q.Get("type"), State: q.Get("state"), Limit: 501}
	if !u.SeesAll() {
		// Fails closed: staff whose sign-in named no team (an identity
		// provider that left the groups out) see no team's requests.
		f.Teams = append([]string{}, u.Teams...)
	}
	if a := q.Get("age"); a != "" {
		if age, err := time.ParseDuration(a); err == nil && age > 0 {
			f.OlderThan = age
		}
	}
	rows, err := d.Store.FindRequests(r.Context(), f)
	if err != nil {
		d.Log.Error("dashboard: list requests", "err", err)
		http.Error(w, "could not read the requests; try again", http.StatusInternalServerError)
		return
	}
	capped := len(rows) == f.Limit
	if capped {
		rows = rows[:f.Limit-1]
	}
	data := map[string]any{"Title": "Requests", "User": u, "Rows": rows, "Capped": capped, "F": f, "Age": q.Get("age")}
	if q.Get("part") == "rows" {
		d.render(w, "rows", data)
		return
	}
	facets, err := d.Store.Facets(r.Context())
	if err != nil {
		d.Log.Error("dashboard: facets", "err", err)
	}
	if !u.SeesAll() {
		facets.Teams = u.Teams
	}
	q.Set("part", "rows")
	data["Facets"], data["Ages"], data["RowsURL"] = facets, ages, "/requests?"+q.Encode()
	data["Types"] = []string{"cancel", "change"}
	d.render(w, "requests", data)
}

// find reads the request a page names and checks the user may see it.
func (d *dashboard) find(w http.ResponseWriter, r *http.Request) (store.Request, *signin.User, bool) {
	u := signin.FromContext(r.Context())
	req, err := d.Store.RequestByRef(r.Context(), r.PathValue("ref"))
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return req, u, false
	}
	if errors.Is(err, store.ErrAmbiguousRef) {
		http.Error(w, "two requests share this older reference: find the request in the list by its team and date", http.StatusConflict)
		return req, u, false
	}
	if err != nil {
		http.Error(w, "could not read the request; try again", http.StatusInternalServerError)
		return req, u, false
	}
	if !u.MaySee(req.Team) {
		http.Error(w, "this request belongs to another team", http.StatusForbidden)
		return req, u, false
	}
	return req, u, true
}

func (d *dashboard) request(w http.ResponseWriter, r *http.Request) {
	req, u, ok := d.find(w, r)
	if !ok {
		return
	}
	data, err := d.requestData(r.Context(), req, u)
	if err != nil {
		d.Log.Error("dashboard: audit trail", "err", err)
		http.Error(w, "could not read the request's timeline; try again", http.StatusInternalServerError)
		return
	}
	// What the person's last action did, as Rebook wrote it: never text
	// from the URL, which anyone could put in a link.
	switch kind, text := d.Auth.TakeFlash(w, r); kind {
	case "said":
		data["Said"] = text
	case "problem":
		data["Problem"] = text
	}
	if r.URL.Query().Get("part") == "facts" {
		d.render(w, "facts", data)
		return
	}
	d.render(w, "request", data)
}

func (d *dashboard) requestData(ctx context.Context, req store.Request, u *signin.User) (map[string]any, error) {
	trail, err := d.Store.AuditTrail(ctx, req.WorkflowID)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"Title": req.Ref, "User": u, "R": req, "Trail": trail,
		"Claim": workflows.ActionClaim, "Done": workflows.ActionDone, "Cant": workflows.ActionCantAction,
		"RebookingYes": workflows.ActionRebookingYes, "RebookingNo": workflows.ActionRebookingNo}
	if q := openQuestion(trail); q != nil {
		data["Asking"] = q
	}
	if d.TemporalUI != "" {
		data["WorkflowURL"] = d.TemporalUI + "/namespaces/" + url.PathEscape(d.Namespace) + "/workflows/" + url.PathEscape(req.WorkflowID)
	}
	return data, nil
}

// openQuestion is the last "Is this the rebooking?" the request asked
// that nobody has answered, from its audit trail; nil when none.
func openQuestion(trail []store.AuditEntry) map[string]string {
	var open map[string]string
	for _, e := range trail {
		switch e.Action {
		case workflows.AuditRebookingAsked:
			open = e.Detail
		case workflows.ActionRebookingYes, workflows.ActionRebookingNo:
			if open != nil && e.Detail["appointment"] == open["appointment"] {
				open = nil
			}
		}
	}
	return open
}

// action applies Claim, Done or Can't action through the same workflow
// update as the Slack buttons, and says what happened.
func (d *dashboard) action(w http.ResponseWriter, r *http.Request) {
	req, u, ok := d.find(w, r)
	if !ok {
		return
	}
	a := workflows.StaffAction{Action: r.PostFormValue("action"), User: u.Name, Note: strings.TrimSpace(r.PostFormValue("reason"))}
	switch a.Action {
	case workflows.ActionClaim, workflows.ActionDone:
		a.Note = ""
	case workflows.ActionRebookingYes, workflows.ActionRebookingNo:
		a.Note, a.Candidate = "", r.PostFormValue("candidate")
	case workflows.ActionCantAction:
		if a.Note == "" {
			d.back(w, r, req.Ref, "problem", "Say why it can't be actioned.")
			return
		}
		if len(a.Note) > 300 {
			a.Note = a.Note[:300]
		}
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	said, err := d.Requests.StaffAction(ctx, req.WorkflowID, a)
	log := d.Log.With("workflow_id", req.WorkflowID, "action", a.Action, "user", u.Name, "via", "web")
	// The workflow records the press under the display name; this row
	// ties it to the identity provider's stable subject, refused or not.
	outcome := "applied"
	if err != nil {
		outcome = "refused"
	}
	if aerr := d.Store.Audit(r.Context(), store.AuditEntry{Actor: u.Name, Action: ActionWebPress, Subject: req.WorkflowID,
		Detail: map[string]string{"action": a.Action, "outcome": outcome, "subject": u.Subject}}); aerr != nil {
		log.Error("dashboard: audit a press", "err", aerr)
	}
	if err != nil {
		log.Info("staff action refused", "why", err)
		d.back(w, r, req.Ref, "problem", wfclient.Refusal(err))
		return
	}
	log.Info("staff action applied")
	d.back(w, r, req.Ref, "said", said)
}

func (d *dashboard) back(w http.ResponseWriter, r *http.Request, ref, key, text string) {
	d.Auth.SetFlash(w, r, key, text)
	http.Redirect(w, r, "/requests/"+url.PathEscape(ref), http.StatusSeeOther)
}

// patient shows the request's patient details, read from PKB now, and
// writes the view to the audit log before showing them.
func (d *dashboard) patient(w http.ResponseWriter, r *http.Request) {
	req, u, ok := d.find(w, r)
	if !ok {
		return
	}
	// The view is recorded before the page is read, so its timeline shows
	// it, and before PKB is asked, so no view goes unrecorded. A redacted
	// request shows no details, so there is no view to record.
	if d.Patients != nil && req.RedactedAt == nil {
		if err := d.Store.Audit(r.Context(), store.AuditEntry{Actor: u.Name, Action: ActionViewedPatient, Subject: req.WorkflowID,
			Detail: map[string]string{"ref": req.Ref, "via": "web", "subject": u.Subject}}); err != nil {
			d.Log.Error("dashboard: audit a patient view", "err", err)
			http.Error(w, "the view could not be recorded, so the details are not shown; try again", http.StatusInternalServerError)
			return
		}
	}
	data, err := d.requestData(r.Context(), req, u)
	if err != nil {
		http.Error(w, "could not read the request's timeline; try again", http.StatusInternalServerError)
		return
	}
	switch {
	case req.RedactedAt != nil:
		data["Problem"] = "This request's patient identifiers were removed on " + req.RedactedAt.In(subject.London()).Format("2 Jan 2006") +
			", under the retention period after it closed, so its patient cannot be shown. Its timeline is kept."
		d.render(w, "request", data)
		return
	case d.Patients == nil:
		data["Problem"] = "PKB is not configured here, so the patient's details cannot be read."
		d.render(w, "request", data)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	p, err := d.Patients.Patient(ctx, req)
	if err != nil {
		d.Log.Warn("dashboard: patient details", "workflow_id", req.WorkflowID, "err", err)
		data["Problem"] = "PKB did not give the patient's details: " + err.Error()
	} else {
		data["Patient"] = p
	}
	d.render(w, "request", data)
}
