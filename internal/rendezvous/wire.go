package rendezvous

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// DecodeError reports malformed protobuf input.
type DecodeError struct {
	Msg string // message type being decoded, e.g. "PunchHoleResponse"
	Err error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("rendezvous: decoding %s: %v", e.Msg, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrInvalidUTF8 is wrapped by DecodeError when a proto3 string field holds
// bytes that are not UTF-8 (both protobuf-go and rust-protobuf reject those).
var ErrInvalidUTF8 = errors.New("string field is not valid UTF-8")

// field is one decoded wire field. For varint and fixed types u holds the
// value; for the bytes type b aliases the input.
type field struct {
	num protowire.Number
	typ protowire.Type
	u   uint64
	b   []byte
}

// parseFields walks the fields of one message and calls fn for each varint,
// fixed or length-delimited field. Groups are skipped. Any structural error
// (truncation, overlong varint, field number 0, bad group nesting) stops the
// walk.
func parseFields(msg string, b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return &DecodeError{Msg: msg, Err: protowire.ParseError(n)}
		}
		if !num.IsValid() { // ConsumeTag lets numbers above 2^29-1 through
			return &DecodeError{Msg: msg, Err: fmt.Errorf("invalid field number %d", num)}
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.u = uint64(v)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return &DecodeError{Msg: msg, Err: protowire.ParseError(n)}
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := fn(f); err != nil {
			if _, ok := err.(*DecodeError); ok {
				return err
			}
			return &DecodeError{Msg: msg, Err: err}
		}
	}
	return nil
}

// The setters below follow protobuf-go: a known field number arriving with an
// unexpected wire type is treated as an unknown field and skipped.

func (f field) str(dst *string) error {
	if f.typ != protowire.BytesType {
		return nil
	}
	if !utf8.Valid(f.b) {
		return fmt.Errorf("field %d: %w", f.num, ErrInvalidUTF8)
	}
	*dst = string(f.b)
	return nil
}

func (f field) strs(dst *[]string) error {
	var s string
	if f.typ != protowire.BytesType {
		return nil
	}
	if err := f.str(&s); err != nil {
		return err
	}
	*dst = append(*dst, s)
	return nil
}

func (f field) bytes(dst *[]byte) {
	if f.typ == protowire.BytesType {
		*dst = append([]byte{}, f.b...)
	}
}

func (f field) int32(dst *int32) {
	if f.typ == protowire.VarintType {
		*dst = int32(f.u)
	}
}

func (f field) bool(dst *bool) {
	if f.typ == protowire.VarintType {
		*dst = f.u != 0
	}
}

// Encoding helpers: proto3 implicit presence, so zero values are omitted.

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendInt32 writes an int32 the proto way: negative values are sign-extended
// to 64 bits, so they take ten bytes.
func appendInt32(b []byte, num protowire.Number, v int32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(int64(v)))
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

// appendMessage writes a set message field; it is written even when the
// embedded message is empty, since presence is what a set field means.
func appendMessage(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}
