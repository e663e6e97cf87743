package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/metrics"
)

func scrape(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.HTTP().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

func TestHandlerExportsSeriesWithTheirTags(t *testing.T) {
	r := metrics.New(nil)
	h := r.Handler().WithTags(map[string]string{"namespace": "default"})
	h.WithTags(map[string]string{"type": "cancel", "specialty": "Cardiology"}).Counter(metrics.RequestsRouted).Inc(2)
	// A later use with other tags keeps the first label set: the missing
	// one is empty and the extra one is dropped, instead of a failed
	// registration that would lose the count.
	h.WithTags(map[string]string{"type": "change", "extra": "x"}).Counter(metrics.RequestsRouted).Inc(1)
	h.WithTags(map[string]string{"type": "cancel", "specialty": "Cardiology"}).Timer(metrics.MessageToPost).Record(90 * time.Second)
	h.Gauge("temporal_num_pollers").Update(3)
	// The same name as another kind is refused without a panic.
	h.Gauge(metrics.RequestsRouted + "_total").Update(1)

	text := scrape(t, r)
	assert.Contains(t, text, `rebook_requests_routed_total{namespace="default",specialty="Cardiology",type="cancel"} 2`)
	assert.Contains(t, text, `rebook_requests_routed_total{namespace="default",specialty="",type="change"} 1`)
	assert.Contains(t, text, `rebook_message_to_post_seconds_bucket{namespace="default",specialty="Cardiology",type="cancel",le="120"} 1`)
	assert.Contains(t, text, `rebook_message_to_post_seconds_bucket{namespace="default",specialty="Cardiology",type="cancel",le="60"} 0`)
	assert.Contains(t, text, `temporal_num_pollers{namespace="default"} 3`)
	assert.NotContains(t, text, "extra")
	assert.Contains(t, text, "go_goroutines")
}

type state struct {
	healthy bool
	err     error
}

func (s state) CountRequestsByState(context.Context) (map[string]int, error) {
	return map[string]int{"waiting": 4, "finished": 7}, s.err
}
func (s state) GrantHealthy(context.Context) (bool, error) { return s.healthy, s.err }
func (s state) Queries() int64                             { return 42 }

func TestStateIsReadAtEachScrape(t *testing.T) {
	r := metrics.New(nil)
	r.WatchState(state{healthy: true})
	text := scrape(t, r)
	assert.Contains(t, text, "rebook_pkb_grant_healthy 1")
	assert.Contains(t, text, `rebook_requests{state="waiting"} 4`)
	assert.Contains(t, text, "rebook_db_queries_total 42")

	// A database that does not answer leaves the gauges out; the rest of
	// the page is still served.
	r = metrics.New(nil)
	r.WatchState(state{err: errors.New("down")})
	text = scrape(t, r)
	assert.NotContains(t, text, "rebook_pkb_grant_healthy")
	assert.Contains(t, text, "go_goroutines")
}

func TestSlackTransportCountsCallsAnd429s(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/chat.update") {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	r := metrics.New(nil)
	c := &http.Client{Transport: metrics.SlackTransport(r.Handler(), nil)}
	for _, m := range []string{"chat.postMessage", "chat.postMessage", "chat.update"} {
		resp, err := c.Post(srv.URL+"/api/"+m, "application/json", nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	srv.Close()
	_, err := c.Post(srv.URL+"/api/chat.postMessage", "application/json", nil)
	require.Error(t, err)

	text := scrape(t, r)
	assert.Contains(t, text, `rebook_slack_calls_total{method="chat.postMessage",outcome="200"} 2`)
	assert.Contains(t, text, `rebook_slack_calls_total{method="chat.update",outcome="429"} 1`)
	assert.Contains(t, text, `rebook_slack_calls_total{method="chat.postMessage",outcome="network"} 1`)
	assert.Contains(t, text, `rebook_slack_rate_limited_total{method="chat.update"} 1`)
}

func TestOutcome(t *testing.T) {
	assert.Equal(t, "503", metrics.Outcome(503, nil))
	assert.Equal(t, "timeout", metrics.Outcome(0, context.DeadlineExceeded))
	assert.Equal(t, "network", metrics.Outcome(0, errors.New("connection refused")))
}
