package pkbsim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/nhsnumber"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/subject"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

const (
	clientID     = "rebook-test"
	clientSecret = "s3cret"
	redirectURL  = "http://127.0.0.1:1/oauth/callback"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type sim struct {
	*pkbsim.Server
	url   string
	clock *clock
	oauth *oauth2.Config
}

func start(t *testing.T, cfg pkbsim.Config, ds pkbsim.Dataset) *sim {
	t.Helper()
	clk := &clock{t: time.Date(2027, 2, 1, 12, 0, 0, 0, time.UTC)}
	cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL = clientID, clientSecret, redirectURL
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	s := pkbsim.New(cfg, ds)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &sim{Server: s, url: hs.URL, clock: clk, oauth: pkb.OAuth(hs.URL, clientID, clientSecret, redirectURL)}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// code walks the authorize page as a clinician would and returns the code.
func (s *sim) code(t *testing.T, state string) string {
	t.Helper()
	resp, err := noRedirect.Get(s.oauth.AuthCodeURL(state))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		require.Contains(t, string(body), `value="approve"`)
		resp, err = noRedirect.PostForm(s.url+"/apiAuthorize.action", url.Values{
			"client_id": {clientID}, "redirect_uri": {redirectURL}, "response_type": {"code"},
			"scope": {"CLINICIAN"}, "state": {state}, "decision": {"approve"},
		})
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, state, loc.Query().Get("state"))
	require.NotEmpty(t, loc.Query().Get("code"))
	return loc.Query().Get("code")
}

func (s *sim) token(t *testing.T) *oauth2.Token {
	t.Helper()
	tok, err := pkb.Exchange(context.Background(), s.oauth, s.code(t, "st"))
	require.NoError(t, err)
	return tok
}

func (s *sim) client(t *testing.T, tok string) *pkb.Client {
	t.Helper()
	c, err := pkb.New(pkb.Options{BaseURL: s.url, FHIRBaseURL: s.url + "/fhir", Tokens: pkb.StaticToken(tok), Timeout: 5 * time.Second})
	require.NoError(t, err)
	return c
}

func demo(n int) pkbsim.Dataset {
	return pkbsim.Generate(pkbsim.ScenarioOptions{Name: "demo", Seed: 1, Requests: n})
}

func TestAuthorizePageApproveAndDeny(t *testing.T) {
	s := start(t, pkbsim.Config{}, demo(5))
	resp, err := noRedirect.Get(s.oauth.AuthCodeURL("xyz"))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "Approve")
	assert.Contains(t, string(body), "Deny")

	resp, err = noRedirect.PostForm(s.url+"/apiAuthorize.action", url.Values{
		"client_id": {clientID}, "redirect_uri": {redirectURL}, "response_type": {"code"},
		"scope": {"CLINICIAN"}, "state": {"xyz"}, "decision": {"deny"},
	})
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	assert.Equal(t, "access_denied", loc.Query().Get("error"))
	assert.Equal(t, "xyz", loc.Query().Get("state"))
	assert.Empty(t, loc.Query().Get("code"))

	// A wrong redirect URI is never redirected to.
	bad := pkb.OAuth(s.url, clientID, clientSecret, "http://evil.example/cb")
	resp, err = noRedirect.Get(bad.AuthCodeURL("xyz"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Location"))
}

func TestCodeExchangeIsSingleUseAndBound(t *testing.T) {
	s := start(t, pkbsim.Config{AccessTTL: 600 * time.Second}, demo(5))
	ctx := context.Background()
	code := s.code(t, "a")

	other := pkb.OAuth(s.url, clientID, clientSecret, "http://127.0.0.1:2/other")
	_, err := pkb.Exchange(ctx, other, code)
	assert.True(t, pkb.IsKind(err, pkb.KindInvalidGrant), "code bound to redirect_uri: %v", err)

	wrongSecret := pkb.OAuth(s.url, clientID, "nope", redirectURL)
	_, err = pkb.Exchange(ctx, wrongSecret, s.code(t, "b"))
	assert.True(t, pkb.IsKind(err, pkb.KindInvalidClient), "%v", err)

	code = s.code(t, "c")
	tok, err := pkb.Exchange(ctx, s.oauth, code)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
	assert.NotEmpty(t, tok.RefreshToken)
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.InDelta(t, 600, time.Until(tok.Expiry).Seconds(), 5)

	_, err = pkb.Exchange(ctx, s.oauth, code)
	assert.True(t, pkb.IsKind(err, pkb.KindInvalidGrant), "code replay: %v", err)
	assert.NotContains(t, err.Error(), code)

	// Client credentials in the body are accepted too.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {clientID}, "client_secret": {clientSecret}}
	resp, err := http.PostForm(s.url+"/apiToken.action", form)
	require.NoError(t, err)
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "CLINICIAN", body["scope"])
}

func TestRefreshRotates(t *testing.T) {
	s := start(t, pkbsim.Config{}, demo(5))
	ctx := context.Background()
	first := s.token(t)
	second, err := pkb.Refresh(ctx, s.oauth, first.RefreshToken)
	require.NoError(t, err)
	assert.NotEqual(t, first.RefreshToken, second.RefreshToken)
	assert.NotEqual(t, first.AccessToken, second.AccessToken)
	assert.NotEmpty(t, second.RefreshToken)

	_, err = pkb.Refresh(ctx, s.oauth, first.RefreshToken)
	require.Error(t, err)
	assert.True(t, pkb.IsKind(err, pkb.KindInvalidGrant), "old refresh token refused: %v", err)
	assert.False(t, pkb.Retryable(err))

	// Both access tokens still work until they expire: rotation ends the
	// refresh token, not the access token.
	_, err = s.client(t, second.AccessToken).MessagesAfter(ctx, 0, true)
	require.NoError(t, err)
}

func TestSessionEndOmitsRefreshToken(t *testing.T) {
	s := start(t, pkbsim.Config{AccessTTL: 30 * time.Minute, SessionTTL: time.Hour}, demo(1))
	ctx := context.Background()
	// x/oauth2 reads expiry from the real clock; the simulator uses its own.
	tok := s.token(t)
	s.clock.Advance(40 * time.Minute)
	last, err := pkb.Refresh(ctx, s.oauth, tok.RefreshToken)
	require.NoError(t, err)
	assert.Empty(t, last.RefreshToken, "20 minutes of session left is less than an access token lives")
	assert.InDelta(t, 20*60, time.Until(last.Expiry).Seconds(), 5)
}

func TestBearerChecks(t *testing.T) {
	s := start(t, pkbsim.Config{OrgWideSearch: true}, demo(5))
	ctx := context.Background()

	resp, err := http.Get(s.url + "/json/messages/after/0")
	require.NoError(t, err)
	var body map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "invalid_token", body["error"])
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "invalid_token")

	_, err = s.client(t, "made-up").MessagesAfter(ctx, 0, false)
	assert.True(t, pkb.IsKind(err, pkb.KindUnauthorized), "%v", err)
	assert.True(t, pkb.Retryable(err))

	tok := s.token(t)
	c := s.client(t, tok.AccessToken)
	_, err = c.MessagesAfter(ctx, 0, false)
	require.NoError(t, err)

	assert.Equal(t, 1, s.ExpireAccessTokens())
	_, err = c.MessagesAfter(ctx, 0, false)
	assert.True(t, pkb.IsKind(err, pkb.KindUnauthorized))
	fresh, err := pkb.Refresh(ctx, s.oauth, tok.RefreshToken)
	require.NoError(t, err, "expiry leaves the refresh token alive")
	_, err = s.client(t, fresh.AccessToken).SearchAppointments(ctx, pkb.AppointmentQuery{Count: 1})
	require.NoError(t, err)

	assert.Equal(t, 1, s.RevokeGrants())
	_, err = s.client(t, fresh.AccessToken).SearchAppointments(ctx, pkb.AppointmentQuery{Count: 1})
	assert.True(t, pkb.IsKind(err, pkb.KindUnauthorized), "%v", err)
	_, err = pkb.Refresh(ctx, s.oauth, fresh.RefreshToken)
	assert.True(t, pkb.IsKind(err, pkb.KindInvalidGrant), "revoked grant cannot refresh: %v", err)

	n := s.Counters()
	assert.EqualValues(t, 1, n[pkbsim.CounterTokenMissing])
	assert.EqualValues(t, 1, n[pkbsim.CounterTokenUnknown])
	assert.EqualValues(t, 1, n[pkbsim.CounterTokenExpired])
	assert.EqualValues(t, 1, n[pkbsim.CounterTokenRevoked])
	assert.EqualValues(t, 4, n["GET /json/messages/after/{ms}"])
}

