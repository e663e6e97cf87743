package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
)

type countingState struct{ counts int }

func (s *countingState) CountRequestsByState(context.Context) (map[string]int, error) {
	s.counts++
	return map[string]int{"some-state": 3}, nil
}
func (s *countingState) GrantHealthy(context.Context) (bool, error) { return true, nil }
func (s *countingState) Queries() int64                             { return 0 }

// Issue 23, finding 9: /metrics is for the scraper: with
// REBOOK_METRICS_TOKEN set it needs that bearer token; and however often
// it is scraped, the read model is counted at most every 15 seconds.
func TestSecurityMetricsForTheScraperOnly(t *testing.T) {
	h := Guard("scrape-token-0123456789", New(slog.New(slog.DiscardHandler)).HTTP())
	for auth, want := range map[string]int{"": http.StatusUnauthorized, "Bearer guess": http.StatusUnauthorized,
		"Bearer scrape-token-0123456789": http.StatusOK} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, want, rec.Code, "Authorization %q", auth)
	}
	open := httptest.NewRecorder()
	Guard("", New(slog.New(slog.DiscardHandler)).HTTP()).ServeHTTP(open, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusOK, open.Code, "no token set: as before")

	st := &countingState{}
	now := time.Now()
	c := &stateCollector{s: st, log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }}
	scrape := func() {
		ch := make(chan prometheus.Metric, 16)
		c.Collect(ch)
		close(ch)
		for range ch {
		}
	}
	for range 50 {
		scrape()
	}
	assert.Equal(t, 1, st.counts, "50 scrapes, one count")
	now = now.Add(16 * time.Second)
	scrape()
	assert.Equal(t, 2, st.counts, "counted again once 15 s have passed")
}
