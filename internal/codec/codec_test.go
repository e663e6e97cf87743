package codec

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func TestRoundTripAndNoClearText(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	dc, err := DataConverter(key)
	require.NoError(t, err)
	p, err := dc.ToPayload(map[string]string{"nhs": "9434765919"})
	require.NoError(t, err)
	assert.Equal(t, Encoding, string(p.Metadata["encoding"]))
	assert.False(t, bytes.Contains(p.Data, []byte("9434765919")))
	var back map[string]string
	require.NoError(t, dc.FromPayload(p, &back))
	assert.Equal(t, "9434765919", back["nhs"])

	other, _ := DataConverter(bytes.Repeat([]byte{4}, 32))
	assert.Error(t, other.FromPayload(p, &back), "another key cannot read it")

}

// Finding 15: the workers' and clients' converter refuses a payload that
// is not sealed (anyone with write access to Temporal could otherwise
// signal a request in clear); the Web UI's codec, which only shows
// payloads, and the lenient converter tests ask for, pass it through.
func TestSecurityUnsealedPayloadsAreRefused(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	dc, err := DataConverter(key)
	require.NoError(t, err)
	plain, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"note": "closed in clear"})
	require.NoError(t, err)
	var got map[string]string
	err = dc.FromPayload(plain, &got)
	require.ErrorIs(t, err, ErrUnsealed)
	assert.Contains(t, err.Error(), "json/plain")
	assert.Nil(t, got)
	sealed, err := dc.ToPayload("ok")
	require.NoError(t, err)
	var s string
	assert.ErrorIs(t, dc.FromPayloads(&commonpb.Payloads{Payloads: []*commonpb.Payload{sealed, plain}}, &s, &got), ErrUnsealed, "one plain payload among sealed ones")

	lenient, err := LenientDataConverter(key)
	require.NoError(t, err)
	require.NoError(t, lenient.FromPayload(plain, &got))
	assert.Equal(t, "closed in clear", got["note"])

	c, err := New(key)
	require.NoError(t, err)
	out, err := c.Decode([]*commonpb.Payload{plain})
	require.NoError(t, err, "the Web UI's codec shows what it cannot open")
	assert.Equal(t, plain.Data, out[0].Data)
}
