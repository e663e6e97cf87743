package activities

import (
	"context"
	"fmt"
	"time"

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
}

// LoadCursor returns where the message poll has read up to.
func (a *PollActivities) LoadCursor(ctx context.Context) (int64, error) {
	return a.Store.Cursor(ctx, MessagesCursor)
}

// ReadMessages reads one page of open appointment requests after the
// cursor, as ids and timestamps.
func (a *PollActivities) ReadMessages(ctx context.Context, after int64) ([]MessageRef, error) {
	page, err := a.PKB.Client.MessagesAfter(ctx, after, true)
	if err != nil {
		return nil, a.PKB.err(err)
	}
	refs := make([]MessageRef, len(page))
	for i, m := range page {
		refs[i] = MessageRef{ID: m.ID, Timestamp: m.Timestamp}
	}
	return refs, nil
}

// StartRequests starts one request workflow per message and records each
// in the read model as received, so a request shows before it is routed.
// Both are idempotent: starting or recording twice changes nothing.
func (a *PollActivities) StartRequests(ctx context.Context, refs []MessageRef) (int, error) {
	started := 0
	for _, r := range refs {
		wid, ok, err := a.Requests.Start(ctx, r)
		if err != nil {
			return started, fmt.Errorf("start request workflow: %w", err)
		}
		if ok {
			started++
		}
		err = a.Store.RecordReceived(ctx, store.Request{MessageID: r.ID, WorkflowID: wid, Ref: Ref(r.ID), State: a.States.Received,
			ReceivedAt: time.UnixMilli(r.Timestamp).UTC()})
		if err != nil {
			return started, err
		}
	}
	return started, nil
}

// AdvanceCursor moves the message cursor forward, never back.
func (a *PollActivities) AdvanceCursor(ctx context.Context, ms int64) error {
	return a.Store.AdvanceCursor(ctx, MessagesCursor, ms)
}
