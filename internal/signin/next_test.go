package signin

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Issue 23, finding 3: where sign-in sends the browser back is a path on
// Rebook, parsed: no scheme or host, no "//" or "/\", no control
// characters (a browser drops a tab and reads "/\t/evil" as "//evil").
// Anything else goes to the request list.
func TestSecurityNextIsAPath(t *testing.T) {
	for _, next := range []string{"/\t/evil.example", "/%09/evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example",
		"https://evil.example/", "javascript:alert(1)", "/\r\n/evil.example", "/\x00", "", "evil.example", "///evil.example", "/x\\y"} {
		got := localPath(next)
		if next == "/%09/evil.example" {
			// Escaped, the tab stays in the path: the browser asks Rebook
			// for "/%09/evil.example", a page Rebook does not have.
			assert.Equal(t, next, got)
			continue
		}
		assert.Equal(t, "/requests", got, "%q", next)
	}
	for _, next := range []string{"/requests", "/requests/RB-7Q2K?said=x", "/reports?by=team&every=week", "/admin"} {
		assert.Equal(t, next, localPath(next))
	}
}