// readAll pages through the messages API as a poller would.
func readAll(t *testing.T, c *pkb.Client, pending bool) ([]pkb.Message, [][]pkb.Message) {
	t.Helper()
	var all []pkb.Message
	var pages [][]pkb.Message
	after := int64(0)
	for i := 0; ; i++ {
		require.Less(t, i, 1000, "paging does not end")
		page, err := c.MessagesAfter(context.Background(), after, pending)
		require.NoError(t, err)
		if len(page) == 0 {
			return all, pages
		}
		pages = append(pages, page)
		all = append(all, page...)
		after = page[len(page)-1].Timestamp
	}
}

func TestMessagesPagingKeepsTimestampGroupsWhole(t *testing.T) {
	ds := demo(240)
	s := start(t, pkbsim.Config{PageSize: 10}, ds)
	c := s.client(t, s.token(t).AccessToken)

	all, pages := readAll(t, c, false)
	require.Len(t, all, len(ds.Messages))
	seen := map[string]bool{}
	for _, m := range all {
		assert.False(t, seen[m.ID], "duplicate %s", m.ID)
		seen[m.ID] = true
	}
	shared := 0
	for i, p := range pages {
		if i < len(pages)-1 {
			assert.GreaterOrEqual(t, len(p), 10, "only the last page may be short")
		}
		for j := 1; j < len(p); j++ {
			assert.LessOrEqual(t, p[j-1].Timestamp, p[j].Timestamp, "oldest first")
			if p[j-1].Timestamp == p[j].Timestamp {
				shared++
			}
		}
		if i > 0 {
			assert.NotEqual(t, pages[i-1][len(pages[i-1])-1].Timestamp, p[0].Timestamp, "page %d splits a timestamp group", i)
		}
	}
	assert.Greater(t, shared, 5, "the scenario must exercise equal timestamps")

	pending, _ := readAll(t, c, true)
	notRequests := 0
	for _, e := range ds.Expect {
		if e.Kind == pkbsim.KindNotARequest {
			notRequests++
		}
	}
	assert.Greater(t, notRequests, 0)
	assert.Len(t, pending, len(ds.Messages)-notRequests)
}

