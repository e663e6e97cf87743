// Package frontdoor is `starter serve`'s HTTP surface: Slack interactions,
// the PKB grant flow, the payload codec for the Temporal Web UI, a
// request's page (what the Slack card links to) and the health check.
package frontdoor

import (
	"bytes"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/internal/grantflow"
	"github.com/rebookhq/rebook/internal/health"
	"github.com/rebookhq/rebook/internal/interactions"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
)

// Options are what the front door serves with.
type Options struct {
	Store        *store.Store
	Interactions *interactions.Handler
	// Feed serves POST /feed/fhir/Appointment when set: the PAS's copies.
	Feed http.Handler
	// Grant serves /oauth/start and /oauth/callback when set.
	Grant *grantflow.Handler
	// EncryptionKey enables /codec; CodecOrigin is the Web UI's origin
	// allowed to call it from the browser.
	EncryptionKey []byte
	CodecOrigin   string
	// TemporalUI links each request page to its workflow.
	TemporalUI string
	Namespace  string
	Log        *slog.Logger
}

// New builds the handler.
func New(o Options) (http.Handler, error) {
	m := http.NewServeMux()
	if o.Interactions != nil {
		m.Handle("POST /slack/interactions", o.Interactions)
	}
	if o.EncryptionKey != nil {
		h, err := codec.Handler(o.EncryptionKey)
		if err != nil {
			return nil, err
		}
		m.Handle("/codec/", cors(o.CodecOrigin, http.StripPrefix("/codec", h)))
	}
	m.Handle("GET /healthz", health.Handler(health.Check{Name: "postgres", Ping: o.Store.Ping}))
	m.HandleFunc("GET /requests/{ref}", o.requestPage)
	if o.Grant != nil {
		o.Grant.Register(m)
	}
	if o.Feed != nil {
		m.Handle("POST /feed/fhir/Appointment", o.Feed)
	}
	return limitRate(limitBody(m)), nil
}

// Body limits: the codec takes a page of payloads from the Web UI (each
// payload is under Temporal's 2 MiB limit); nothing else takes more than
// a Slack interaction.
const (
	bodyLimit      = 1 << 20
	codecBodyLimit = 4 << 20
)

// limitBody answers 413 to a body over its path's limit, before the
// handler reads any of it, so a large POST cannot grow the process.
func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int64(bodyLimit)
		if strings.HasPrefix(r.URL.Path, "/codec/") {
			n = codecBodyLimit
		}
		if r.ContentLength > n {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, n))
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			if err != nil {
				http.Error(w, "could not read the request body", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// Server is the front door's HTTP server: every phase of a connection has
// a deadline, so a slow or stalled client cannot hold one open.
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

func cors(origin string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin != "" && r.Header.Get("Origin") == origin {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace")
			w.Header().Set("Access-Control-Allow-Credentials", "true")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

var page = template.Must(template.New("request").Funcs(template.FuncMap{
	"uk": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.In(subject.London()).Format("Mon 2 Jan 2006 15:04")
	},
	"when": func(t time.Time) string { return t.In(subject.London()).Format("2 Jan 2006 15:04") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rebook {{.R.Ref}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
th{text-align:left;padding-right:1rem;vertical-align:top}td,th{padding:.2rem .5rem .2rem 0}</style></head>
<body>
<h1>Request {{.R.Ref}}</h1>
<table>
<tr><th>State</th><td>{{.R.State}}</td></tr>
<tr><th>Request</th><td>{{if .R.RequestType}}{{.R.RequestType}}{{else}}not understood{{end}}</td></tr>
<tr><th>Specialty</th><td>{{.R.Specialty}}</td></tr>
<tr><th>Clinic</th><td>{{.R.Clinic}}</td></tr>
<tr><th>Appointment</th><td>{{uk .R.AppointmentStart}}</td></tr>
<tr><th>Team</th><td>{{.R.Team}}</td></tr>
{{if .R.Triage}}<tr><th>Why triage</th><td>{{.R.Reason}}</td></tr>{{end}}
{{if .R.Flags}}<tr><th>Flags</th><td>{{.R.Flags}}</td></tr>{{end}}
<tr><th>Received</th><td>{{when .R.ReceivedAt}}</td></tr>
{{if .R.ClaimedBy}}<tr><th>Claimed by</th><td>{{.R.ClaimedBy}}</td></tr>{{end}}
{{if .R.ClosedAt}}<tr><th>Closed</th><td>{{uk .R.ClosedAt}} {{.R.CloseNote}}</td></tr>{{end}}
</table>
{{if .WorkflowURL}}<p><a href="{{.WorkflowURL}}">Open in the Temporal Web UI</a></p>{{end}}
<h2>History</h2>
<table>{{range .Trail}}<tr><td>{{when .At}}</td><td>{{.Action}}</td><td>{{.Actor}}</td></tr>{{end}}</table>
</body></html>
`))

func (o Options) requestPage(w http.ResponseWriter, r *http.Request) {
	req, err := o.Store.RequestByRef(r.Context(), r.PathValue("ref"))
	if errors.Is(err, store.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "could not read the request", http.StatusInternalServerError)
		return
	}
	trail, err := o.Store.AuditTrail(r.Context(), req.WorkflowID)
	if err != nil {
		http.Error(w, "could not read the request's history", http.StatusInternalServerError)
		return
	}
	data := map[string]any{"R": req, "Trail": trail}
	if o.TemporalUI != "" {
		data["WorkflowURL"] = o.TemporalUI + "/namespaces/" + o.Namespace + "/workflows/" + req.WorkflowID
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, data)
}
