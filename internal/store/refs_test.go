package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/workflows"
)

// Finding 14: references were 32 bits of a hash on a non-unique index, and
// a lookup returned whichever row came first.
func TestSecurityReferencesAreUniqueAndRefuseToGuess(t *testing.T) {
	ctx := context.Background()
	s, _ := open(t)
	received := func(id string) store.Request {
		return store.Request{MessageID: id, WorkflowID: workflows.RequestWorkflowID(id), State: workflows.StateReceived, ReceivedAt: time.Now()}
	}

	// New references: 40 random bits, kept on a retry, one per request.
	seen := map[string]bool{}
	for i := range 300 {
		ref, err := s.RefFor(ctx, received(fmt.Sprintf("m%d", i)))
		require.NoError(t, err)
		assert.Regexp(t, `^RB-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`, ref)
		again, err := s.RefFor(ctx, received(fmt.Sprintf("m%d", i)))
		require.NoError(t, err)
		assert.Equal(t, ref, again, "recording a request again keeps its reference")
		seen[ref] = true
	}
	assert.Len(t, seen, 300)

	// Read as staff type it.
	ref, err := s.RefFor(ctx, received("m0"))
	require.NoError(t, err)
	for _, typed := range []string{ref, strings.ToLower(ref), strings.ReplaceAll(ref, "-", " ")} {
		got, err := s.RequestByRef(ctx, typed)
		require.NoError(t, err, typed)
		assert.Equal(t, "m0", got.MessageID)
	}

	// The index refuses a second request with a new reference.
	r := received("dup")
	r.Ref = ref
	assert.Error(t, s.SaveRequest(ctx, r), "two requests cannot share a new reference")

	// Two old references can collide (they were 32 bits): the lookup
	// refuses rather than show one of two patients.
	for _, id := range []string{"old-a", "old-b"} {
		r := received(id)
		r.Ref, r.State = "RB-0A1B2C3D", workflows.StateRouted
		require.NoError(t, s.SaveRequest(ctx, r))
	}
	_, err = s.RequestByRef(ctx, "RB-0A1B2C3D")
	assert.ErrorIs(t, err, store.ErrAmbiguousRef)

	// Not a reference at all.
	_, err = s.RequestByRef(ctx, "RB-0A1B'; --")
	assert.ErrorIs(t, err, store.ErrNotFound)
}
