package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/internal/replay"
	"github.com/rebookhq/rebook/workflows"
)

// starter replay's report names every history that fails, as
// non-deterministic, and counts the rest.
func TestReplayReportNamesEachFailure(t *testing.T) {
	changed := replay.Replace(workflows.TokenKeeperWorkflow, func(ctx workflow.Context, clientID string) error {
		return workflow.Sleep(ctx, time.Hour)
	})
	results, err := replay.Dir("../workflows/testdata/histories", changed)
	require.NoError(t, err)
	var out bytes.Buffer
	failed := printReplay(&out, results)
	keepers := 0
	for _, r := range results {
		if r.Type == workflows.TokenKeeperWorkflow {
			keepers++
		}
	}
	require.Positive(t, keepers)
	assert.Equal(t, keepers, failed, "every TokenKeeper history fails, and nothing else")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, failed+1)
	for _, l := range lines[:failed] {
		assert.True(t, strings.HasPrefix(l, "FAIL NON-DETERMINISTIC "), l)
		assert.Contains(t, l, "(TokenKeeper)")
	}
	assert.Contains(t, lines[failed], "failed")
	all, err := replay.Dir("../workflows/testdata/histories", nil)
	require.NoError(t, err)
	out.Reset()
	assert.Zero(t, printReplay(&out, all))
	assert.True(t, strings.HasPrefix(out.String(), fmt.Sprintf("%d replayed, 0 failed; AppointmentRequest ", len(all))), out.String())
}
