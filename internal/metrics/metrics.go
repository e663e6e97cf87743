// Package metrics is Rebook's Prometheus registry: the SDK's metrics
// (workflows, activities, pollers, Temporal calls) and Rebook's own
// series go through one client.MetricsHandler, so workflow code records
// with workflow.GetMetricsHandler and nothing is counted twice on replay.
package metrics

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

// Rebook's series, by the name given to a client.MetricsHandler. Counters
// are exported with a _total suffix, timers as histograms in seconds.
const (
	RequestsStarted = "rebook_requests_started" // counter: a request workflow started for a new PKB message
	// counter: requests the daily reconciliation started, which the poll
	// had missed
	RequestsReconciled = "rebook_requests_reconciled"
	// counter: closed requests whose identifiers the retention run
	// redacted
	RequestsRedacted  = "rebook_requests_redacted"
	RequestsRouted    = "rebook_requests_routed"    // counter {type, specialty}: posted to a team
	RequestsTriaged   = "rebook_requests_triaged"   // counter {type, specialty}: posted to triage
	RequestsCompleted = "rebook_requests_completed" // counter {type, specialty, state}: closed
	MessageToPost     = "rebook_message_to_post"    // timer {type, specialty}: PKB message time to the Slack post
	PostToClose       = "rebook_post_to_close"      // timer {type, specialty, state}: Slack post to close
	PKBCalls          = "rebook_pkb_calls"          // counter {endpoint, outcome}
	SlackCalls        = "rebook_slack_calls"        // counter {method, outcome}
	SlackRateLimited  = "rebook_slack_rate_limited" // counter {method}: Slack answered 429
	// counter {outcome}: PAS feed updates applied as evidence, stale,
	// only bringing a PKB check forward (hint), or kept for a request not
	// yet routed
	FeedUpdates = "rebook_feed_updates"
	// counter {kind}: patients whose search failed in a watcher run
	// (backed off; the run went on)
	WatchPatientFailures = "rebook_watch_patient_failures"
	// counter: waiting requests not checked for more than a day past
	// their due check (the admins were told)
	ChecksOverdue = "rebook_checks_overdue"
)

// Read at each scrape from the read model and the store.
const (
	grantHealthy = "rebook_pkb_grant_healthy"
	requestsNow  = "rebook_requests"
	dbQueries    = "rebook_db_queries_total"
)

// buckets are the histogram bounds, in seconds, of Rebook's timers; the
// SDK's latencies use defaultBuckets.
var buckets = map[string][]float64{
	MessageToPost: {1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600},
	PostToClose:   {60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400},
}

var defaultBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Guard serves h only to a scraper that presents token as a bearer token
// (REBOOK_METRICS_TOKEN); an empty token guards nothing.
func Guard(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need the scraper's bearer token (REBOOK_METRICS_TOKEN)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Registry holds one process's series and serves them at /metrics.
type Registry struct {
	reg *prometheus.Registry
	log *slog.Logger

	mu   sync.Mutex
	vecs map[string]vec
}

type vec struct {
	labels []string
	c      *prometheus.CounterVec
	g      *prometheus.GaugeVec
	h      *prometheus.HistogramVec
}

// New makes a registry with the Go runtime's and the process's series.
func New(log *slog.Logger) *Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{reg: reg, log: log, vecs: map[string]vec{}}
}

