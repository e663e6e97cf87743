package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/rebookhq/rebook/internal/health"
)

func TestHealthNamesTheFirstFailingDependency(t *testing.T) {
	ok := health.Check{Name: "postgres", Ping: func(context.Context) error { return nil }}
	down := health.Check{Name: "temporal", Ping: func(context.Context) error { return errors.New("refused") }}

	rec := httptest.NewRecorder()
	health.Handler(ok).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ok\n", rec.Body.String())

	rec = httptest.NewRecorder()
	health.Handler(ok, down).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Contains(t, rec.Body.String(), "temporal unreachable")
}
