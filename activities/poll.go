package activities

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/rebookhq/rebook/internal/metrics"
	"github.com/rebookhq/rebook/internal/store"
)

// MessagesCursor is the stored cursor of the message poll.
const MessagesCursor = "pkb-messages"

// PollActivities read new requests from PKB and start their workflows.
type PollActivities struct {
	PKB      PKB
	Store    *store.Store
	Requests Requests
	States   States
	// Overlap is how far behind the cursor each poll reads again
	// (REBOOK_POLL_OVERLAP): PKB may store a message late, with a
	// timestamp the cursor has passed.
	Overlap time.Duration
}

// LoadCursor returns where the message poll reads from: the overlap
// before where it has read up to.
func (a *PollActivities) LoadCursor(ctx context.Context) (int64, error) {
	ms, err := a.Store.Cursor(ctx, MessagesCursor)
	if err != nil || ms == 0 {
		return ms, err
	}
	return max(0, ms-a.Overlap.Milliseconds()), nil
}

// ReadMessages reads one page of open appointment requests after the
// cursor, as ids, timestamps and what their subjects say (never the
// message's text).
func (a *PollActivities) ReadMessages(ctx context.Context, after int64) ([]MessageRef, error) {
	page, err := a.PKB.Client.MessagesAfter(ctx, after, true)
	if err != nil {
		return nil, a.PKB.err(ctx, err)
	}
	refs := make([]MessageRef, len(page))
	for i, m := range page {
		facts := readSubject(m)
		refs[i] = MessageRef{ID: m.ID, Timestamp: m.Timestamp, Facts: &facts}
	}
	return refs, nil
}

// StartRequests starts one request workflow per message and records each
// in the read model as received, so a request shows before it is routed.
// Both are idempotent: starting or recording twice changes nothing, and a
// message the read model already has (read again in the overlap) costs no
// call to Temporal.
func (a *PollActivities) StartRequests(ctx context.Context, refs []MessageRef) (int, error) {
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	known, err := a.Store.KnownRequests(ctx, ids)
	if err != nil {
		return 0, err
	}
	// Starts go out a few at a time: one by one, a page of requests
	// waited on a round trip to Temporal and one to PostgreSQL each.
	var (
		started atomic.Int64
		mu      sync.Mutex
		first   error
		wg      sync.WaitGroup
		slots   = make(chan struct{}, startConcurrency)
	)
	for _, r := range refs {
		if known[r.ID] {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := a.start(ctx, r, &started); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return int(started.Load()), first
}

// startConcurrency is how many starts StartRequests has in flight.
const startConcurrency = 8

func (a *PollActivities) start(ctx context.Context, r MessageRef, started *atomic.Int64) error {
	wid, ok, err := a.Requests.Start(ctx, r)
	if err != nil {
		return fmt.Errorf("start request workflow: %w", err)
	}
	if ok {
		started.Add(1)
		activity.GetMetricsHandler(ctx).Counter(metrics.RequestsStarted).Inc(1)
	}
	return a.Store.RecordReceived(ctx, store.Request{MessageID: r.ID, WorkflowID: wid, State: a.States.Received,
		ReceivedAt: time.UnixMilli(r.Timestamp).UTC()})
}

// AdvanceCursor moves the message cursor forward, never back.
func (a *PollActivities) AdvanceCursor(ctx context.Context, ms int64) error {
	return a.Store.AdvanceCursor(ctx, MessagesCursor, ms)
}
