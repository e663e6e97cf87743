package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/app"
)

// Rebook sets how long Temporal keeps closed requests' histories (make dev
// does; `starter schedule --retention` does in a deployment), and reads it
// back from the server.
func TestNamespaceRetentionIsSet(t *testing.T) {
	s := start(t, 1)
	ctx := context.Background()
	before, err := app.Retention(ctx, s.tc, "default", 0)
	require.NoError(t, err)
	require.NotEqual(t, app.TemporalRetention, before, "the dev server's own default differs, so the change shows")
	got, err := app.Retention(ctx, s.tc, "default", app.TemporalRetention)
	require.NoError(t, err)
	assert.Equal(t, app.TemporalRetention, got)
	again, err := app.Retention(ctx, s.tc, "default", 0)
	require.NoError(t, err)
	assert.Equal(t, app.TemporalRetention, again, "as the server now says")
}
