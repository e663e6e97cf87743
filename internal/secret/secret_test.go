package secret

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	b, err := New(key)
	require.NoError(t, err)
	sealed, err := b.Seal([]byte("refresh-token-value"), "pkb_grants/client/refresh")
	require.NoError(t, err)
	assert.False(t, bytes.Contains(sealed, []byte("refresh-token-value")))

	pt, err := b.Open(sealed, "pkb_grants/client/refresh")
	require.NoError(t, err)
	assert.Equal(t, "refresh-token-value", string(pt))

	again, _ := b.Seal([]byte("refresh-token-value"), "pkb_grants/client/refresh")
	assert.NotEqual(t, sealed, again, "fresh nonce each time")

	_, err = b.Open(sealed, "pkb_grants/client/access")
	assert.ErrorIs(t, err, ErrOpen, "bound to its place")

	other, _ := New(bytes.Repeat([]byte{8}, 32))
	_, err = other.Open(sealed, "pkb_grants/client/refresh")
	assert.ErrorIs(t, err, ErrOpen, "wrong key")

	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	_, err = b.Open(tampered, "pkb_grants/client/refresh")
	assert.ErrorIs(t, err, ErrOpen)
	_, err = b.Open([]byte{1, 2}, "x")
	assert.ErrorIs(t, err, ErrOpen)

	_, err = New([]byte("short"))
	assert.Error(t, err)
}
