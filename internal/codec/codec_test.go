package codec

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

	// Payloads written before encryption was on still read.
	plain, _ := converter.GetDefaultDataConverter().ToPayload("hello")
	var s string
	require.NoError(t, dc.FromPayload(plain, &s))
	assert.Equal(t, "hello", s)
}