// TestDemoScenarioGroundTruth checks, through the API, that each message
// leads where the scenario says: its subject parses (or not), the patient's
// appointments contain exactly the expected matches, and the NHS number is
// valid, missing or invalid as planned.
func TestDemoScenarioGroundTruth(t *testing.T) {
	ds := demo(240)
	s := start(t, pkbsim.Config{}, ds)
	c := s.client(t, s.token(t).AccessToken)
	ctx := context.Background()
	msgs := map[string]pkb.Message{}
	all, _ := readAll(t, c, false)
	for _, m := range all {
		msgs[m.ID] = m
	}

	kinds := map[string]int{}
	variants := map[int]int{}
	for _, e := range ds.Expect {
		kinds[e.Kind]++
		m := msgs[e.MessageID]
		req, err := subject.Parse(m.Subject)
		switch e.Kind {
		case pkbsim.KindUnreadable, pkbsim.KindNotARequest:
			assert.Error(t, err, "subject %q should not parse", m.Subject)
			continue
		}
		require.NoError(t, err, "subject %q", m.Subject)
		assert.Equal(t, e.RequestType, req.Type)
		variants[e.Variant]++

		page, err := c.SearchAppointments(ctx, pkb.AppointmentQuery{PatientID: m.PatientID, From: req.Start.AddDate(0, 0, -1)})
		require.NoError(t, err)
		var matches []string
		for _, a := range page.Appointments {
			start, err := time.Parse(time.RFC3339, *a.Start)
			require.NoError(t, err)
			if start.Equal(req.Start) && strings.EqualFold(*a.AppointmentType.Coding[0].Display, req.Subject) {
				matches = append(matches, *a.Id)
			}
		}
		switch e.Kind {
		case pkbsim.KindAmbiguous:
			assert.Len(t, matches, 2)
		case pkbsim.KindNoMatch:
			assert.Empty(t, matches)
		default:
			assert.Equal(t, []string{e.AppointmentID}, matches)
		}

		p, err := c.PatientByPublicID(ctx, m.PatientID)
		require.NoError(t, err)
		id := pkb.NHSNumberOf(p)
		switch e.Kind {
		case pkbsim.KindMissingNHSNumber:
			assert.Empty(t, id.Number)
		case pkbsim.KindInvalidNHSNumber:
			assert.NotEmpty(t, id.Number)
			assert.False(t, nhsnumber.Valid(id.Number))
		default:
			assert.True(t, nhsnumber.Valid(id.Number), "NHS number must pass the check")
			assert.True(t, strings.HasPrefix(id.Number, "999"))
		}
	}
	for _, k := range []string{pkbsim.KindRoutable, pkbsim.KindMissingNHSNumber, pkbsim.KindInvalidNHSNumber, pkbsim.KindAmbiguous, pkbsim.KindNoMatch, pkbsim.KindUnreadable, pkbsim.KindNotARequest} {
		assert.Greater(t, kinds[k], 0, "scenario lacks %s", k)
	}
	assert.Greater(t, kinds[pkbsim.KindRoutable], 150)
	for v := 0; v < 4; v++ {
		assert.Greater(t, variants[v], 0, "subject variant %d unused", v)
	}

	specialties, clinics, offsets := map[string]bool{}, map[string]bool{}, map[int]bool{}
	for _, a := range ds.Appointments {
		specialties[a.Specialty] = true
		clinics[a.Location] = true
		_, off := a.Start.Zone()
		offsets[off] = true
	}
	assert.GreaterOrEqual(t, len(specialties), 8)
	assert.GreaterOrEqual(t, len(clinics), 3)
	assert.True(t, offsets[0] && offsets[3600], "appointments on both sides of the clock change")
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, _ := json.Marshal(demo(50))
	b, _ := json.Marshal(demo(50))
	assert.Equal(t, string(a), string(b))
	c, _ := json.Marshal(pkbsim.Generate(pkbsim.ScenarioOptions{Seed: 2, Requests: 50}))
	assert.NotEqual(t, string(a), string(c))
}

