package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
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

func TestRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	before, err := New(oldKey)
	require.NoError(t, err)
	sealedBefore, err := before.Seal([]byte("token"), "p")
	require.NoError(t, err)
	assert.True(t, before.Current(sealedBefore))

	after, err := New(newKey, oldKey)
	require.NoError(t, err)
	assert.Equal(t, KeyID(newKey), after.KeyID())
	assert.NotEqual(t, KeyID(oldKey), KeyID(newKey))
	pt, err := after.Open(sealedBefore, "p")
	require.NoError(t, err, "the old key still opens what it sealed")
	assert.Equal(t, "token", string(pt))
	assert.False(t, after.Current(sealedBefore), "but it is not under the current key")

	sealedAfter, err := after.Seal([]byte("token"), "p")
	require.NoError(t, err)
	assert.True(t, after.Current(sealedAfter))
	_, err = before.Open(sealedAfter, "p")
	assert.ErrorIs(t, err, ErrUnknownKey, "a box without the new key names the gap")

	dropped, err := New(newKey)
	require.NoError(t, err)
	_, err = dropped.Open(sealedBefore, "p")
	assert.ErrorIs(t, err, ErrUnknownKey, "the old key dropped too soon")

	_, err = New(newKey, []byte("short"))
	assert.ErrorContains(t, err, "old key 1")
}

// Values sealed before key ids existed (version 1) still open, under
// whichever configured key sealed them.
func TestVersionOneValuesStillOpen(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	block, err := aes.NewCipher(oldKey)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	nonce := bytes.Repeat([]byte{9}, aead.NonceSize())
	v1Sealed := aead.Seal(append([]byte{1}, nonce...), nonce, []byte("token"), []byte("p"))

	b, err := New(newKey, oldKey)
	require.NoError(t, err)
	pt, err := b.Open(v1Sealed, "p")
	require.NoError(t, err)
	assert.Equal(t, "token", string(pt))
	assert.False(t, b.Current(v1Sealed))

	only, _ := New(newKey)
	_, err = only.Open(v1Sealed, "p")
	assert.ErrorIs(t, err, ErrOpen)
}

func TestDigestSurvivesRotation(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	before, err := New(oldKey)
	require.NoError(t, err)
	after, err := New(newKey, oldKey)
	require.NoError(t, err)
	d := before.Digest("nhs", "9434765919")
	assert.Len(t, d, 32)
	assert.NotEqual(t, d, before.Digest("nhs", "9434765870"), "another value")
	assert.NotEqual(t, d, before.Digest("other", "9434765919"), "another place")
	assert.NotEqual(t, d, after.Digest("nhs", "9434765919"), "another key")
	assert.Contains(t, after.Digests("nhs", "9434765919"), d, "a digest stored before the rotation still compares")
	assert.NotContains(t, after.Digests("nhs", "9434765919"), "9434765919")
}
