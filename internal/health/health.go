// Package health is the one /healthz handler, for the worker and the front
// door: each names what it cannot run without.
package health

import (
	"context"
	"net/http"
	"time"
)

// Check is one dependency: its name, as the answer shows it, and how to
// reach it.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Handler answers 200 "ok" when every check passes within 3 seconds, and
// 503 naming the first one that did not.
func Handler(checks ...Check) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		for _, c := range checks {
			if err := c.Ping(ctx); err != nil {
				http.Error(w, c.Name+" unreachable", http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}
