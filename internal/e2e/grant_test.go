package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/rebookhq/rebook/internal/dev/clinician"
	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/wfclient"
	"github.com/rebookhq/rebook/workflows"
)

func refused(c map[string]int64) int64 {
	return c[pkbsim.CounterTokenExpired] + c[pkbsim.CounterTokenRevoked] + c[pkbsim.CounterTokenUnknown] + c[pkbsim.CounterTokenMissing]
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// follow goes where a link sends the browser, without following it.
func follow(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect.Get(u)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b)
}

// TestRevokedGrantPausesThenResumes: PKB revokes the grant a third of the
// way through 100 requests; the admins are asked in Slack; the test
// follows the link through the simulator's consent page; every request
// then completes, with no duplicate card and no PKB call made with a token
// known to be dead.
func TestRevokedGrantPausesThenResumes(t *testing.T) {
	const n = 100
	s := start(t, n)
	ctx := context.Background()
	// The last two thirds arrive only after the revocation, so the pause
	// is seen whatever the pace of the first third.
	stamps := make([]int64, 0, len(s.ds.Messages))
	for _, m := range s.ds.Messages {
		stamps = append(stamps, m.Timestamp)
	}
	slices.Sort(stamps)
	s.sim.HoldMessagesFrom(stamps[n/3])
	first := 0
	for _, ts := range stamps {
		if ts < stamps[n/3] {
			first++
		}
	}
	require.NoError(t, s.startSchedules(ctx))

	waitFor(t, "a third of the requests routed", limit(3*time.Minute), func() bool { return len(s.cards()) >= first })
	s.sim.SetAutoApprove(false)
	require.Equal(t, 1, s.sim.RevokeGrants())
	s.sim.HoldMessagesFrom(0)

	var ask string
	waitFor(t, "the admins asked to grant access", limit(2*time.Minute), func() bool {
		for _, m := range s.slack.Roots(admin) {
			if strings.Contains(m.Text, "/oauth/start") {
				ask = m.Text
				return true
			}
		}
		return false
	})
	known := refused(s.sim.Counters())
	keeper, err := wfclient.Client{Temporal: s.tc}.KeeperState(ctx, s.cfg.PKBClientID)
	require.NoError(t, err)
	assert.Equal(t, workflows.KeeperNeedsGrant, keeper.State)
	assert.Contains(t, keeper.LastError, "invalid_grant")
	// The refused refresh is in the worker's PKB series, and the grant
	// gauge shows work waiting.
	rec := httptest.NewRecorder()
	s.workerMetrics.HTTP().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Regexp(t, `rebook_pkb_calls_total\{endpoint="POST /apiToken.action \(refresh\)",outcome="4\d\d"\} [1-9]`, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "rebook_pkb_grant_healthy 0")

	// Requests wait (their activities retry without calling PKB).
	time.Sleep(6 * time.Second)
	assert.Equal(t, known, refused(s.sim.Counters()), "no PKB call with a dead token while the grant is needed")
	assert.Less(t, len(s.cards()), n, "the pipeline paused")

	// A clinician follows the link and approves.
	link := ask[strings.Index(ask, "http"):]
	link = strings.Fields(link)[0]
	resp, _, err := clinician.ConfirmGrant(noRedirect, link)
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	consent := resp.Header.Get("Location")
	resp, body := follow(t, consent)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "Approve")
	cu, _ := url.Parse(consent)
	form := cu.Query()
	form.Set("decision", "approve")
	r2, err := noRedirect.PostForm(cu.Scheme+"://"+cu.Host+cu.Path, form)
	require.NoError(t, err)
	_ = r2.Body.Close()
	resp, body = follow(t, r2.Header.Get("Location"))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, "Access granted")
	grantedAt, routed := time.Now(), len(s.cards())
	assert.Equal(t, known, refused(s.sim.Counters()))
	assert.LessOrEqual(t, known, int64(2), "after the first 401 the worker stops presenting the dead token")

	waitFor(t, "work resumed after the re-grant", limit(time.Minute), func() bool { return len(s.cards()) > routed })
	resumed := time.Since(grantedAt)
	t.Logf("work resumed %s after the re-grant", resumed.Round(time.Second))
	assert.LessOrEqual(t, resumed, 30*time.Second, "paused requests resume within 30 s of the callback")

	waitFor(t, "every request routed", limit(3*time.Minute), func() bool { return len(s.cards()) >= n })
	s.closeAll(t, n, limit(3*time.Minute))
	assert.Equal(t, known, refused(s.sim.Counters()), "no dead-token call after the grant was known lapsed")
	t.Logf("refused-token calls before Rebook knew: %d; PKB calls: %v", known, s.sim.Counters())

	// Tokens: not in PostgreSQL's dump, not in Temporal's history.
	g, err := s.st.Grant(ctx, s.cfg.PKBClientID)
	require.NoError(t, err)
	require.NotEmpty(t, g.AccessToken)
	if dump, err := exec.Command("pg_dump", s.dbURL).Output(); err == nil {
		assert.NotContains(t, string(dump), g.AccessToken)
		assert.NotContains(t, string(dump), g.RefreshToken)
		assert.Contains(t, string(dump), "pkb_grants", "the dump is of the right database")
	} else {
		t.Logf("pg_dump not run: %v", err)
	}
	for _, id := range []string{workflows.TokenKeeperID(s.cfg.PKBClientID), workflows.RequestWorkflowID(s.ds.Expect[0].MessageID)} {
		it := s.tc.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		events := 0
		for it.HasNext() {
			e, err := it.Next()
			require.NoError(t, err)
			raw := e.String()
			assert.NotContains(t, raw, g.AccessToken)
			assert.NotContains(t, raw, g.RefreshToken)
			events++
		}
		assert.Positive(t, events)
	}
}
