// Package frontdoor is `starter serve`'s HTTP surface: Slack interactions,
// the PKB grant flow, the payload codec for the Temporal Web UI (for
// operators only), sign-in and the dashboard (internal/dashboard), and
// the health check.
package frontdoor

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/internal/dashboard"
	"github.com/rebookhq/rebook/internal/grantflow"
	"github.com/rebookhq/rebook/internal/health"
	"github.com/rebookhq/rebook/internal/interactions"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
)

// Options are what the front door serves with.
type Options struct {
	Store        *store.Store
	Interactions *interactions.Handler
	// Teams serves POST /teams/messages when set: the Bot Connector's
	// activities (interactions.Teams).
	Teams http.Handler
	// Feed serves POST /feed/fhir/Appointment when set: the PAS's copies.
	Feed http.Handler
	// Grant serves /oauth/start and /oauth/callback when set.
	Grant *grantflow.Handler
	// EncryptionKey enables /codec; CodecOrigin is the Web UI's origin
	// allowed to call it from the browser.
	EncryptionKey []byte
	// OldEncryptionKeys let /codec open payloads sealed before a rotation.
	OldEncryptionKeys [][]byte
	CodecOrigin       string
	// Auth guards every human-facing page and the codec.
	Auth *signin.Auth
	// Dashboard serves the teams' web view; its Store and Auth are the
	// front door's.
	Dashboard dashboard.Options
	// Metrics serves GET /metrics when set: counts only, no patient data.
	Metrics http.Handler
	Log     *slog.Logger
	// HSTS asks browsers to use https only (the public URL is https).
	HSTS bool
	// Health are more checks for /healthz (the MLLP listener's).
	Health []health.Check
}

// New builds the handler.
func New(o Options) (http.Handler, error) {
	if o.Auth == nil {
		return nil, errors.New("frontdoor: Auth is required (sign-in guards the pages and the codec)")
	}
	m := http.NewServeMux()
	if o.Interactions != nil {
		m.Handle("POST /slack/interactions", o.Interactions)
	}
	if o.Teams != nil {
		m.Handle("POST "+interactions.TeamsPath, o.Teams)
	}
	if o.EncryptionKey != nil {
		h, err := codec.Handler(o.EncryptionKey, o.OldEncryptionKeys...)
		if err != nil {
			return nil, err
		}
		m.Handle("/codec/", cors(o.CodecOrigin, o.Auth.Operator(bufferBody(codecBodyLimit, auditDecode(o.Store, http.StripPrefix("/codec", h))))))
	}
	m.Handle("GET /healthz", health.Handler(append([]health.Check{{Name: "postgres", Ping: o.Store.Ping}}, o.Health...)...))
	if o.Metrics != nil {
		m.Handle("GET /metrics", o.Metrics)
	}
	o.Auth.Register(m)
	dash := o.Dashboard
	dash.Store, dash.Auth, dash.Log = o.Store, o.Auth, o.Log
	dashboard.Register(m, dash)
	if o.Grant != nil {
		o.Grant.Register(m)
	}
	if o.Feed != nil {
		m.Handle("POST /feed/fhir/Appointment", o.Feed)
	}
	return o.Auth.OncePerRequest(secureHeaders(limitRate(limitBody(m), o.Auth.SignedIn), o.HSTS)), nil
}

// contentSecurity lets pages load scripts, styles and images from the
// front door only, never run inline script, and never be framed. Inline
// styles stay allowed: the report's server-drawn SVG colours its bars
// with style attributes.
const contentSecurity = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// secureHeaders sets the browser protections on every answer: a page
// with patient details must not be framed, sniffed into another type, or
// named in another site's Referer.
func secureHeaders(h http.Handler, hsts bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurity)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		if hsts {
			hd.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		h.ServeHTTP(w, r)
	})
}

// ActionCodecDecode is the audit action of each decode through the codec.
const ActionCodecDecode = "codec-decode"

// auditDecode writes each decode to the audit log before it happens: who,
// how many payloads, the namespace and, where the Web UI's page names it,
// the workflow. A decode that cannot be audited is refused.
func auditDecode(st *store.Store, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st == nil || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/decode") {
			h.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct {
			Payloads []json.RawMessage `json:"payloads"`
		}
		if json.Unmarshal(body, &in) != nil || len(in.Payloads) == 0 {
			h.ServeHTTP(w, r) // nothing to open: the codec answers
			return
		}
		who := signin.FromContext(r.Context())
		e := store.AuditEntry{Actor: who.Name, Action: ActionCodecDecode, Subject: "codec",
			Detail: map[string]string{"payloads": strconv.Itoa(len(in.Payloads)), "namespace": r.Header.Get("X-Namespace"), "subject": who.Subject}}
		if wid := workflowOf(r.Referer()); wid != "" {
			e.Subject, e.Detail["workflow"] = wid, wid
		}
		if err := st.Audit(r.Context(), e); err != nil {
			http.Error(w, "the decode could not be audited, so it was not done; try again", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// workflowOf is the workflow id a Web UI page's address names
// (…/workflows/<id>/…), or "".
func workflowOf(referer string) string {
	u, err := url.Parse(referer)
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(u.Path, "/workflows/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	id, err = url.PathUnescape(id)
	if err != nil {
		return ""
	}
	return id
}

// Body limits: the codec takes a page of payloads from the Web UI (each
// payload is under Temporal's 2 MiB limit); nothing else takes more than
// a Slack interaction.
const (
	bodyLimit      = 1 << 20
	codecBodyLimit = 4 << 20
)

// MaxConns caps the front door's connections at once: far above what a
// trust's staff, Slack and a PAS feed hold, far below what exhausts the
// process's files. Beyond it a connection waits in the listen queue.
const MaxConns = 512

// LimitConns caps the connections l serves at once.
func LimitConns(l net.Listener, n int) net.Listener { return netutil.LimitListener(l, n) }

// readsAfterAuth are the paths whose handlers check who is calling from
// the headers alone: their bodies are not read until that has passed
// (the codec's guard, then bufferBody; the feed's bearer check, then its
// own bounded read), so an anonymous upload is refused unread.
var readsAfterAuth = []string{"/codec/", "/feed/", "/teams/"}

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
		if slices.ContainsFunc(readsAfterAuth, func(p string) bool { return strings.HasPrefix(r.URL.Path, p) }) {
			h.ServeHTTP(refusalCloses{w}, r)
			return
		}
		bufferBody(n, h).ServeHTTP(w, r)
	})
}

// refusalCloses ends the connection after a 401 or 403: net/http would
// otherwise read up to 256 KiB of the unread body before answering, to
// keep the connection, which is the read the refusal exists to avoid.
type refusalCloses struct{ http.ResponseWriter }

func (w refusalCloses) WriteHeader(code int) {
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

// bufferBody reads the whole body, up to n bytes (413 beyond), before h
// runs: a handler that meets a cut body would otherwise answer as if the
// sender had sent nonsense.
func bufferBody(n int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
			w.Header().Set("Access-Control-Allow-Credentials", "true")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}
