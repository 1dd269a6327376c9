package rendezvous

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/encoding/protowire"
)

// FuzzReadFrame: arbitrary streams and limits never panic, never return more
// than the limit, and every payload returned re-encodes to the bytes read.
func FuzzReadFrame(f *testing.F) {
	seeds := []string{"0c a2 01 00", "10 5a 02 18 03", "08 5a 00", "91 01", "ff ff ff ff", "02 00 04 aa", "", "03", "fd ff ff ff 00"}
	for _, s := range seeds {
		f.Add(unhex(f, s), 64)
		f.Add(unhex(f, s), 0)
	}
	f.Add(append(unhex(f, "91 01"), make([]byte, 100)...), 100)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		r := bytes.NewReader(data)
		limit := max
		if limit <= 0 || limit > MaxFrameLen {
			limit = MaxFrameLen
		}
		consumed := 0
		for {
			p, err := ReadFrame(r, max)
			if err != nil {
				var tl *FrameTooLargeError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &tl) {
					t.Fatalf("unexpected error type %T %v", err, err)
				}
				if tl != nil && tl.Len <= limit {
					t.Fatalf("rejected %d bytes with limit %d", tl.Len, limit)
				}
				return
			}
			if len(p) > limit {
				t.Fatalf("returned %d bytes over limit %d", len(p), limit)
			}
			// Non-minimal headers are legal on the wire (a 4-byte header for
			// 1 byte), so compare with DecodeFrame rather than re-encoding.
			got, rest, err := DecodeFrame(data[consumed:])
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("DecodeFrame disagrees with ReadFrame: %v", err)
			}
			consumed = len(data) - len(rest)
			if _, err := AppendFrame(nil, p); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzUnmarshal: arbitrary input never panics; whatever decodes re-encodes
// to a fixed point; when every member in the input is one this package models,
// anything protobuf-go rejects is rejected here too and, where both accept,
// both re-encode to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 40 {
		f.Add(Marshal(randomMessage(r)))
	}
	for _, s := range []string{"a2 01 00", "32 05 0a 03 61 62 63", "3a 02 10 01", "5a 02 18 03", "5a 00",
		"4a 03 0a 01 78", "5b 08 01", "32 03 0a 01 ff", "5a 05 18", "a2 01 ff ff ff ff 0f"} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Unmarshal(data)
		compare := onlyModelledMembers(data)
		o, oerr := oracleRoundTrip(t, "RendezvousMessage", data)
		if compare && oerr != nil && err == nil {
			t.Fatalf("protobuf-go rejects (%v) what we accept: %#v", oerr, m)
		}
		if err != nil {
			return
		}
		enc := Marshal(m)
		m2, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-decoding our own output: %v", err)
		}
		if enc2 := Marshal(m2); !bytes.Equal(enc, enc2) {
			t.Fatalf("not a fixed point:\n % x\n % x", enc, enc2)
		}
		if !compare {
			return
		}
		if !bytes.Equal(o, enc) {
			t.Fatalf("re-encoding differs:\n ours     % x\n protobuf % x", enc, o)
		}
	})
}

// onlyModelledMembers reports whether data parses at the top level and holds
// no oneof member this package returns as *Unknown. The oracle knows only the
// modelled members, so for the others it would (wrongly, for RustDesk) merge
// across them or skip them; comparisons are meaningless there.
func onlyModelledMembers(data []byte) bool {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeField(data)
		if n < 0 {
			return true // malformed: both sides must reject it
		}
		if typ == protowire.BytesType && num >= firstUnionField {
			if _, unknown := newMember(num).(*Unknown); unknown {
				return false
			}
		}
		data = data[n:]
	}
	return true
}

// FuzzWSMessages feeds arbitrary bytes to the WebSocket message reader as
// both ends: it must return an error or a message within the limit, never
// panic or allocate past it.
func FuzzWSMessages(f *testing.F) {
	f.Add(AppendWSMessages(nil, ws.StateServerSide, Marshal(&TestNatResponse{Port: 1})))
	f.Add(AppendWSMessages(nil, ws.StateClientSide, []byte("x"), []byte("yz")))
	f.Add([]byte{0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x02, 0x01, 0x41, 0x80, 0x01, 0x42})
	f.Add([]byte{0x89, 0x04, 'p', 'i', 'n', 'g', 0x88, 0x02, 0x03, 0xe8}) // ping, close 1000
	f.Add([]byte{0x02, 0x01, 0x41, 0x89, 0x01, 'p', 0x80, 0x01, 0x42})    // a ping between fragments
	f.Add([]byte{0x89, 0x7e, 0x00, 0x80})                                 // a ping over 125 bytes
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, end := range []ws.State{ws.StateClientSide, ws.StateServerSide} {
			var replies bytes.Buffer
			m := NewWSMessages(bytes.NewReader(b), &replies, end, 256)
			for range 8 {
				msg, err := m.Next()
				if err != nil {
					break
				}
				if len(msg) > 256 {
					t.Fatalf("a %d-byte message past the 256-byte limit", len(msg))
				}
			}
			// Every reply is one well-formed control frame from this end:
			// a pong or a close, masked by a client only, at most 125 bytes.
			for replies.Len() > 0 {
				h, err := ws.ReadHeader(&replies)
				if err != nil {
					t.Fatalf("%v end: a malformed reply: %v", end, err)
				}
				if (h.OpCode != ws.OpPong && h.OpCode != ws.OpClose) || !h.Fin || h.Masked != end.ClientSide() || h.Length > 125 || h.Length > int64(replies.Len()) {
					t.Fatalf("%v end: reply %+v (%d bytes follow)", end, h, replies.Len())
				}
				replies.Next(int(h.Length))
			}
		}
	})
}
