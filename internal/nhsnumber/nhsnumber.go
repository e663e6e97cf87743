// Package nhsnumber validates NHS numbers: ten digits, written 3-3-4, whose
// last digit is a Modulus 11 check over the first nine.
package nhsnumber

import (
	"errors"
	"strings"
)

// Reasons a number is refused. They name the fault, never the number, so
// they are safe to log and to show in triage.
var (
	ErrMissing    = errors.New("nhs number: missing")
	ErrFormat     = errors.New("nhs number: not ten digits")
	ErrCheckDigit = errors.New("nhs number: check digit does not match")
	ErrRepeated   = errors.New("nhs number: all digits the same")
	ErrCheckIsTen = errors.New("nhs number: check digit would be 10, so no such number exists")
)

// Normalize accepts the forms people and systems write ("943 476 5919",
// "943-476-5919", "9434765919") and returns the ten digits, or a reason.
func Normalize(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrMissing
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '\u00a0':
			// separators in the 3-3-4 layout
		default:
			return "", ErrFormat
		}
	}
	digits := b.String()
	if len(digits) != 10 {
		return "", ErrFormat
	}
	if err := check(digits); err != nil {
		return "", err
	}
	return digits, nil
}

// Valid reports whether s is a valid NHS number in any accepted layout.
func Valid(s string) bool {
	_, err := Normalize(s)
	return err == nil
}

// CheckDigit returns the check digit for nine leading digits, and false when
// those digits have no valid check digit (remainder gives 10).
func CheckDigit(nine string) (byte, bool) {
	if len(nine) != 9 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 9; i++ {
		d := nine[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		sum += int(d-'0') * (10 - i)
	}
	c := 11 - sum%11
	switch c {
	case 11:
		return '0', true
	case 10:
		return 0, false
	default:
		return byte('0' + c), true
	}
}

func check(digits string) error {
	if strings.Count(digits, digits[:1]) == len(digits) {
		return ErrRepeated
	}
	want, ok := CheckDigit(digits[:9])
	if !ok {
		return ErrCheckIsTen
	}
	if digits[9] != want {
		return ErrCheckDigit
	}
	return nil
}

// Format writes ten digits in the 3-3-4 layout used on letters and screens.
func Format(digits string) string {
	if len(digits) != 10 {
		return digits
	}
	return digits[:3] + " " + digits[3:6] + " " + digits[6:]
}
