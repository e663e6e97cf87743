package refs

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNewIsFortyBitsStaffCanRead(t *testing.T) {
	shape := regexp.MustCompile(`^RB-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)
	seen := map[string]bool{}
	for range 20000 {
		r := New()
		assert.Regexp(t, shape, r)
		assert.Equal(t, []string{r}, Forms(r), "a new reference reads back as itself")
		seen[r] = true
	}
	// 20,000 draws from 2^40 collide with odds of about 1 in 5,500;
	// from 2^32 (the old references) about 1 in 21.
	assert.Len(t, seen, 20000)
}

func TestFormsReadWhatStaffType(t *testing.T) {
	for in, want := range map[string][]string{
		"RB-7KQ2-M9XD":   {"RB-7KQ2-M9XD"},
		"rb-7kq2-m9xd":   {"RB-7KQ2-M9XD"},
		" rb 7kq2 m9xd ": {"RB-7KQ2-M9XD"},
		"7KQ2M9XD":       {"RB-7KQ2-M9XD"},
		"RB-7KQ2-M9XO":   {"RB-7KQ2-M9X0"},
		"RB-IKQ2-L9XD":   {"RB-1KQ2-19XD"},
		"RB-1A2B3C4D":    {"RB-1A2B3C4D", "RB-1A2B-3C4D"}, // old, or new without its dash
		"rb-0a1b2c3d":    {"RB-0A1B2C3D", "RB-0A1B-2C3D"},
		"RB-7KQ2-M9XU":   nil, // U is not in the alphabet
		"RB-7KQ2-M9X":    nil,
		"../../etc":      nil,
		"":               nil,
	} {
		assert.Equal(t, want, Forms(in), "%q", in)
	}
}
