package frontdoor

import (
	"container/list"
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
	// maxAddresses caps the table: past it the least recently seen
	// address is forgotten, so a flood of addresses (a million IPv6
	// ones) cannot grow the process.
	maxAddresses = 10_000
)

type addressLimiter struct {
	mu   sync.Mutex
	seen map[string]*list.Element // of *visitor, most recent at the front
	lru  list.List
}

type visitor struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

// limited says whether a path is rate limited. Health checks are not: a
// monitor behind a busy shared address must not see the front door down.
func limited(path string) bool {
	return !strings.HasPrefix(path, "/slack/") && !strings.HasPrefix(path, "/teams/") && !strings.HasPrefix(path, "/codec/") && !strings.HasPrefix(path, "/feed/") &&
		!strings.HasPrefix(path, "/static/") && path != "/metrics" && path != "/healthz"
}

// addressKey is what a caller is known by: its IPv4 address, or its IPv6
// /64, which one host can fill with addresses of its own.
func addressKey(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// allow says whether addr may make another request now. Addresses idle for
// a while, or the least recently seen past maxAddresses, are forgotten.
func (l *addressLimiter) allow(addr string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]*list.Element{}
	}
	key := addressKey(addr)
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		v := e.Value.(*visitor)
		if now.Sub(v.seen) <= idleAfter && l.lru.Len() < maxAddresses {
			break
		}
		l.lru.Remove(e)
		delete(l.seen, v.key)
	}
	e, ok := l.seen[key]
	if !ok {
		e = l.lru.PushFront(&visitor{key: key, lim: rate.NewLimiter(perAddressRate, perAddressBurst)})
		l.seen[key] = e
	} else {
		l.lru.MoveToFront(e)
	}
	v := e.Value.(*visitor)
	v.seen = now
	return v.lim.AllowN(now, 1)
}

// size is how many addresses the limiter remembers.
func (l *addressLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// limitRate answers 429 with Retry-After to an address past its limit,
// unless signedIn says the request carries a valid session.
func limitRate(h http.Handler, signedIn func(*http.Request) bool) http.Handler {
	l := &addressLimiter{}
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
