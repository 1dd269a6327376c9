package rendezvous

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// The client end masks its frames, the server end does not; each end reads
// the other's, one binary message per RendezvousMessage.
func TestWSMessagesRoundTrip(t *testing.T) {
	testNat := Marshal(&TestNatRequest{})
	for _, tc := range []struct {
		from, to ws.State
		masked   bool
	}{
		{ws.StateClientSide, ws.StateServerSide, true},
		{ws.StateServerSide, ws.StateClientSide, false},
	} {
		wire := AppendWSMessages(nil, tc.from, testNat, []byte("second"))
		if masked := wire[1]&0x80 != 0; masked != tc.masked {
			t.Errorf("from %v: masked %v", tc.from, masked)
		}
		if !tc.masked && hex.EncodeToString(wire[:2+len(testNat)]) != "8203"+hex.EncodeToString(testNat) {
			t.Errorf("server frame % x, want FIN+binary, length 3, the message", wire[:2+len(testNat)])
		}
		var replies bytes.Buffer
		m := NewWSMessages(bytes.NewReader(wire), &replies, tc.to, 1<<10)
		for _, want := range [][]byte{testNat, []byte("second")} {
			got, err := m.Next()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("from %v: got % x %v, want % x", tc.from, got, err, want)
			}
		}
		if _, err := m.Next(); err == nil {
			t.Errorf("from %v: a message past the end", tc.from)
		}
	}
}

func TestWSMessagesSkipsTextAnswersPingAndClose(t *testing.T) {
	var wire bytes.Buffer
	wsutil.WriteServerText(&wire, []byte("text is skipped"))
	wsutil.WriteServerMessage(&wire, ws.OpPing, []byte("p"))
	wire.Write(AppendWSMessages(nil, ws.StateServerSide, []byte{1, 2, 3}))
	wsutil.WriteServerMessage(&wire, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))

	var replies bytes.Buffer
	m := NewWSMessages(&wire, &replies, ws.StateClientSide, 1<<10)
	if got, err := m.Next(); err != nil || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("got % x %v", got, err)
	}
	var closed wsutil.ClosedError
	if _, err := m.Next(); !errors.As(err, &closed) {
		t.Fatalf("after the close frame: %v", err)
	}
	// The client answered the ping with a pong and the close with a close,
	// both masked.
	msgs, err := wsutil.ReadClientMessage(&replies, nil)
	if err != nil || len(msgs) != 1 || msgs[0].OpCode != ws.OpPong || string(msgs[0].Payload) != "p" {
		t.Fatalf("first reply %+v %v", msgs, err)
	}
	if msgs, err = wsutil.ReadClientMessage(&replies, nil); err != nil || len(msgs) != 1 || msgs[0].OpCode != ws.OpClose {
		t.Fatalf("second reply %+v %v", msgs, err)
	}
}

func TestWSMessagesLimit(t *testing.T) {
	wire := AppendWSMessages(nil, ws.StateServerSide, make([]byte, 1025))
	m := NewWSMessages(bytes.NewReader(wire), &bytes.Buffer{}, ws.StateClientSide, 1<<10)
	if _, err := m.Next(); !errors.Is(err, wsutil.ErrFrameTooLarge) {
		t.Fatalf("a 1025-byte message with a 1024 limit: %v", err)
	}
	// Fragments that add up past the limit.
	var frag bytes.Buffer
	ws.WriteFrame(&frag, ws.NewFrame(ws.OpBinary, false, make([]byte, 600)))
	ws.WriteFrame(&frag, ws.NewFrame(ws.OpContinuation, true, make([]byte, 600)))
	m = NewWSMessages(&frag, &bytes.Buffer{}, ws.StateClientSide, 1<<10)
	if _, err := m.Next(); err == nil {
		t.Fatal("a fragmented 1200-byte message with a 1024 limit was read")
	}
}