func TestFHIRSearchPagingAndRead(t *testing.T) {
	ds := demo(40)
	s := start(t, pkbsim.Config{OrgWideSearch: true}, ds)
	c := s.client(t, s.token(t).AccessToken)
	ctx := context.Background()

	page, err := c.SearchAppointments(ctx, pkb.AppointmentQuery{Count: 7})
	require.NoError(t, err)
	assert.Equal(t, len(ds.Appointments), page.Total)
	ids := map[string]bool{}
	for {
		for _, a := range page.Appointments {
			assert.False(t, ids[*a.Id])
			ids[*a.Id] = true
		}
		if page.Next == "" {
			break
		}
		assert.LessOrEqual(t, len(page.Appointments), 7)
		page, err = c.NextAppointments(ctx, page.Next)
		require.NoError(t, err)
	}
	assert.Len(t, ids, len(ds.Appointments))

	_, err = c.NextAppointments(ctx, "http://elsewhere.example/fhir/Appointment?_offset=7")
	assert.True(t, pkb.IsKind(err, pkb.KindMalformed), "token must not leave the FHIR base")

	pending, err := c.SearchAppointments(ctx, pkb.AppointmentQuery{Statuses: []string{"pending"}, Count: 200})
	require.NoError(t, err)
	for _, a := range pending.Appointments {
		assert.Equal(t, fhir.AppointmentStatusPending, a.Status)
	}
	assert.Greater(t, pending.Total, 0)
	assert.Less(t, pending.Total, len(ds.Appointments))

	one, err := c.Appointment(ctx, ds.Appointments[0].ID)
	require.NoError(t, err)
	assert.Equal(t, ds.Appointments[0].ID, *one.Id)
	assert.NotEmpty(t, *one.Specialty[0].Coding[0].Code)

	_, err = c.Appointment(ctx, "appt-nope")
	assert.True(t, pkb.IsKind(err, pkb.KindNotFound), "%v", err)
	assert.False(t, pkb.Retryable(err))
	_, err = c.PatientByPublicID(ctx, "00000000-0000-4000-a000-000000000000")
	assert.True(t, pkb.IsKind(err, pkb.KindNotFound))
	assert.NotContains(t, err.Error(), "00000000-0000", "errors carry no patient ids")

	resp, err := http.Get(s.url + "/fhir/Appointment?date=yesterday")
	require.NoError(t, err)
	var oo map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&oo))
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "OperationOutcome", oo["resourceType"])
}

