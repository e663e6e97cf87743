package workflows_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/card"
	"github.com/rebookhq/rebook/workflows"
)

// owners are the only files that may spell a workflow's names, states and
// card states.
var owners = map[string]bool{
	"workflows/names.go":       true,
	"workflows/request.go":     true,
	"workflows/poll.go":        true,
	"workflows/tokenkeeper.go": true,
	"internal/card/card.go":    true,
}

// sameWords are other vocabularies' words that happen to equal an owned
// name, where they mean something else: a file and the word.
var sameWords = map[string]string{
	// The stored grant's status, a column value of the store's own.
	"internal/store/grants.go": "healthy",
}

// queryNames are everyday words ("state" is also OAuth's parameter), so
// they count only as the name argument of a query call.
func queryName(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && strings.Contains(sel.Sel.Name, "Query")
}

// TestNamesAreSpelledOnlyByTheirOwner reads every Go file in the module
// and fails on a string literal that is one of a workflow's names, states
// or card states, or that begins a workflow id, outside the file that
// owns it: elsewhere they are used through the owner's constants.
func TestNamesAreSpelledOnlyByTheirOwner(t *testing.T) {
	owned := map[string]string{}
	for what, vals := range map[string][]string{
		"workflow type": {workflows.AppointmentRequestWorkflow, workflows.PollMessagesWorkflow, workflows.WatchAppointmentsWorkflow, workflows.TokenKeeperWorkflow},
		"schedule id":   {workflows.PollScheduleID, workflows.WatchScheduleID},
		"signal":        {workflows.SignalAppointmentChanged, workflows.SignalRefreshNow, workflows.SignalGrantReceived},
		"update":        {workflows.UpdateStaffAction},
		"request state": {workflows.StateReceived, workflows.StateRouted, workflows.StateTriaged, workflows.StateClaimed, workflows.StateCompleted, workflows.StateTriagedThenCompleted, workflows.StateClosedByStaff},
		"keeper state":  {workflows.KeeperHealthy, workflows.KeeperRefreshing, workflows.KeeperNeedsGrant},
		"staff action":  {workflows.ActionClaim, workflows.ActionDone, workflows.ActionCantAction},
		"card state":    {string(card.Open), string(card.Claimed), string(card.Completed), string(card.Closed)},
	} {
		for _, v := range vals {
			owned[v] = what
		}
	}
	idPrefixes := []string{
		strings.TrimSuffix(workflows.RequestWorkflowID("x"), "x"),
		strings.TrimSuffix(workflows.TokenKeeperID("x"), "x"),
	}

	root := moduleRoot(t)
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "tools" || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || owners[rel] || rel == "workflows/names_test.go" {
			return nil
		}
		files++
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok && queryName(call) {
				for _, a := range call.Args {
					if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						if v == workflows.QueryState || v == workflows.QueryTokenKeeper {
							t.Errorf("%s spells the query %q: use the owner's constant", rel, v)
						}
					}
				}
			}
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if what, ok := owned[v]; ok && sameWords[rel] != v {
				t.Errorf("%s spells the %s %q: use the owner's constant", rel, what, v)
			}
			for _, p := range idPrefixes {
				if strings.HasPrefix(v, p) {
					t.Errorf("%s spells a workflow id %q: use its id function", rel, v)
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	assert.Greater(t, files, 50, "the walk read the module")
}

// TestWorkflowsImportNoClient: workflow code reaches the world only
// through activities, so it must not import Slack, PKB, the store or a
// Temporal client.
func TestWorkflowsImportNoClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/rebookhq/rebook/workflows").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/rebookhq/rebook/activities", "go list read the workflows' imports")
	direct, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "github.com/rebookhq/rebook/workflows").Output()
	require.NoError(t, err)
	for _, imp := range strings.Fields(string(direct)) {
		for _, banned := range []string{"/internal/slackmsg", "/internal/pkb", "/internal/store", "/internal/wfclient", "go.temporal.io/sdk/client", "github.com/slack-go/"} {
			assert.NotContains(t, imp, banned, "workflows imports %s", imp)
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}
