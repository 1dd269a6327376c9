// Package rendezvous speaks the part of the RustDesk wire protocol that rdctl
// needs: the TCP length-prefix framing used on ports 21115–21117 and the few
// hbb.RendezvousMessage members that probes and the test stand-in exchange.
//
// The messages are encoded by hand with protowire from the field numbers of
// hbb_common's protos/rendezvous.proto (package hbb). The encoder writes what
// rust-protobuf (hbbs, the RustDesk client) and protobuf-go write: proto3
// default values omitted, regular fields in field-number order, then the set
// oneof member (always written when set, even if it holds a zero value), so
// the bytes are identical to upstream's.
//
// Transports:
//   - TCP: one frame per message, see [AppendFrame] and [ReadFrame];
//   - UDP 21116 and the WebSocket ports: one unframed message per datagram or
//     binary WebSocket message, see [Marshal] and [Unmarshal].
package rendezvous

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrameLen is the largest payload a frame header can describe: a 4-byte
// header holds 30 bits of length.
const MaxFrameLen = 0x3FFFFFFF

// ErrOverflow is returned when asked to frame a payload longer than
// MaxFrameLen (hbb_common's codec fails with "Overflow" there too).
var ErrOverflow = errors.New("rendezvous: frame payload longer than 0x3FFFFFFF bytes")

// FrameTooLargeError reports a frame header announcing more payload than the
// reader was willing to accept. Nothing of that size was allocated.
type FrameTooLargeError struct {
	Len int // payload length announced by the header
	Max int // limit the caller gave
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("rendezvous: frame announces %d bytes, limit is %d", e.Len, e.Max)
}

// HeaderLen returns the number of header bytes (1–4) that frame a payload of
// n bytes, or ErrOverflow when n is negative or above MaxFrameLen.
func HeaderLen(n int) (int, error) {
	switch {
	case n < 0 || n > MaxFrameLen:
		return 0, ErrOverflow
	case n <= 0x3F:
		return 1, nil
	case n <= 0x3FFF:
		return 2, nil
	case n <= 0x3FFFFF:
		return 3, nil
	default:
		return 4, nil
	}
}

// AppendHeader appends the little-endian length header for an n-byte payload:
// the value n<<2 with the low two bits holding header length − 1.
func AppendHeader(dst []byte, n int) ([]byte, error) {
	h, err := HeaderLen(n)
	if err != nil {
		return dst, err
	}
	v := uint32(n)<<2 | uint32(h-1)
	var buf [4]byte
	binary.LittleEndian.PutUint32(buf[:], v)
	return append(dst, buf[:h]...), nil
}

// AppendFrame appends header and payload to dst.
func AppendFrame(dst, payload []byte) ([]byte, error) {
	dst, err := AppendHeader(dst, len(payload))
	if err != nil {
		return dst, err
	}
	return append(dst, payload...), nil
}

// WriteFrame writes payload as one frame with a single Write call, so a frame
// is never interleaved with another writer's bytes at the Write level.
func WriteFrame(w io.Writer, payload []byte) error {
	b, err := AppendFrame(make([]byte, 0, len(payload)+4), payload)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ErrShortFrame is returned by DecodeFrame when b does not yet hold a whole
// frame; more bytes may complete it.
var ErrShortFrame = errors.New("rendezvous: incomplete frame")

// DecodeHeader parses the frame header at the start of b and returns the
// payload length and the header length. It returns ErrShortFrame when b is
// shorter than the header its first byte announces.
func DecodeHeader(b []byte) (n, headerLen int, err error) {
	if len(b) == 0 {
		return 0, 0, ErrShortFrame
	}
	headerLen = int(b[0]&3) + 1
	if len(b) < headerLen {
		return 0, 0, ErrShortFrame
	}
	var buf [4]byte
	copy(buf[:], b[:headerLen])
	return int(binary.LittleEndian.Uint32(buf[:]) >> 2), headerLen, nil
}

// DecodeFrame splits the first frame off b. The payload aliases b. It returns
// ErrShortFrame when b holds only part of a frame.
func DecodeFrame(b []byte) (payload, rest []byte, err error) {
	n, h, err := DecodeHeader(b)
	if err != nil {
		return nil, b, err
	}
	if len(b)-h < n {
		return nil, b, ErrShortFrame
	}
	return b[h : h+n], b[h+n:], nil
}

// readChunk bounds each allocation step of ReadFrame, so a peer that announces
// a large (but allowed) frame and then stalls costs at most this much memory
// beyond what it actually sent.
const readChunk = 64 << 10

// ReadFrame reads one frame from r and returns its payload.
//
// A header announcing more than max bytes fails with *FrameTooLargeError
// before anything of that size is allocated; max <= 0 or max > MaxFrameLen
// means MaxFrameLen. Memory grows only as payload bytes actually arrive.
// A clean end of stream before the first header byte returns io.EOF; a stream
// ending inside a frame returns io.ErrUnexpectedEOF.
//
// ReadFrame issues small reads for the header; wrap raw connections in a
// bufio.Reader.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	if max <= 0 || max > MaxFrameLen {
		max = MaxFrameLen
	}
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, err // io.EOF when the stream ended cleanly
	}
	h := int(hdr[0]&3) + 1
	if h > 1 {
		if _, err := io.ReadFull(r, hdr[1:h]); err != nil {
			return nil, unexpected(err)
		}
	}
	n := int(binary.LittleEndian.Uint32(hdr[:]) >> 2)
	if n > max {
		return nil, &FrameTooLargeError{Len: n, Max: max}
	}
	if n <= readChunk {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpected(err)
		}
		return buf, nil
	}
	buf := make([]byte, 0, readChunk)
	for len(buf) < n {
		step := min(n-len(buf), readChunk)
		if cap(buf)-len(buf) < step {
			grown := make([]byte, len(buf), min(n, 2*cap(buf)+step))
			copy(grown, buf)
			buf = grown
		}
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+step]); err != nil {
			return nil, unexpected(err)
		}
		buf = buf[:len(buf)+step]
	}
	return buf, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
