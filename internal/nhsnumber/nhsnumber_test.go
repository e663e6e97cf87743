package nhsnumber

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want string
		err  error
	}{
		{"plain", "9434765919", "9434765919", nil},
		{"spaced 3-3-4", "943 476 5919", "9434765919", nil},
		{"dashed", "943-476-5919", "9434765919", nil},
		{"padded", "  943 476 5919 ", "9434765919", nil},
		{"test range", "9990000018", "9990000018", nil},
		{"check digit 0 from 11", "9876543210", "9876543210", nil},
		{"empty", "", "", ErrMissing},
		{"blank", "   ", "", ErrMissing},
		{"nine digits", "943476591", "", ErrFormat},
		{"eleven digits", "94347659190", "", ErrFormat},
		{"letters", "94347659AB", "", ErrFormat},
		{"wrong check digit", "9434765918", "", ErrCheckDigit},
		{"all zeros", "0000000000", "", ErrRepeated},
		{"all nines", "9999999999", "", ErrRepeated},
		{"check would be ten", "1000000010", "", ErrCheckIsTen},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCheckDigitKnownNumbers(t *testing.T) {
	// Published examples and numbers from NHS test data.
	for _, n := range []string{"9434765919", "4010232137", "9000000009", "9876543210"} {
		d, ok := CheckDigit(n[:9])
		require.True(t, ok, n)
		assert.Equal(t, n[9], d, n)
	}
	_, ok := CheckDigit("100000001")
	assert.False(t, ok, "remainder 1 gives check 10: no valid number")
	_, ok = CheckDigit("12345678")
	assert.False(t, ok, "needs nine digits")
}

func TestFormat(t *testing.T) {
	assert.Equal(t, "943 476 5919", Format("9434765919"))
	assert.Equal(t, "123", Format("123"))
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"9434765919", "943 476 5919", "0000000000", "", "abc", "943-476-591９"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		digits, err := Normalize(s)
		if err != nil {
			if digits != "" {
				t.Fatalf("error %v with digits %q", err, digits)
			}
			return
		}
		if len(digits) != 10 {
			t.Fatalf("accepted %q as %q", s, digits)
		}
		want, ok := CheckDigit(digits[:9])
		if !ok || want != digits[9] {
			t.Fatalf("accepted %q with a bad check digit", digits)
		}
		again, err := Normalize(Format(digits))
		if err != nil || again != digits {
			t.Fatalf("formatted form does not round-trip: %q -> %q, %v", digits, again, err)
		}
	})
}