// HTTP serves the registry in Prometheus's text format.
func (r *Registry) HTTP() http.Handler {
	if r == nil {
		return nil
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Handler is the registry as the Temporal SDK's metrics handler, for
// client.Options.MetricsHandler and Rebook's own series.
func (r *Registry) Handler() client.MetricsHandler {
	if r == nil {
		return client.MetricsNopHandler
	}
	return handler{r: r}
}

// Gather is the registry's series, for tests.
func (r *Registry) Gather() (map[string]float64, error) {
	mfs, err := r.reg.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				out[mf.GetName()] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[mf.GetName()] += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()+"_count"] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, nil
}

// State is what the read-model gauges are read from.
type State interface {
	CountRequestsByState(ctx context.Context) (map[string]int, error)
	GrantHealthy(ctx context.Context) (bool, error)
	// Queries is how many statements the process has sent to PostgreSQL.
	Queries() int64
}

// WatchState adds, read at each scrape, the read model's requests by state
// and whether PKB's grant is in force.
func (r *Registry) WatchState(s State) {
	r.reg.MustRegister(&stateCollector{s: s, log: r.log})
}

type stateCollector struct {
	s   State
	log *slog.Logger

	// The request counts are read at most every stateEvery, so scrapes,
	// however frequent, cost PostgreSQL one count a quarter-minute.
	mu     sync.Mutex
	counts map[string]int
	at     time.Time
	now    func() time.Time
}

// stateEvery is how often the request counts are read again.
const stateEvery = 15 * time.Second

// requestCounts are the read model's counts by state, from the last read
// if it is recent.
func (c *stateCollector) requestCounts(ctx context.Context) (map[string]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	if c.counts != nil && now.Sub(c.at) < stateEvery {
		return c.counts, nil
	}
	counts, err := c.s.CountRequestsByState(ctx)
	if err != nil {
		return nil, err
	}
	c.counts, c.at = counts, now
	return counts, nil
}

var (
	grantDesc    = prometheus.NewDesc(grantHealthy, "1 while PKB's grant is in force, 0 while work waits for a grant or a fix.", nil, nil)
	requestsDesc = prometheus.NewDesc(requestsNow, "Requests in the read model, by state.", []string{"state"}, nil)
	queriesDesc  = prometheus.NewDesc(dbQueries, "Statements this process sent to PostgreSQL (round trips).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- grantDesc
	ch <- requestsDesc
	ch <- queriesDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(queriesDesc, prometheus.CounterValue, float64(c.s.Queries()))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if ok, err := c.s.GrantHealthy(ctx); err != nil {
		c.log.Warn("metrics: grant state not read", "err", err)
	} else {
		ch <- prometheus.MustNewConstMetric(grantDesc, prometheus.GaugeValue, b2f(ok))
	}
	counts, err := c.requestCounts(ctx)
	if err != nil {
		c.log.Warn("metrics: requests not counted", "err", err)
		return
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.GaugeValue, float64(n), st)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type handler struct {
	r    *Registry
	tags map[string]string
}

func (h handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	return handler{r: h.r, tags: merged}
}

func (h handler) Counter(name string) client.MetricsCounter {
	v, ok := h.r.vec(promName(name, "_total"), "counter", h.tags, name)
	if !ok {
		return client.MetricsNopHandler.Counter(name)
	}
	c := v.c.With(v.values(h.tags))
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

func (h handler) Gauge(name string) client.MetricsGauge {
	v, ok := h.r.vec(promName(name, ""), "gauge", h.tags, name)
	if !ok {
		return client.MetricsNopHandler.Gauge(name)
	}
	g := v.g.With(v.values(h.tags))
	return gaugeFunc(g.Set)
}

func (h handler) Timer(name string) client.MetricsTimer {
	v, ok := h.r.vec(promName(name, "_seconds"), "timer", h.tags, name)
	if !ok {
		return client.MetricsNopHandler.Timer(name)
	}
	o := v.h.With(v.values(h.tags))
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

// vec finds or makes the vector for a series. Its labels are the tags of
// its first use: a later use with other tags fills the missing ones with
// "" and drops the extra, as Prometheus wants one label set per name.
func (r *Registry) vec(name, kind string, tags map[string]string, given string) (vec, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := kind + " " + name
	if v, ok := r.vecs[key]; ok {
		return v, v.c != nil || v.g != nil || v.h != nil
	}
	labels := make([]string, 0, len(tags))
	for k := range tags {
		if l := label(k); l != "" {
			labels = append(labels, l)
		}
	}
	slices.Sort(labels)
	labels = slices.Compact(labels)
	v := vec{labels: labels}
	help := "Temporal SDK metric " + given + "."
	if strings.HasPrefix(given, "rebook_") {
		help = "Rebook: " + given + "."
	}
	var c prometheus.Collector
	switch kind {
	case "counter":
		v.c = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		c = v.c
	case "gauge":
		v.g = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		c = v.g
	default:
		b, ok := buckets[given]
		if !ok {
			b = defaultBuckets
		}
		v.h = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: b}, labels)
		c = v.h
	}
	if err := r.reg.Register(c); err != nil {
		// The same name as another kind: keep the first, count nothing.
		r.log.Warn("metrics: series not registered", "name", name, "err", err)
		v = vec{}
	}
	r.vecs[key] = v
	return v, v.c != nil || v.g != nil || v.h != nil
}

func (v vec) values(tags map[string]string) prometheus.Labels {
	out := make(prometheus.Labels, len(v.labels))
	for _, l := range v.labels {
		out[l] = ""
	}
	for k, val := range tags {
		if l := label(k); l != "" {
			if _, ok := out[l]; ok {
				out[l] = val
			}
		}
	}
	return out
}

var invalid = regexp.MustCompile(`[^a-zA-Z0-9_]`)

func promName(name, suffix string) string {
	n := invalid.ReplaceAllString(name, "_")
	if !strings.HasSuffix(n, suffix) {
		n += suffix
	}
	return n
}

func label(k string) string {
	l := invalid.ReplaceAllString(k, "_")
	if l == "" || strings.HasPrefix(l, "__") || (l[0] >= '0' && l[0] <= '9') {
		return ""
	}
	return l
}

// Outcome is a call's outcome label: the HTTP status, or why there was
// none.
func Outcome(status int, err error) string {
	switch {
	case err == nil:
		return strconv.Itoa(status)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "network"
}

// SlackTransport counts each Slack Web API call by method and outcome,
// and the 429s apart, so a dashboard can show Slack's rate limiting.
func SlackTransport(h client.MetricsHandler, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		method := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
		resp, err := base.RoundTrip(req)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		h.WithTags(map[string]string{"method": method, "outcome": Outcome(status, err)}).Counter(SlackCalls).Inc(1)
		if status == http.StatusTooManyRequests {
			h.WithTags(map[string]string{"method": method}).Counter(SlackRateLimited).Inc(1)
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Series are the names Prometheus shows for Rebook's own series, as a
// dashboard queries them.
var Series = []string{
	RequestsStarted + "_total", RequestsReconciled + "_total", RequestsRedacted + "_total", RequestsRouted + "_total", RequestsTriaged + "_total", RequestsCompleted + "_total",
	MessageToPost + "_seconds", PostToClose + "_seconds", PKBCalls + "_total", SlackCalls + "_total", SlackRateLimited + "_total",
	grantHealthy, requestsNow, dbQueries,
}
