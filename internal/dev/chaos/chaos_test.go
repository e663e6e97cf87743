package chaos_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/chaos"
	"github.com/rebookhq/rebook/internal/dev/devserver"
)

// The smoke run of `make chaos`: 40 requests through the real binaries
// while every fault is applied once (a fault every 3 s), the worker killed
// between each.
// Every request must complete, once, with the read model agreeing; the
// full run (1,000 requests) is in docs/reliability.md.
func TestChaosSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Temporal, PostgreSQL, the worker and the front door")
	}
	wd, _ := os.Getwd()
	root, err := devserver.RepoRoot(wd)
	require.NoError(t, err)
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./worker", "./starter")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	res, err := chaos.Run(context.Background(), chaos.Options{Requests: 40, Rate: 1.5, FaultEvery: 3 * time.Second,
		WorkerBinary: filepath.Join(dir, "worker"), StarterBinary: filepath.Join(dir, "starter"), RepoRoot: root,
		Timeout: 6 * time.Minute, Log: testWriter{t}})
	require.NoError(t, err)
	t.Logf("%+v", res)
	for _, f := range []string{chaos.FaultWorkerKilled, chaos.FaultTemporalRestart, chaos.FaultPostgresRestart, chaos.FaultPKB5xx,
		chaos.FaultPKB429, chaos.FaultPKBSlow, chaos.FaultSlack429, chaos.FaultGrantRevoked} {
		assert.Positive(t, res.Faults[f], f)
	}
	assert.Equal(t, 1, res.Faults[chaos.FaultGrantRevoked], "the grant is revoked once")
	// After an outage Rebook's retries back off, so a later window may
	// meet no call: at least one of PKB's faults must have reached it.
	assert.Positive(t, res.PKB5xxAnswered+res.PKB429Answered, "PKB's faults reached Rebook")
	assert.Equal(t, 40, res.Completed)
	assert.Zero(t, res.Lost)
	assert.Zero(t, res.DuplicateCards)
	assert.Zero(t, res.MissingCards)
	assert.Zero(t, res.ReadModelDisagrees)
	assert.True(t, res.OK(), "%v", res.Problems)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
