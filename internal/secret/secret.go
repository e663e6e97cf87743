// Package secret seals small values (PKB tokens, Temporal payloads, sign-in
// cookies) with AES-256-GCM under REBOOK_ENCRYPTION_KEY before they are
// stored. Each sealed value is bound to where it is kept (its additional
// data), so a ciphertext copied to another row or column does not open,
// and names the key that sealed it, so the key can be rotated: values are
// sealed under the current key and opened under it or any old key still
// configured (REBOOK_ENCRYPTION_OLD_KEYS).
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Sealed value formats, told apart by their first byte.
const (
	// v1: version, nonce, ciphertext. No key id: opened by trying each
	// configured key. Only read, for values sealed before rotation existed.
	v1 byte = 1
	// v2: version, 4-byte key id, nonce, ciphertext.
	v2 byte = 2
)

const idLen = 4

// ErrOpen means a sealed value could not be opened: wrong key, wrong place,
// or tampered with.
var ErrOpen = errors.New("secret: cannot open sealed value (wrong key, or tampered with)")

// ErrUnknownKey means a value was sealed under a key that is not
// configured: an old key was dropped from REBOOK_ENCRYPTION_OLD_KEYS too
// soon. It is an ErrOpen.
var ErrUnknownKey = fmt.Errorf("%w: it was sealed under a key that is not configured (is it missing from REBOOK_ENCRYPTION_OLD_KEYS?)", ErrOpen)

// KeyID names a key without revealing it: the first 4 bytes of a SHA-256
// of it, in hex. It is what operators compare in logs, payload metadata
// and `starter rotate-key`'s report.
func KeyID(key []byte) string {
	id := keyID(key)
	return hex.EncodeToString(id[:])
}

func keyID(key []byte) [idLen]byte {
	sum := sha256.Sum256(append([]byte("rebook key id\x00"), key...))
	return [idLen]byte(sum[:idLen])
}

type keyed struct {
	id   [idLen]byte
	aead cipher.AEAD
	mac  []byte // the key for Digest, derived from the sealing key
}

// Box seals under one key and opens under it or any old key.
type Box struct {
	current keyed
	all     []keyed // current first
}

// New makes a Box that seals under current and also opens values sealed
// under old. Each key is 32 bytes.
func New(current []byte, old ...[]byte) (*Box, error) {
	b := &Box{}
	seen := map[[idLen]byte]bool{}
	for i, key := range append([][]byte{current}, old...) {
		k, err := newKeyed(key)
		if err != nil {
			if i > 0 {
				return nil, fmt.Errorf("old key %d: %w", i, err)
			}
			return nil, err
		}
		if seen[k.id] {
			continue // the current key listed among the old too
		}
		seen[k.id] = true
		b.all = append(b.all, k)
	}
	b.current = b.all[0]
	return b, nil
}

func newKeyed(key []byte) (keyed, error) {
	if len(key) != 32 {
		return keyed{}, fmt.Errorf("secret: key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return keyed{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return keyed{}, err
	}
	mac := sha256.Sum256(append([]byte("rebook digest key\x00"), key...))
	return keyed{id: keyID(key), aead: aead, mac: mac[:]}, nil
}

// Digest is a keyed digest of value for place, under the current key: a
// value that can be compared but not read back or guessed by hashing
// candidates (an NHS number has only a billion).
func (b *Box) Digest(place, value string) string { return digest(b.current.mac, place, value) }

// Digests are value's digests under every key, the current first: what a
// digest stored before a rotation may equal.
func (b *Box) Digests(place, value string) []string {
	out := make([]string, len(b.all))
	for i, k := range b.all {
		out[i] = digest(k.mac, place, value)
	}
	return out
}

func digest(key []byte, place, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(place))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// KeyID is the id of the key values are sealed under.
func (b *Box) KeyID() string { return hex.EncodeToString(b.current.id[:]) }

// Seal encrypts plaintext bound to place, under the current key.
func (b *Box) Seal(plaintext []byte, place string) ([]byte, error) {
	a := b.current.aead
	head := 1 + idLen
	nonce := make([]byte, a.NonceSize(), head+a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append([]byte{v2}, b.current.id[:]...), nonce...)
	return a.Seal(out, nonce, plaintext, []byte(place)), nil
}

// Open decrypts a value sealed for place under any configured key.
func (b *Box) Open(sealed []byte, place string) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, ErrOpen
	}
	switch sealed[0] {
	case v2:
		if len(sealed) < 1+idLen {
			return nil, ErrOpen
		}
		for _, k := range b.all {
			if string(k.id[:]) == string(sealed[1:1+idLen]) {
				return open(k.aead, sealed[1+idLen:], place)
			}
		}
		return nil, ErrUnknownKey
	case v1:
		for _, k := range b.all {
			if pt, err := open(k.aead, sealed[1:], place); err == nil {
				return pt, nil
			}
		}
	}
	return nil, ErrOpen
}

func open(a cipher.AEAD, body []byte, place string) ([]byte, error) {
	n := a.NonceSize()
	if len(body) < n+a.Overhead() {
		return nil, ErrOpen
	}
	pt, err := a.Open(nil, body[:n], body[n:], []byte(place))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Current says whether a sealed value is sealed under the current key, so
// a rotation re-seals only what needs it.
func (b *Box) Current(sealed []byte) bool {
	return len(sealed) >= 1+idLen && sealed[0] == v2 && string(sealed[1:1+idLen]) == string(b.current.id[:])
}
