package e2e

import (
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rebookhq/rebook/internal/codec"
)

// walk visits, at any depth of a message, each payload (not looking
// inside it) and each other string or bytes value.
func walk(m protoreflect.Message, payload func(*commonpb.Payload), text func([]byte)) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		payload(p)
		return
	}
	value := func(kind protoreflect.Kind, v protoreflect.Value) {
		switch kind {
		case protoreflect.MessageKind, protoreflect.GroupKind:
			walk(v.Message(), payload, text)
		case protoreflect.StringKind:
			text([]byte(v.String()))
		case protoreflect.BytesKind:
			text(v.Bytes())
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				text([]byte(k.String()))
				value(fd.MapValue().Kind(), mv)
				return true
			})
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				value(fd.Kind(), v.List().Get(i))
			}
		default:
			value(fd.Kind(), v)
		}
		return true
	})
}

// payloadsIn collects every payload a history event holds, at any depth.
func payloadsIn(m protoreflect.Message, out *[]*commonpb.Payload) {
	walk(m, func(p *commonpb.Payload) { *out = append(*out, p) }, func([]byte) {})
}

// clearText writes every string a message holds in clear, at any depth:
// ids, names, failure messages and stack traces, and the data of each
// payload the codec did not seal (search attributes, memo, headers). It
// is what anyone with read access to Temporal sees without the codec.
func clearText(m protoreflect.Message, b *strings.Builder) {
	line := func(s []byte) {
		b.Write(s)
		b.WriteByte('\n')
	}
	walk(m, func(p *commonpb.Payload) {
		if string(p.GetMetadata()["encoding"]) != codec.Encoding {
			line(p.GetData())
		}
	}, line)
}
