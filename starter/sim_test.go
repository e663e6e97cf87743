package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/nhsnumber"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/subject"
)

// TestSimCommand runs `starter sim --scenario demo --seed 1` as a user
// would and walks the grant, the token rotation and the API with plain
// HTTP, as in the foundation issue's acceptance list.
func TestSimCommand(t *testing.T) {
	for _, v := range []string{"PKB_CLIENT_ID", "PKB_CLIENT_SECRET", "PKB_REDIRECT_URL"} {
		t.Setenv(v, "")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	_ = l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runSim(ctx, []string{"--addr", addr, "--scenario", "demo", "--seed", "1"}) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authURL := base + "/apiAuthorize.action?" + url.Values{"response_type": {"code"}, "client_id": {simDefaultClientID}, "redirect_uri": {simDefaultRedirect}, "scope": {"CLINICIAN"}, "state": {"s1"}}.Encode()
	resp, err := http.Get(authURL)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the authorize page")

	resp, err = noRedirect.PostForm(base+"/apiAuthorize.action", url.Values{"response_type": {"code"}, "client_id": {simDefaultClientID}, "redirect_uri": {simDefaultRedirect}, "scope": {"CLINICIAN"}, "state": {"s1"}, "decision": {"approve"}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	require.NotEmpty(t, code)

	tokenCall := func(form url.Values) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, base+"/apiToken.action", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(simDefaultClientID, simDefaultClientSecret)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	status, pair := tokenCall(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {simDefaultRedirect}})
	require.Equal(t, http.StatusOK, status)
	status, rotated := tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pair["refresh_token"].(string)}})
	require.Equal(t, http.StatusOK, status)
	assert.NotEqual(t, pair["refresh_token"], rotated["refresh_token"])
	status, refused := tokenCall(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pair["refresh_token"].(string)}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_grant", refused["error"])

	resp, err = http.Get(base + "/json/messages/after/0")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	c, err := pkb.New(pkb.Options{BaseURL: base, FHIRBaseURL: base + "/fhir", Tokens: pkb.StaticToken(rotated["access_token"].(string))})
	require.NoError(t, err)
	msgs, err := c.MessagesAfter(ctx, 0, true)
	require.NoError(t, err)
	require.NotEmpty(t, msgs)
	parsed := 0
	for _, m := range msgs {
		req, err := subject.Parse(m.Subject)
		if err != nil {
			continue
		}
		parsed++
		if parsed > 5 {
			continue
		}
		page, err := c.SearchAppointments(ctx, pkb.AppointmentQuery{PatientID: m.PatientID, From: req.Start.AddDate(0, 0, -1)})
		require.NoError(t, err)
		assert.NotEmpty(t, page.Appointments, "appointments found by the patient's public id")
	}
	assert.Greater(t, parsed, len(msgs)*3/4)

	valid := 0
	for _, m := range msgs[:20] {
		p, err := c.PatientByPublicID(ctx, m.PatientID)
		require.NoError(t, err)
		if nhsnumber.Valid(pkb.NHSNumberOf(p).Number) {
			valid++
		}
	}
	assert.Greater(t, valid, 10, "patients carry NHS numbers that pass the check")
}

func TestSimCommandRefusesUnknownScenario(t *testing.T) {
	err := runSim(context.Background(), []string{"--addr", "127.0.0.1:0", "--scenario", "nope"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown scenario "nope"`)
}

func TestConfigErrorStopsSim(t *testing.T) {
	t.Setenv("PKB_REDIRECT_URL", "not a url")
	err := runSim(context.Background(), []string{"--addr", "127.0.0.1:0"})
	require.Error(t, err)
	assert.Equal(t, "config: PKB_REDIRECT_URL must be an http:// or https:// URL", err.Error())
}
