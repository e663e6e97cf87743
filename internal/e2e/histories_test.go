package e2e

import (
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/rebookhq/rebook/internal/codec"
)

// payloadsIn collects every payload a history event holds, at any depth.
func payloadsIn(m protoreflect.Message, out *[]*commonpb.Payload) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		*out = append(*out, p)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					payloadsIn(mv.Message(), out)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := 0; i < v.List().Len(); i++ {
					payloadsIn(v.List().Get(i).Message(), out)
				}
			}
		case fd.Message() != nil:
			payloadsIn(v.Message(), out)
		}
		return true
	})
}

// clearText writes every string a message holds in clear, at any depth:
// ids, names, failure messages and stack traces, and the data of each
// payload the codec did not seal (search attributes, memo, headers). It
// is what anyone with read access to Temporal sees without the codec.
func clearText(m protoreflect.Message, b *strings.Builder) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		if string(p.GetMetadata()["encoding"]) != codec.Encoding {
			b.Write(p.GetData())
			b.WriteByte('\n')
		}
		return
	}
	value := func(kind protoreflect.Kind, v protoreflect.Value) {
		switch {
		case kind == protoreflect.MessageKind || kind == protoreflect.GroupKind:
			clearText(v.Message(), b)
		case kind == protoreflect.StringKind:
			b.WriteString(v.String())
			b.WriteByte('\n')
		case kind == protoreflect.BytesKind:
			b.Write(v.Bytes())
			b.WriteByte('\n')
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				b.WriteString(k.String() + "\n")
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