func TestPASActionsShowInFHIR(t *testing.T) {
	ds := demo(30)
	s := start(t, pkbsim.Config{OrgWideSearch: true}, ds)
	c := s.client(t, s.token(t).AccessToken)
	ctx := context.Background()
	var targets []pkbsim.Expectation
	for _, e := range ds.Expect {
		if e.AppointmentID != "" {
			targets = append(targets, e)
		}
	}
	require.GreaterOrEqual(t, len(targets), 3)
	before := s.clock.Now()
	s.clock.Advance(time.Minute)

	require.NoError(t, s.Cancel(targets[0].AppointmentID))
	newStart := time.Date(2027, 5, 4, 10, 0, 0, 0, subject.London())
	require.NoError(t, s.Move(targets[1].AppointmentID, newStart))
	newID, err := s.Rebook(targets[2].AppointmentID, newStart)
	require.NoError(t, err)
	assert.Error(t, s.Cancel("appt-nope"))

	changed, err := c.SearchAppointments(ctx, pkb.AppointmentQuery{UpdatedAfter: before, Count: 100})
	require.NoError(t, err)
	got := map[string]fhir.Appointment{}
	for _, a := range changed.Appointments {
		got[*a.Id] = a
	}
	require.Len(t, got, 4, "three changed, one new")
	assert.Equal(t, fhir.AppointmentStatusCancelled, got[targets[0].AppointmentID].Status)
	moved := got[targets[1].AppointmentID]
	assert.Equal(t, fhir.AppointmentStatusBooked, moved.Status)
	assert.Equal(t, "2027-05-04T10:00:00.000+01:00", *moved.Start)
	assert.Equal(t, fhir.AppointmentStatusCancelled, got[targets[2].AppointmentID].Status)
	nb := got[newID]
	assert.Equal(t, fhir.AppointmentStatusBooked, nb.Status)
	assert.Equal(t, *got[targets[2].AppointmentID].Specialty[0].Coding[0].Code, *nb.Specialty[0].Coding[0].Code)
	assert.Equal(t, *got[targets[2].AppointmentID].Participant[0].Actor.Reference, *nb.Participant[0].Actor.Reference)
}

