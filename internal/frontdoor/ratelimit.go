package frontdoor

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Per-address limits on the endpoints anyone can reach without proof of
// who they are (sign-in, the grant flow, health): enough for a person and
// a monitor, not for a flood. Slack's signed interactions, the Web UI's
// codec, the PAS feed (a bearer secret), the page assets and anyone
// signed in are not limited here: a trust's staff share one address
// behind its NAT, and each open dashboard refreshes itself.
const (
	perAddressRate  = rate.Limit(1) // a request a second, sustained
	perAddressBurst = 20
	idleAfter       = 10 * time.Minute
)

type addressLimiter struct {
	mu   sync.Mutex
	seen map[string]*visitor
	last time.Time // last sweep
}

type visitor struct {
	lim  *rate.Limiter
	seen time.Time
}

func limited(path string) bool {
	return !strings.HasPrefix(path, "/slack/") && !strings.HasPrefix(path, "/codec/") && !strings.HasPrefix(path, "/feed/") &&
		!strings.HasPrefix(path, "/static/") && path != "/metrics"
}

// allow says whether addr may make another request now. Addresses idle for
// a while are forgotten, so the map does not grow without bound.
func (l *addressLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) > idleAfter {
		for a, v := range l.seen {
			if now.Sub(v.seen) > idleAfter {
				delete(l.seen, a)
			}
		}
		l.last = now
	}
	v, ok := l.seen[addr]
	if !ok {
		v = &visitor{lim: rate.NewLimiter(perAddressRate, perAddressBurst)}
		l.seen[addr] = v
	}
	v.seen = now
	return v.lim.AllowN(now, 1)
}

// limitRate answers 429 with Retry-After to an address past its limit,
// unless signedIn says the request carries a valid session.
func limitRate(h http.Handler, signedIn func(*http.Request) bool) http.Handler {
	l := &addressLimiter{seen: map[string]*visitor{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if limited(r.URL.Path) && !signedIn(r) {
			addr, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				addr = r.RemoteAddr
			}
			if !l.allow(addr, time.Now()) {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "too many requests from this address; try again shortly", http.StatusTooManyRequests)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
