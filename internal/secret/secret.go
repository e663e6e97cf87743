// Package secret seals small values (PKB tokens) with AES-256-GCM under
// REBOOK_ENCRYPTION_KEY before they are stored. Each sealed value is bound
// to where it is kept (its additional data), so a ciphertext copied to
// another row or column does not open.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// version leads every sealed value, so a later key or algorithm change can
// tell old values from new.
const version byte = 1

// ErrOpen means a sealed value could not be opened: wrong key, wrong place,
// or tampered with.
var ErrOpen = errors.New("secret: cannot open sealed value (wrong key, or tampered with)")

// Box seals and opens values under one key.
type Box struct{ aead cipher.AEAD }

// New makes a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret: key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to place.
func (b *Box) Seal(plaintext []byte, place string) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, plaintext, []byte(place)), nil
}

// Open decrypts a value sealed for place.
func (b *Box) Open(sealed []byte, place string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(place))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
