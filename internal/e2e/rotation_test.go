package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dev/webclient"
	"github.com/rebookhq/rebook/internal/replay"
	"github.com/rebookhq/rebook/internal/secret"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
)

// The key is rotated while requests wait: the worker restarts with a new
// REBOOK_ENCRYPTION_KEY and the old one in REBOOK_ENCRYPTION_OLD_KEYS,
// `starter rotate-key`'s re-seal runs, and the front door keeps the old key
// a while longer, as in a rolling deploy. Every request still completes,
// the PKB tokens work under the new key, and every payload of every
// history, sealed under either key, decodes through the codec the Web UI
// calls.
func TestKeyRotationWithRequestsInFlight(t *testing.T) {
	const n = 12
	s := start(t, n, func(c *config.Config) {
		c.LocalUsers = []signin.LocalUser{{Name: "olive", Roles: []string{signin.Operator}}}
	})
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	require.NoError(t, s.startSchedules(ctx))
	waitFor(t, "every request routed to Slack", limit(3*time.Minute), func() bool { return len(s.cards()) >= n })

	oldKey, newKey := s.key, make([]byte, 32)
	_, _ = rand.Read(newKey)
	s.worker.Stop()
	cfg := s.cfg
	cfg.EncryptionKey, cfg.OldEncryptionKeys = newKey, [][]byte{oldKey}
	st, err := store.Open(ctx, s.dbURL, newKey, oldKey)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	res, err := st.ResealTokens(ctx)
	require.NoError(t, err)
	assert.Equal(t, store.Resealed{KeyID: secret.KeyID(newKey), Resealed: 1}, res)
	res, err = st.ResealTokens(ctx)
	require.NoError(t, err)
	assert.Equal(t, store.Resealed{KeyID: secret.KeyID(newKey), Current: 1}, res, "run again, it changes nothing")
	oldOnly, err := store.Connect(ctx, s.dbURL, oldKey)
	require.NoError(t, err)
	_, err = oldOnly.Grant(ctx, cfg.PKBClientID)
	oldOnly.Close()
	assert.ErrorIs(t, err, secret.ErrOpen, "the tokens are no longer under the old key")

	tc, err := app.Temporal(ctx, cfg, log, s.workerMetrics)
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	w, err := app.Worker(cfg, st, tc, app.WorkerOptions{Metrics: s.workerMetrics})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	s.worker, s.tc = w, tc
	// PKB expires the access token: the keeper refreshes with the
	// re-sealed refresh token, and stores the new pair under the new key.
	require.Positive(t, s.sim.ExpireAccessTokens())
	s.closeAll(t, n, limit(5*time.Minute))

	door := httptest.NewUnstartedServer(nil)
	cfg.PublicURL = "http://" + door.Listener.Addr().String()
	h, ih, err := app.FrontDoor(ctx, cfg, st, tc, nil, app.Metrics(cfg, st, log), "http://127.0.0.1:8233", log)
	require.NoError(t, err)
	door.Config.Handler = h
	door.Start()
	t.Cleanup(func() { door.Close(); ih.Wait() })
	web := webclient.New(t, door.URL).SignIn("olive")

	byKey := map[string]int{}
	var underOld []*commonpb.Payload
	err = replay.ForEach(ctx, tc, "default", "", func(e *workflowpb.WorkflowExecutionInfo) (bool, error) {
		hist, err := replay.History(ctx, tc, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
		if err != nil {
			return false, err
		}
		var ps []*commonpb.Payload
		for _, ev := range hist.GetEvents() {
			payloadsIn(ev.ProtoReflect(), &ps)
		}
		for _, p := range ps {
			if string(p.GetMetadata()["encoding"]) == codec.Encoding {
				id := string(p.GetMetadata()[codec.KeyIDMeta])
				byKey[id]++
				if id == secret.KeyID(oldKey) {
					underOld = append(underOld, p)
				}
			}
		}
		body, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
		require.NoError(t, err)
		resp, err := web.HTTP.Post(door.URL+"/codec/decode", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", e.GetExecution().GetWorkflowId(), raw)
		var out commonpb.Payloads
		require.NoError(t, protojson.Unmarshal(raw, &out))
		require.Len(t, out.GetPayloads(), len(ps))
		for _, p := range out.GetPayloads() {
			assert.NotEqual(t, codec.Encoding, string(p.GetMetadata()["encoding"]), "%s: a payload the codec left sealed", e.GetExecution().GetWorkflowId())
		}
		return false, nil
	})
	require.NoError(t, err)
	t.Logf("payloads by key: %v", byKey)
	assert.Positive(t, byKey[secret.KeyID(oldKey)], "histories hold payloads sealed before the rotation")
	assert.Positive(t, byKey[secret.KeyID(newKey)], "and after it")
	assert.Len(t, byKey, 2, "every sealed payload names its key")

	newOnly, err := codec.New(newKey)
	require.NoError(t, err)
	_, err = newOnly.Decode(underOld[:1])
	assert.ErrorIs(t, err, secret.ErrUnknownKey, "without the old key, what it sealed cannot be read")
}
