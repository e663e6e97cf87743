// Package hl7 reads the little of HL7 v2 that Rebook needs: MLLP framing,
// the segments and fields of a message, the SIU scheduling events a PAS
// sends, and the ACK that answers each. It is small on purpose (and
// fuzzed): a message it cannot read is refused with the reason, never
// guessed at.
package hl7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// MLLP framing: a message is sent as VT, the message, FS, CR.
const (
	startBlock = 0x0b
	endBlock   = 0x1c
	carriage   = 0x0d
)

// MaxMessage bounds one framed message; a larger one is refused.
const MaxMessage = 1 << 20

// ErrFrame means the bytes are not an MLLP frame.
var ErrFrame = errors.New("hl7: not an MLLP frame")

// ReadFrame reads one MLLP-framed message.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	b, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	if b != startBlock {
		return nil, ErrFrame
	}
	var buf bytes.Buffer
	for {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if b == endBlock {
			if next, err := r.ReadByte(); err != nil || next != carriage {
				return nil, ErrFrame
			}
			return buf.Bytes(), nil
		}
		if buf.Len() >= MaxMessage {
			return nil, fmt.Errorf("hl7: message over %d bytes", MaxMessage)
		}
		buf.WriteByte(b)
	}
}

// Frame wraps a message for MLLP.
func Frame(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+3)
	out = append(out, startBlock)
	out = append(out, msg...)
	return append(out, endBlock, carriage)
}

// Message is a parsed HL7 v2 message: segments of fields, split on the
// separators its MSH declares.
type Message struct {
	Segments  [][]string
	component byte
}

// Parse reads a message. MSH must come first; its field separator and
// encoding characters are honoured.
func Parse(raw []byte) (*Message, error) {
	text := strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\r"), "\n", "\r")
	if len(text) < 8 || !strings.HasPrefix(text, "MSH") {
		return nil, errors.New("hl7: the message does not start with MSH")
	}
	field := text[3]
	enc := text[4:]
	if i := strings.IndexByte(enc, field); i >= 0 {
		enc = enc[:i]
	}
	if len(enc) < 1 {
		return nil, errors.New("hl7: MSH declares no encoding characters")
	}
	m := &Message{component: enc[0]}
	for _, line := range strings.Split(text, "\r") {
		if line == "" {
			continue
		}
		fields := strings.Split(line, string(field))
		if len(fields[0]) != 3 {
			return nil, fmt.Errorf("hl7: segment name %q is not three characters", fields[0])
		}
		if fields[0] == "MSH" {
			// MSH-1 is the separator itself: keep field numbers as the
			// standard counts them.
			fields = append([]string{"MSH", string(field)}, fields[1:]...)
		}
		m.Segments = append(m.Segments, fields)
	}
	return m, nil
}

// Field returns segment seg's field n, component c (1-based; c 0 for
// the whole field), from its first occurrence and first repetition; ""
// when absent.
func (m *Message) Field(seg string, n, c int) string {
	reps := m.Repeats(seg, n)
	if len(reps) == 0 {
		return ""
	}
	if c == 0 {
		return strings.Join(reps[0], string(m.component))
	}
	if c > len(reps[0]) {
		return ""
	}
	return reps[0][c-1]
}

// Repeats returns every repetition of segment seg's field n (first
// occurrence of the segment), each split into its components.
func (m *Message) Repeats(seg string, n int) [][]string {
	for _, s := range m.Segments {
		if s[0] != seg {
			continue
		}
		if n >= len(s) {
			return nil
		}
		var out [][]string
		for _, r := range strings.Split(s[n], "~") {
			out = append(out, strings.Split(r, string(m.component)))
		}
		return out
	}
	return nil
}

// Has says whether the message has a segment.
func (m *Message) Has(seg string) bool {
	for _, s := range m.Segments {
		if s[0] == seg {
			return true
		}
	}
	return false
}

// ParseTime reads an HL7 TS (YYYYMMDDHHMM[SS[.S]][+/-ZZZZ]) in loc when
// it carries no offset.
func ParseTime(v string, loc *time.Location) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, errors.New("hl7: no time")
	}
	zone := ""
	if i := strings.IndexAny(v, "+-"); i >= 0 {
		v, zone = v[:i], v[i:]
	}
	if i := strings.IndexByte(v, '.'); i >= 0 {
		v = v[:i]
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	layout, ok := layouts[len(v)]
	if !ok {
		return time.Time{}, fmt.Errorf("hl7: %q is not a time", v)
	}
	if zone != "" {
		return time.Parse(layout+"-0700", v+zone)
	}
	return time.ParseInLocation(layout, v, loc)
}

// Acknowledgment codes.
const (
	AckAccept = "AA" // accepted
	AckError  = "AE" // understood, but not applied: send it again later
	AckReject = "AR" // cannot be used: do not send it again
)

// Ack builds the ACK for msg (which may be nil when it could not be
// parsed), with code and, for a refusal, why.
func Ack(msg *Message, code, why string, now time.Time) []byte {
	control, version, sender, facility := "", "2.5", "", ""
	if msg != nil {
		control, sender, facility = msg.Field("MSH", 10, 0), msg.Field("MSH", 3, 0), msg.Field("MSH", 4, 0)
		if v := msg.Field("MSH", 12, 0); v != "" {
			version = v
		}
	}
	clean := strings.NewReplacer("|", " ", "^", " ", "~", " ", "\\", " ", "&", " ", "\r", " ", "\n", " ")
	var b strings.Builder
	fmt.Fprintf(&b, "MSH|^~\\&|REBOOK|REBOOK|%s|%s|%s||ACK|%s|P|%s\r", clean.Replace(sender), clean.Replace(facility),
		now.UTC().Format("20060102150405"), "ACK"+clean.Replace(control), version)
	fmt.Fprintf(&b, "MSA|%s|%s", code, clean.Replace(control))
	if why != "" {
		fmt.Fprintf(&b, "|%s", clean.Replace(why))
	}
	b.WriteString("\r")
	return []byte(b.String())
}
