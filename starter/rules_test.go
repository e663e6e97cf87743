package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/routing"
)

func TestRulesImportExport(t *testing.T) {
	t.Setenv("DATABASE_URL", testdb.URL(t))
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "rules.csv")
	require.NoError(t, os.WriteFile(good, []byte(routing.DemoCSV), 0o600))
	require.NoError(t, runRules(ctx, []string{"import", good}))

	out := filepath.Join(dir, "out.csv")
	require.NoError(t, runRules(ctx, []string{"export", out}))
	a, err := routing.ReadCSV(mustOpen(t, good))
	require.NoError(t, err)
	b, err := routing.ReadCSV(mustOpen(t, out))
	require.NoError(t, err)
	assert.ElementsMatch(t, a, b)

	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("specialty,clinic,request_type,team,slack_channel,sla_hours\nCardiology,,,Cardio,cardio,0\n"), 0o600))
	err = runRules(ctx, []string{"import", bad})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 2: sla_hours")
	require.NoError(t, runRules(ctx, []string{"export", out}))
	c, err := routing.ReadCSV(mustOpen(t, out))
	require.NoError(t, err)
	assert.ElementsMatch(t, a, c, "a refused import changes nothing")

	assert.Error(t, runRules(ctx, []string{"frobnicate"}))
}

func mustOpen(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}
