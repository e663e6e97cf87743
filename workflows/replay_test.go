package workflows_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/workflows"
)

// Case 10: histories recorded by an earlier release (commit 14226c3, in
// testdata/histories: requests waiting and closed, claims, the
// TokenKeeper) replay on this code. A change to workflow logic that is not
// behind workflow.GetVersion fails here with a nondeterminism error, as it
// would for every request in flight when the release is deployed. Record
// a new set with each release that changes a workflow.
func TestHazardRecordedHistoriesReplay(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "histories", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	for _, dir := range dirs {
		raw, err := os.ReadFile(filepath.Join(dir, "key"))
		require.NoError(t, err)
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
		require.NoError(t, err)
		dc, err := codec.DataConverter(key)
		require.NoError(t, err)
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			t.Run(filepath.Base(dir)+"/"+strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
				h, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
				require.NoError(t, err)
				r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: dc,
					Interceptors: []interceptor.WorkerInterceptor{wireNames()}})
				require.NoError(t, err)
				workflows.Register(r)
				require.NoError(t, r.ReplayWorkflowHistory(nil, h))
			})
		}
	}
}

// wireNames gives the replayer the activity names the worker registers:
// a replayer takes no activities, so a typed reference would resolve to
// its bare method name instead of the name in the history.
func wireNames() interceptor.WorkerInterceptor {
	names := nameRecorder{}
	activities.Register(names, activities.Set{})
	return &aliases{names: names}
}

type nameRecorder map[string]string

func (n nameRecorder) RegisterActivityWithOptions(a interface{}, o activity.RegisterOptions) {
	full := runtime.FuncForPC(reflect.ValueOf(a).Pointer()).Name()
	full = strings.TrimSuffix(full, "-fm")
	n[full[strings.LastIndex(full, ".")+1:]] = o.Name
}

type aliases struct {
	interceptor.WorkerInterceptorBase
	names map[string]string
}

func (a *aliases) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &aliasIn{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, names: a.names}
}

type aliasIn struct {
	interceptor.WorkflowInboundInterceptorBase
	names map[string]string
}

func (i *aliasIn) Init(out interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&aliasOut{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: out}, names: i.names})
}

type aliasOut struct {
	interceptor.WorkflowOutboundInterceptorBase
	names map[string]string
}

func (o *aliasOut) ExecuteActivity(ctx workflow.Context, activityType string, args ...interface{}) workflow.Future {
	if n, ok := o.names[activityType]; ok {
		activityType = n
	}
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func mustOpen(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}
