// Package refs makes the references staff see, search for and read aloud
// for a request: RB-7KQ2-M9XD. A reference is 40 random bits in
// Crockford's base32, which has no I, L, O or U, so one read over the
// phone or copied by hand is still the same reference. References made
// before these (RB- and eight hex digits, a hash of PKB's message id)
// keep working as they were written.
package refs

import (
	"crypto/rand"
	"strings"
)

// alphabet is Crockford's base32.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// New is a new reference: RB-, four characters, a dash, four more.
func New() string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	v := uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
	var s [8]byte
	for i := 7; i >= 0; i-- {
		s[i] = alphabet[v&31]
		v >>= 5
	}
	return "RB-" + string(s[:4]) + "-" + string(s[4:])
}

// Forms are the references s may be, from what someone typed: any case,
// spaces, the prefix or its dashes left out, and the letters people
// confuse with digits (O for 0, I or L for 1). Eight hex digits with no
// dash may be either form, so both are given; a lookup that finds two
// requests must refuse. Forms is empty when s is neither form.
func Forms(s string) []string {
	s = strings.ToUpper(strings.Join(strings.Fields(s), ""))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "RB"), "-")
	var out []string
	if len(s) == 8 && isHex(s) {
		out = append(out, "RB-"+s)
	}
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 8 {
		return out
	}
	b := []byte(s)
	for i, c := range b {
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		if !strings.ContainsRune(alphabet, rune(c)) {
			return out
		}
		b[i] = c
	}
	return append(out, "RB-"+string(b[:4])+"-"+string(b[4:]))
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789ABCDEF", c) {
			return false
		}
	}
	return true
}
