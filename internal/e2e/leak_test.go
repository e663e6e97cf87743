package e2e

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"

	"github.com/rebookhq/rebook/internal/dev/pkbsim"
	"github.com/rebookhq/rebook/internal/replay"
)

// lockedBuffer is a log sink many goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// patientData is what names or describes the scenario's patients: NHS
// numbers (as stored and as written), PKB patient ids, full names, and
// each message's subject and text.
func patientData(ds pkbsim.Dataset) map[string]string {
	out := map[string]string{}
	for _, p := range ds.Patients {
		if p.NHSNumber != "" {
			out[p.NHSNumber] = "NHS number"
			if len(p.NHSNumber) == 10 {
				out[p.NHSNumber[:3]+" "+p.NHSNumber[3:6]+" "+p.NHSNumber[6:]] = "NHS number"
			}
		}
		out[p.ID] = "PKB patient id"
		out[p.GivenName+" "+p.FamilyName] = "name"
	}
	for _, m := range ds.Messages {
		for _, text := range []string{m.Subject, m.Content} {
			if len(text) >= 16 { // shorter texts are too common to be the patient's own words
				out[text] = "message text"
			}
		}
	}
	return out
}

// Requests run through the whole stack while PKB answers some calls with
// 503 and 429 and Slack with 429, so that errors are logged and failures
// are recorded. Then every log line (every level, Rebook's and the SDK's),
// every clear string of every history (failure messages and stack traces,
// ids, unsealed payloads) and every workflow's search attributes are read:
// none holds an NHS number, a PKB patient id, a patient's name or the text
// of a message.
func TestNoPatientDataInLogsHistoriesOrSearchAttributes(t *testing.T) {
	const n = 30
	var logs lockedBuffer
	s := startLogged(t, n, &logs)
	ctx := context.Background()
	s.sim.SetFaults(pkbsim.Faults{ErrorRate: 0.15, RateLimitRate: 0.1, RetryAfterSeconds: 1})
	s.slack.RateLimit(0.1, time.Second)
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "every request routed to Slack", limit(4*time.Minute), func() bool { return len(s.cards()) >= n })
	s.sim.SetFaults(pkbsim.Faults{})
	s.slack.RateLimit(0, 0)
	s.closeAll(t, n, limit(5*time.Minute))

	var history, attrs strings.Builder
	failures := 0
	err := replay.ForEach(ctx, s.tc, "default", "", func(e *workflowpb.WorkflowExecutionInfo) (bool, error) {
		clearText(e.ProtoReflect(), &attrs)
		h, err := replay.History(ctx, s.tc, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
		if err != nil {
			return false, err
		}
		for _, ev := range h.GetEvents() {
			clearText(ev.ProtoReflect(), &history)
			if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED && ev.GetActivityTaskStartedEventAttributes().GetLastFailure() != nil {
				failures++
			}
		}
		return false, nil
	})
	require.NoError(t, err)
	logText := logs.String()
	require.Contains(t, logText, "Activity error", "the run logged failed attempts")
	require.Positive(t, failures, "the histories hold failures of retried activities")
	require.Contains(t, attrs.String(), "RequestState", "the search attributes were read")
	t.Logf("read %d KiB of logs, %d KiB of clear history text with %d retried activities' failures, %d KiB of search attributes",
		len(logText)>>10, history.Len()>>10, failures, attrs.Len()>>10)

	data := patientData(s.ds)
	require.NotEmpty(t, data)
	for where, text := range map[string]string{"the logs": logText, "Temporal's histories": history.String(), "the search attributes": attrs.String()} {
		for v, what := range data {
			assert.False(t, strings.Contains(text, v), "a %s is in %s", what, where)
		}
	}
}
