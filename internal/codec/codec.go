// Package codec encrypts every Temporal payload Rebook writes (workflow
// inputs, activity results, signals) with AES-256-GCM under
// REBOOK_ENCRYPTION_KEY, so Temporal's history holds no patient data in
// clear. `starter serve` exposes the same codec to the Web UI at /codec.
// Each payload names the key that sealed it (metadata encryption-key-id),
// and old keys still open what they sealed, so the key can be rotated
// while requests are in flight.
package codec

import (
	"errors"
	"fmt"
	"net/http"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/rebookhq/rebook/internal/secret"
)

const (
	// Encoding marks a payload this codec sealed.
	Encoding = "binary/rebook-aes256gcm"
	metaKey  = "encoding"
	// KeyIDMeta names the key a payload is sealed under (secret.KeyID).
	KeyIDMeta = "encryption-key-id"
	sealPlace = "temporal-payload"
)

// Codec is a converter.PayloadCodec.
type Codec struct {
	box   *secret.Box
	keyID []byte // the box's key id, as each payload's metadata carries it
	// strict refuses a payload this codec did not seal: Rebook's own
	// clients and workers seal everything, so a plain one was written by
	// someone else with write access to Temporal (a CLI signal, a start
	// from the Web UI), who must not be able to steer a request.
	strict bool
}

// ErrUnsealed is Decode's refusal of a payload that is not sealed.
var ErrUnsealed = errors.New("codec: the payload is not sealed with REBOOK_ENCRYPTION_KEY; Rebook takes only payloads its own clients wrote")

// New makes a Codec that seals under key and opens under it or any old
// key (each 32 bytes).
func New(key []byte, old ...[]byte) (*Codec, error) {
	b, err := secret.New(key, old...)
	if err != nil {
		return nil, err
	}
	return &Codec{box: b, keyID: []byte(b.KeyID())}, nil
}

// Encode seals each payload whole: its metadata (which names the original
// encoding) and its data.
func (c *Codec) Encode(in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(in))
	for i, p := range in {
		raw, err := p.Marshal()
		if err != nil {
			return nil, err
		}
		sealed, err := c.box.Seal(raw, sealPlace)
		if err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{metaKey: []byte(Encoding), KeyIDMeta: c.keyID}, Data: sealed}
	}
	return out, nil
}

// Decode opens payloads this codec sealed. Others pass through for the
// Web UI's codec (which only shows them) and are refused (ErrUnsealed)
// for the workers and clients.
func (c *Codec) Decode(in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(in))
	for i, p := range in {
		if string(p.GetMetadata()[metaKey]) != Encoding {
			if c.strict {
				return nil, fmt.Errorf("%w (its encoding is %q)", ErrUnsealed, p.GetMetadata()[metaKey])
			}
			out[i] = p
			continue
		}
		raw, err := c.box.Open(p.Data, sealPlace)
		if err != nil {
			return nil, fmt.Errorf("codec: %w", err)
		}
		var orig commonpb.Payload
		if err := orig.Unmarshal(raw); err != nil {
			return nil, fmt.Errorf("codec: %w", err)
		}
		out[i] = &orig
	}
	return out, nil
}

// DataConverter is the SDK's default converter with this codec underneath,
// refusing unsealed payloads: a signal carrying one is dropped by the SDK
// (logged, and counted as a corrupted signal), an update is rejected, and
// a start fails its first workflow task with ErrUnsealed.
func DataConverter(key []byte, old ...[]byte) (converter.DataConverter, error) {
	c, err := New(key, old...)
	if err != nil {
		return nil, err
	}
	c.strict = true
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c), nil
}

// LenientDataConverter is DataConverter that lets unsealed payloads
// through, for tests that say why they need it.
func LenientDataConverter(key []byte, old ...[]byte) (converter.DataConverter, error) {
	c, err := New(key, old...)
	if err != nil {
		return nil, err
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c), nil
}

// Handler serves the codec to the Temporal Web UI and CLI (the remote codec
// protocol: POST /encode and /decode).
func Handler(key []byte, old ...[]byte) (http.Handler, error) {
	c, err := New(key, old...)
	if err != nil {
		return nil, err
	}
	return converter.NewPayloadCodecHTTPHandler(c), nil
}