func TestAutoPASActsAfterDelivery(t *testing.T) {
	ds := demo(40)
	s := start(t, pkbsim.Config{AutoPAS: 10 * time.Minute}, ds)
	c := s.client(t, s.token(t).AccessToken)

	readAll(t, c, true)
	s.clock.Advance(5 * time.Minute)
	still := s.Dataset()
	for _, e := range ds.Expect {
		if e.AppointmentID != "" {
			assert.Equal(t, "pending", apptStatus(still, e.AppointmentID), "too early")
		}
	}
	s.clock.Advance(6 * time.Minute)
	done := s.Dataset()
	moved, rebooked := 0, 0
	for _, e := range ds.Expect {
		if e.AppointmentID == "" {
			continue
		}
		st := apptStatus(done, e.AppointmentID)
		switch e.RequestType {
		case subject.Cancel:
			assert.Equal(t, "cancelled", st)
		case subject.Change:
			if st == "booked" {
				moved++
			} else {
				assert.Equal(t, "cancelled", st)
				rebooked++
			}
		}
	}
	assert.Greater(t, moved, 0)
	assert.Greater(t, rebooked, 0)
	assert.Equal(t, len(ds.Appointments)+rebooked, len(done.Appointments))
}

func apptStatus(ds pkbsim.Dataset, id string) string {
	for _, a := range ds.Appointments {
		if a.ID == id {
			return a.Status
		}
	}
	return ""
}

