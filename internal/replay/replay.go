// Package replay checks that this build's workflow code can carry on the
// histories already written: recorded ones kept in testdata, and live
// ones fetched from a namespace before a deploy. A change to workflow
// logic that is not behind workflow.GetVersion fails here with a
// nondeterminism error, instead of on every request in flight after the
// deploy.
package replay

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"

	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/workflows"
)

// Register puts the workflows to replay on a replayer; Rebook's unless
// a test gives others.
type Register func(workflows.Registry)

// Replace registers Rebook's workflows with fn in place of the one named
// name: a changed build, for tests that the replay check catches it.
func Replace(name string, fn any) Register {
	return func(r workflows.Registry) {
		workflows.Register(except{r, name})
		r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
	}
}

// except registers every workflow but one.
type except struct {
	workflows.Registry
	name string
}

func (e except) RegisterWorkflowWithOptions(w interface{}, o workflow.RegisterOptions) {
	if o.Name != e.name {
		e.Registry.RegisterWorkflowWithOptions(w, o)
	}
}

// Result is one history's replay.
type Result struct {
	WorkflowID string
	RunID      string
	Type       string
	// Source is the file or the namespace the history came from.
	Source string
	Err    error
}

// Replayer replays histories on this build's workflows (or reg's).
type Replayer struct {
	r worker.WorkflowReplayer
}

// New makes a Replayer whose payloads are opened with dc (nil: the
// default converter).
func New(dc converter.DataConverter, reg Register) (*Replayer, error) {
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: dc,
		Interceptors: []interceptor.WorkerInterceptor{wireNames()}})
	if err != nil {
		return nil, err
	}
	if reg == nil {
		reg = workflows.Register
	}
	reg(r)
	return &Replayer{r: r}, nil
}

// Replay replays one history.
func (p *Replayer) Replay(h *historypb.History) error {
	return p.r.ReplayWorkflowHistory(quiet, h)
}

// Dir replays every history under root: each directory holding a "key"
// file (REBOOK_ENCRYPTION_KEY, base64, of the run that recorded them)
// and histories as JSON, as `temporal workflow show --output json`
// writes them.
func Dir(root string, reg Register) ([]Result, error) {
	var out []Result
	err := filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(filepath.Join(dir, "key"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil {
			return fmt.Errorf("%s: key is not base64", dir)
		}
		dc, err := codec.DataConverter(key)
		if err != nil {
			return err
		}
		p, err := New(dc, reg)
		if err != nil {
			return err
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			return err
		}
		for _, f := range files {
			res := Result{Source: f}
			h, err := readHistory(f)
			if err != nil {
				return err
			}
			res.Type, res.WorkflowID = typeOf(h), strings.TrimSuffix(filepath.Base(f), ".json")
			res.Err = p.Replay(h)
			out = append(out, res)
		}
		return nil
	})
	return out, err
}

func readHistory(path string) (*historypb.History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

func typeOf(h *historypb.History) string {
	if evs := h.GetEvents(); len(evs) > 0 {
		return evs[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
	}
	return ""
}

// quiet keeps the SDK from logging each failed replay's panic and stack:
// the error returned says what failed.
var quiet = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))

// Options select live histories.
type Options struct {
	Namespace string
	// Query is a visibility query; empty: every Rebook workflow on its
	// task queue.
	Query string
	// Limit stops after this many (0: no limit).
	Limit int
	// Register replaces Rebook's workflows (tests).
	Register Register
	// Each is called after each replay, for progress.
	Each func(Result)
}

// DefaultQuery is every workflow on Rebook's task queue.
var DefaultQuery = "TaskQueue = '" + workflows.TaskQueue + "'"

// Live fetches the histories the query selects from Temporal and replays
// each on this build; tc's data converter opens the payloads.
func Live(ctx context.Context, tc client.Client, dc converter.DataConverter, o Options) ([]Result, error) {
	p, err := New(dc, o.Register)
	if err != nil {
		return nil, err
	}
	q := o.Query
	if q == "" {
		q = DefaultQuery
	}
	var out []Result
	err = ForEach(ctx, tc, o.Namespace, q, func(e *workflowpb.WorkflowExecutionInfo) (bool, error) {
		res := Result{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), Type: e.GetType().GetName(), Source: o.Namespace}
		h, err := History(ctx, tc, res.WorkflowID, res.RunID)
		if err != nil {
			return false, err
		}
		res.Err = p.Replay(h)
		out = append(out, res)
		if o.Each != nil {
			o.Each(res)
		}
		return o.Limit > 0 && len(out) >= o.Limit, nil
	})
	return out, err
}

// ForEach calls fn with each workflow run the visibility query selects,
// page by page, until fn says stop or fails.
func ForEach(ctx context.Context, tc client.Client, namespace, query string, fn func(*workflowpb.WorkflowExecutionInfo) (stop bool, err error)) error {
	var token []byte
	for {
		page, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: query, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("list workflows (%s): %w", query, err)
		}
		for _, e := range page.GetExecutions() {
			if stop, err := fn(e); stop || err != nil {
				return err
			}
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			return nil
		}
	}
}

// History reads one run's whole history.
func History(ctx context.Context, tc client.Client, workflowID, runID string) (*historypb.History, error) {
	it := tc.GetWorkflowHistory(ctx, workflowID, runID, false, 0)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		h.Events = append(h.Events, e)
	}
	return h, nil
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

func (o *aliasOut) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...interface{}) workflow.Future {
	if n, ok := o.names[activityType]; ok {
		activityType = n
	}
	return o.Next.ExecuteLocalActivity(ctx, activityType, args...)
}

// Nondeterministic says whether a replay failed because the code no
// longer makes the commands its history records (Temporal's TMPRL1100),
// rather than for another reason.
func Nondeterministic(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "TMPRL1100") || strings.Contains(s, "nondeterministic")
}
