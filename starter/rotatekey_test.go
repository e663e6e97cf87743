package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/dev/testdb"
	"github.com/rebookhq/rebook/internal/secret"
	"github.com/rebookhq/rebook/internal/store"
)

func TestRotateKeyReSealsTheGrant(t *testing.T) {
	ctx := context.Background()
	url := testdb.URL(t)
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	before, err := store.Open(ctx, url, oldKey)
	require.NoError(t, err)
	g := store.Grant{ClientID: "c", AccessToken: "at", RefreshToken: "refresh-secret-4711", AccessExpiresAt: time.Now().Add(time.Hour), Status: store.GrantHealthy}
	require.NoError(t, before.SaveGrant(ctx, g))
	before.Close()

	t.Setenv("DATABASE_URL", url)
	t.Setenv("REBOOK_ENCRYPTION_KEY", base64.StdEncoding.EncodeToString(newKey))
	err = runRotateKey(ctx, nil)
	require.Error(t, err, "without the old key the tokens cannot be opened")
	assert.Contains(t, err.Error(), "Nothing was changed")
	assert.NotContains(t, err.Error(), "refresh-secret-4711")

	t.Setenv("REBOOK_ENCRYPTION_OLD_KEYS", base64.StdEncoding.EncodeToString(oldKey))
	require.NoError(t, runRotateKey(ctx, nil))
	require.NoError(t, runRotateKey(ctx, nil), "safe to repeat")

	after, err := store.Connect(ctx, url, newKey)
	require.NoError(t, err)
	defer after.Close()
	got, err := after.Grant(ctx, "c")
	require.NoError(t, err, "the new key alone opens the tokens")
	assert.Equal(t, "refresh-secret-4711", got.RefreshToken)
	trail, err := after.AuditTrail(ctx, "encryption-key/"+secret.KeyID(newKey))
	require.NoError(t, err)
	require.Len(t, trail, 2)
	assert.Equal(t, "1", trail[0].Detail["resealed"])
	assert.Equal(t, "1", trail[1].Detail["current"])
}
