package feed_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/feed"
	"github.com/rebookhq/rebook/internal/store"
)

type noRequests struct{ activities.Requests }

func (noRequests) AppointmentChanged(context.Context, string, activities.AppointmentUpdate) error {
	panic("no request waits in this test")
}

const good = `{"resourceType": "Appointment", "status": "cancelled", "start": "2027-03-02T09:30:00Z",
	"identifier": [{"system": "https://trust.example/pas", "value": "F-1"}]}`

// The PAS feed's bad inputs, as an integration engine could send them:
// each is refused with a status and an OperationOutcome that says why
// (the engine keeps the message and an analyst sees the reason), or is
// accepted for no waiting request and counted; none is lost silently,
// none panics.
func TestFeedBadInput(t *testing.T) {
	st, err := store.Open(context.Background(), testdb.URL(t), nil)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	f := &feed.Feed{Store: st, Requests: noRequests{}, Log: slog.New(slog.DiscardHandler)}
	h := f.HTTP("feed-secret")

	cases := []struct {
		name, body, auth string
		status           int
		says             string
	}{
		{"no token", good, "", http.StatusUnauthorized, "bearer token"},
		{"the wrong token", good, "Bearer guess", http.StatusUnauthorized, "bearer token"},
		{"bad JSON", `{"resourceType": "Appointment", "status": `, "", http.StatusBadRequest, "not JSON"},
		{"an empty body", ``, "", http.StatusBadRequest, "not JSON"},
		{"another resource", `{"resourceType": "Patient", "id": "p1"}`, "", http.StatusBadRequest, `"Patient" is not Appointment`},
		{"wrong types", `{"resourceType": "Appointment", "status": "booked", "identifier": "F-1", "start": 5}`, "", http.StatusBadRequest, "does not follow FHIR R4"},
		{"an unknown status", `{"resourceType": "Appointment", "status": "maybe", "identifier": [{"value": "F-1"}]}`, "", http.StatusBadRequest, "does not follow FHIR R4"},
		{"no identifier", `{"resourceType": "Appointment", "status": "cancelled", "start": "2027-03-02T09:30:00Z"}`, "", http.StatusBadRequest, "no identifier"},
		{"no status", `{"resourceType": "Appointment", "identifier": [{"value": "F-1"}]}`, "", http.StatusBadRequest, "no status"},
		{"a local time without offset, on the spring clock change", `{"resourceType": "Appointment", "status": "cancelled",
			"start": "2027-03-28T01:30:00", "identifier": [{"value": "F-1"}]}`, "", http.StatusBadRequest, "start is not an instant"},
		{"a huge body", `{"resourceType": "Appointment", "status": "cancelled", "comment": "` + strings.Repeat("x", 2<<20) + `"}`, "", http.StatusRequestEntityTooLarge, "larger than 1 MiB"},
		{"HTML in the identifier, for no waiting request", `{"resourceType": "Appointment", "status": "cancelled", "start": "2027-03-02T09:30:00Z",
			"identifier": [{"value": "<script>alert(1)</script>"}]}`, "", http.StatusOK, "stored until a request"},
		{"a good update for no waiting request", good, "", http.StatusOK, "stored until a request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, feed.FHIRPath, strings.NewReader(c.body))
			if c.auth == "" && !strings.HasPrefix(c.name, "no token") {
				c.auth = "Bearer feed-secret"
			}
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			rec := httptest.NewRecorder()
			require.NotPanics(t, func() { h.ServeHTTP(rec, req) })
			assert.Equal(t, c.status, rec.Code)
			raw, _ := io.ReadAll(rec.Body)
			var oo fhir.OperationOutcome
			require.NoError(t, json.Unmarshal(raw, &oo), "an OperationOutcome: %s", raw)
			require.Len(t, oo.Issue, 1)
			require.NotNil(t, oo.Issue[0].Diagnostics)
			assert.Contains(t, *oo.Issue[0].Diagnostics, c.says)
			assert.NotContains(t, *oo.Issue[0].Diagnostics, "<script>", "the answer does not echo the input")
		})
	}
	applied, stale, hinted, kept := f.Counts()
	assert.Zero(t, applied+stale+hinted)
	assert.EqualValues(t, 2, kept, "the accepted updates for no request are kept and counted")
}
