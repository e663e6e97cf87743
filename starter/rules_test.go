package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/slackfake"
	"github.com/rebookhq/rebook/internal/dev/teamsfake"
	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/store"
)

func TestRulesImportExport(t *testing.T) {
	t.Setenv("DATABASE_URL", testdb.URL(t))
	ctx := context.Background()
	require.NoError(t, runMigrate(ctx, nil), "rules work on a migrated database, as every command but migrate")
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

// Case 4: an import naming a channel Slack does not have is refused, with
// the bad channel named, and changes nothing.
func TestHazardRulesImportChecksEveryChannel(t *testing.T) {
	t.Setenv("DATABASE_URL", testdb.URL(t))
	require.NoError(t, runMigrate(context.Background(), nil))
	sl := slackfake.New(nil)
	t.Cleanup(sl.Stop)
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-test")
	t.Setenv("SLACK_API_URL", sl.GetAPIURL())
	rules, err := routing.ReadCSV(strings.NewReader(routing.DemoCSV))
	require.NoError(t, err)
	for _, r := range rules[1:] {
		sl.AddChannel(r.SlackChannel)
	}
	path := filepath.Join(t.TempDir(), "rules.csv")
	require.NoError(t, os.WriteFile(path, []byte(routing.DemoCSV), 0o600))

	ctx := context.Background()
	err = runRules(ctx, []string{"import", path})
	require.Error(t, err, "#%s is missing", rules[0].SlackChannel)
	assert.Contains(t, err.Error(), "nothing imported")
	out := filepath.Join(t.TempDir(), "after.csv")
	require.NoError(t, runRules(ctx, []string{"export", out}))
	after, err := routing.ReadCSV(mustOpen(t, out))
	require.NoError(t, err)
	assert.Empty(t, after, "a refused import changes nothing")
	sl.AddChannel(rules[0].SlackChannel)
	require.NoError(t, runRules(ctx, []string{"import", path}))
}

// Case 13: `starter serve` changes no schema and refuses a database behind
// this release; `starter migrate` brings it up to date.
func TestHazardServeRunsNoMigrations(t *testing.T) {
	url := testdb.URL(t)
	t.Setenv("DATABASE_URL", url)
	ctx := context.Background()
	require.NoError(t, store.EnsureDatabase(ctx, url))
	st, err := store.Connect(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	require.ErrorIs(t, st.CheckSchema(ctx), store.ErrSchemaBehind, "a fresh database is behind")
	require.NoError(t, runMigrate(ctx, nil))
	require.NoError(t, st.CheckSchema(ctx))
}

// A rule naming a Teams channel is checked against Teams as Slack's are
// against Slack: while the bot is not in the channel's team the import is
// refused, naming it; once it is, the import goes through.
func TestTeamsRulesImportChecksTeamsChannels(t *testing.T) {
	t.Setenv("DATABASE_URL", testdb.URL(t))
	require.NoError(t, runMigrate(context.Background(), nil))
	f := teamsfake.New("app-1", "tenant-1", "secret")
	t.Cleanup(f.Close)
	for k, v := range map[string]string{"TEAMS_APP_ID": "app-1", "TEAMS_APP_PASSWORD": "secret", "TEAMS_TENANT_ID": "tenant-1",
		"TEAMS_LOGIN_BASE": f.LoginBase(), "TEAMS_SERVICE_URL": f.ServiceURL()} {
		t.Setenv(k, v)
	}
	const ch = "19:cardiology@thread.tacv2"
	path := filepath.Join(t.TempDir(), "rules.csv")
	require.NoError(t, os.WriteFile(path, []byte("specialty,clinic,request_type,team,slack_channel,sla_hours\nCardiology,,,Cardiology bookings,teams:"+ch+",48\n"), 0o600))
	ctx := context.Background()
	err := runRules(ctx, []string{"import", path})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nothing imported")
	f.Install(ch)
	require.NoError(t, runRules(ctx, []string{"import", path}))
}
