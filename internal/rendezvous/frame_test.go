package rendezvous

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestHeaderFor100Bytes: a 100-byte payload has header 91 01 (BytesCodec's
// two-byte form, (100<<2)|1 little-endian).
func TestHeaderFor100Bytes(t *testing.T) {
	got, err := AppendHeader(nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "91 01"); !bytes.Equal(got, want) {
		t.Fatalf("header(100) = % x, want % x", got, want)
	}
	n, h, err := DecodeHeader(got)
	if err != nil || n != 100 || h != 2 {
		t.Fatalf("DecodeHeader = %d, %d, %v", n, h, err)
	}
}

func TestHeaderBoundaries(t *testing.T) {
	cases := []struct {
		n, h int
	}{
		{0, 1}, {1, 1}, {0x3F, 1},
		{0x40, 2}, {0x3FFF, 2},
		{0x4000, 3}, {0x3FFFFF, 3},
		{0x400000, 4}, {MaxFrameLen, 4},
	}
	for _, c := range cases {
		hdr, err := AppendHeader(nil, c.n)
		if err != nil {
			t.Fatalf("AppendHeader(%#x): %v", c.n, err)
		}
		if len(hdr) != c.h {
			t.Errorf("header(%#x) is %d bytes, want %d", c.n, len(hdr), c.h)
		}
		if int(hdr[0]&3)+1 != c.h {
			t.Errorf("header(%#x) low bits say %d bytes", c.n, int(hdr[0]&3)+1)
		}
		n, h, err := DecodeHeader(hdr)
		if err != nil || n != c.n || h != c.h {
			t.Errorf("DecodeHeader(% x) = %#x, %d, %v; want %#x, %d", hdr, n, h, err, c.n, c.h)
		}
		if _, _, err := DecodeHeader(hdr[:len(hdr)-1]); len(hdr) > 1 && !errors.Is(err, ErrShortFrame) {
			t.Errorf("truncated header(%#x): err %v, want ErrShortFrame", c.n, err)
		}
	}
	for _, n := range []int{MaxFrameLen + 1, -1} {
		if _, err := AppendHeader(nil, n); !errors.Is(err, ErrOverflow) {
			t.Errorf("AppendHeader(%d) err = %v, want ErrOverflow", n, err)
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var stream []byte
	var payloads [][]byte
	for _, n := range []int{0, 1, 63, 64, 100, 0x3FFF, 0x4000, 70000, 200000} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		payloads = append(payloads, p)
		var err error
		if stream, err = AppendFrame(stream, p); err != nil {
			t.Fatal(err)
		}
	}
	// DecodeFrame on the whole buffer.
	rest := stream
	for i, want := range payloads {
		var got []byte
		var err error
		got, rest, err = DecodeFrame(rest)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("DecodeFrame #%d: len %d err %v, want len %d", i, len(got), err, len(want))
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left over", len(rest))
	}
	// ReadFrame through a reader that returns one byte at a time.
	r := bufio.NewReader(iotest.OneByteReader(bytes.NewReader(stream)))
	for i, want := range payloads {
		got, err := ReadFrame(r, 1<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadFrame #%d: len %d err %v, want len %d", i, len(got), err, len(want))
		}
	}
	if _, err := ReadFrame(r, 1<<20); err != io.EOF {
		t.Fatalf("after last frame: err %v, want io.EOF", err)
	}
	// WriteFrame emits the same bytes as AppendFrame.
	var buf bytes.Buffer
	for _, p := range payloads {
		if err := WriteFrame(&buf, p); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(buf.Bytes(), stream) {
		t.Fatal("WriteFrame bytes differ from AppendFrame")
	}
}

func TestReadFrameErrors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		max  int
		want error
	}{
		{"empty", "", 0, io.EOF},
		{"header cut", "91", 0, io.ErrUnexpectedEOF},
		{"4-byte header cut", "ff ff ff", 0, io.ErrUnexpectedEOF},
		{"payload cut", "0c a2 01", 0, io.ErrUnexpectedEOF},
		{"large payload cut", "02 00 04 aa bb", 0, io.ErrUnexpectedEOF}, // 65536 bytes announced
	}
	for _, c := range cases {
		_, err := ReadFrame(bytes.NewReader(unhex(t, c.in)), c.max)
		if err != c.want {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	_, err := ReadFrame(bytes.NewReader(unhex(t, "91 01")), 99)
	var tl *FrameTooLargeError
	if !errors.As(err, &tl) || tl.Len != 100 || tl.Max != 99 {
		t.Fatalf("100-byte frame with max 99: err %v", err)
	}
	// Exactly at the limit is fine.
	in := append(unhex(t, "91 01"), make([]byte, 100)...)
	if p, err := ReadFrame(bytes.NewReader(in), 100); err != nil || len(p) != 100 {
		t.Fatalf("100-byte frame with max 100: len %d err %v", len(p), err)
	}
}

// TestReadFrameHostileLength checks that a header announcing 1 GiB costs no
// more than what was actually sent, both when the limit rejects it and when
// the caller allows everything and the stream is then cut short.
func TestReadFrameHostileLength(t *testing.T) {
	hostile := unhex(t, "ff ff ff ff") // 0x3FFFFFFF bytes announced
	measure := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	alloc := measure(func() {
		_, err := ReadFrame(bytes.NewReader(hostile), 1<<16)
		var tl *FrameTooLargeError
		if !errors.As(err, &tl) || tl.Len != MaxFrameLen {
			t.Errorf("err %v, want FrameTooLargeError{Len: MaxFrameLen}", err)
		}
	})
	if alloc > 1<<16 {
		t.Errorf("rejecting a hostile header allocated %d bytes", alloc)
	}
	sent := append(append([]byte{}, hostile...), make([]byte, 300000)...)
	alloc = measure(func() {
		_, err := ReadFrame(bytes.NewReader(sent), 0)
		if err != io.ErrUnexpectedEOF {
			t.Errorf("err %v, want io.ErrUnexpectedEOF", err)
		}
	})
	if alloc > 4<<20 {
		t.Errorf("a 1 GiB header followed by 300 kB allocated %d bytes", alloc)
	}
}