func TestFaultInjection(t *testing.T) {
	s := start(t, pkbsim.Config{}, demo(5))
	c := s.client(t, s.token(t).AccessToken)
	ctx := context.Background()

	s.SetFaults(pkbsim.Faults{ErrorRate: 1})
	_, err := c.MessagesAfter(ctx, 0, true)
	assert.True(t, pkb.IsKind(err, pkb.KindServer), "%v", err)
	assert.True(t, pkb.Retryable(err))

	s.SetFaults(pkbsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 7})
	_, err = c.SearchAppointments(ctx, pkb.AppointmentQuery{})
	var pe *pkb.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, pkb.KindRateLimited, pe.Kind)
	assert.Equal(t, 7*time.Second, pe.RetryAfter)

	s.SetFaults(pkbsim.Faults{LatencyMS: 500})
	fast, err := pkb.New(pkb.Options{BaseURL: s.url, FHIRBaseURL: s.url + "/fhir", Tokens: pkb.StaticToken("x"), Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = fast.MessagesAfter(ctx, 0, true)
	assert.True(t, pkb.IsKind(err, pkb.KindTimeout), "%v", err)

	s.SetFaults(pkbsim.Faults{ErrorRate: 1, Paths: []string{"/fhir/"}})
	_, err = c.MessagesAfter(ctx, 0, true)
	assert.NoError(t, err, "faults limited to FHIR")

	n := s.Counters()
	assert.EqualValues(t, 1, n[pkbsim.CounterFault5xx])
	assert.EqualValues(t, 1, n[pkbsim.CounterFault429])
}

func TestAdminAPI(t *testing.T) {
	s := start(t, pkbsim.Config{}, pkbsim.Dataset{})
	post := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	code, body := post("POST", "/admin/scenario", `{"name":"demo","seed":3,"requests":25}`)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"messages":25`)
	assert.Len(t, s.Dataset().Messages, 25)

	code, body = post("POST", "/admin/scenario", `{"name":"nope"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "unknown scenario")

	code, _ = post("PUT", "/admin/faults", `{"errorRate":0.7,"rateLimitRate":0.6}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = post("PUT", "/admin/faults", `{"errorRate":0.2,"retryAfterSeconds":3}`)
	assert.Equal(t, http.StatusOK, code)
	code, _ = post("DELETE", "/admin/faults", ``)
	assert.Equal(t, http.StatusNoContent, code)

	appt := s.Dataset().Appointments[0].ID
	code, body = post("POST", "/admin/pas/cancel", `{"appointmentId":"`+appt+`"}`)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, "cancelled", apptStatus(s.Dataset(), appt))
	code, _ = post("POST", "/admin/pas/move", `{"appointmentId":"`+appt+`"}`)
	assert.Equal(t, http.StatusBadRequest, code, "move needs a start")

	code, _ = post("PUT", "/admin/oauth/auto-approve", `{"enabled":true}`)
	assert.Equal(t, http.StatusOK, code)
	resp, err := noRedirect.Get(s.oauth.AuthCodeURL("q"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusFound, resp.StatusCode, "auto-approve skips the page")

	code, _ = post("PUT", "/admin/pas/auto", `{"delay":"soon"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, body = post("GET", "/admin/counters", ``)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `"GET /apiAuthorize.action":1`)
}

func TestMessagesUntilEndsTheScenarioThen(t *testing.T) {
	until := time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC)
	ds := pkbsim.Generate(pkbsim.ScenarioOptions{Seed: 4, Requests: 50, MessagesUntil: until})
	require.Len(t, ds.Messages, 50)
	assert.Equal(t, until.UnixMilli(), ds.Messages[49].Timestamp)
	assert.Less(t, ds.Messages[0].Timestamp, ds.Messages[49].Timestamp)
}

// By default the simulator serves PKB's documented API: an Appointment
// search must name a patient, or it is refused with 400 and an
// OperationOutcome. The org-wide option emulates a server that allows it.
func TestAppointmentSearchNeedsAPatientByDefault(t *testing.T) {
	ds := demo(5)
	s := start(t, pkbsim.Config{}, ds)
	c := s.client(t, s.token(t).AccessToken)
	ctx := context.Background()
	_, err := c.SearchAppointments(ctx, pkb.AppointmentQuery{UpdatedAfter: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Count: 10})
	var pe *pkb.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 400, pe.Status)
	assert.Equal(t, "required", pe.Code, "an OperationOutcome says why")
	assert.EqualValues(t, 1, s.Counters()[pkbsim.CounterOrgWideRefused])

	page, err := c.SearchAppointments(ctx, pkb.AppointmentQuery{PatientID: ds.Appointments[0].PatientID, Count: 10})
	require.NoError(t, err)
	assert.NotEmpty(t, page.Appointments, "a patient's search is served")

	s.SetOrgWideSearch(true)
	page, err = c.SearchAppointments(ctx, pkb.AppointmentQuery{UpdatedAfter: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Count: 10})
	require.NoError(t, err)
	assert.NotEmpty(t, page.Appointments)
}

// With a feed URL the simulated PAS also sends each update it makes as a
// FHIR Appointment, with the bearer secret, as an integration engine would.
func TestPASSendsCopiesToTheFeed(t *testing.T) {
	got := make(chan map[string]any, 4)
	var auth string
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- body
	}))
	t.Cleanup(feed.Close)
	ds := demo(5)
	s := start(t, pkbsim.Config{FeedURL: feed.URL, FeedToken: "feed-secret-0123456789"}, ds)
	a := ds.Appointments[0]
	require.NoError(t, s.Cancel(a.ID))
	select {
	case body := <-got:
		assert.Equal(t, "Appointment", body["resourceType"])
		assert.Equal(t, "cancelled", body["status"])
		ids, _ := body["identifier"].([]any)
		require.NotEmpty(t, ids)
		assert.Equal(t, a.PlacerID, ids[0].(map[string]any)["value"])
		assert.Equal(t, "Bearer feed-secret-0123456789", auth)
	case <-time.After(5 * time.Second):
		t.Fatal("no copy reached the feed")
	}
	require.Eventually(t, func() bool { return s.Counters()[pkbsim.CounterFeedSent] == 1 }, 5*time.Second, 20*time.Millisecond)
}
