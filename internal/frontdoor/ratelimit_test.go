package frontdoor

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Issue 23, finding 8: the limiter's table is capped (the least recently
// seen address goes first), an IPv6 /64 is one caller however many
// addresses it uses, and health checks are never limited.
func TestSecurityRateLimiterIsBoundedAndSparesHealthChecks(t *testing.T) {
	var l addressLimiter
	now := time.Now()
	for i := range 3 * maxAddresses {
		l.allow(fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff), now)
	}
	assert.Equal(t, maxAddresses, l.size(), "a flood of addresses cannot grow the table")

	var one addressLimiter
	refused := 0
	for i := range 100 {
		if !one.allow(fmt.Sprintf("2001:db8:1:2::%x", i+1), now) {
			refused++
		}
	}
	assert.Equal(t, 1, one.size(), "one /64 is one caller")
	assert.Equal(t, 100-perAddressBurst, refused, "and shares one budget")

	var v4 addressLimiter
	v4.allow("192.0.2.1", now)
	v4.allow("192.0.2.2", now)
	assert.Equal(t, 2, v4.size(), "IPv4 addresses are callers of their own")

	assert.False(t, limited("/healthz"), "a monitor behind a busy address still sees the health")
	assert.True(t, limited("/signin"))
}
