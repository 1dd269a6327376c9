package rendezvous

import (
	"bytes"
	"io"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// WSMessages reads the RendezvousMessages of one end of a WebSocket
// connection to hbbs (P+2) or hbbr (R+2): one per binary message, with no
// length header (hbbs's WebSocket framing).
// It is gobwas/ws's frame reader on the connection, for the probes (client
// end) and the stand-in (server end) alike.
type WSMessages struct {
	rd  wsutil.Reader
	ctl wsutil.FrameHandlerFunc
}

// NewWSMessages reads messages of at most max bytes from r (buffer it: a
// frame is read header first) as the given end of the connection;
// control-frame replies go to w.
func NewWSMessages(r io.Reader, w io.Writer, end ws.State, max int64) *WSMessages {
	m := &WSMessages{ctl: wsutil.ControlFrameHandler(w, end)}
	m.rd = wsutil.Reader{
		Source:         r,
		State:          end,
		MaxFrameSize:   max,
		MaxMessageSize: max,
		OnIntermediate: m.ctl,
	}
	return m
}

// Next returns the next binary message. Other data messages are skipped,
// as hbbs skips them; a ping is answered; a close frame is answered and
// returned as a wsutil.ClosedError. A message over the limit is
// wsutil.ErrFrameTooLarge or wsutil.ErrMessageTooLarge.
func (m *WSMessages) Next() ([]byte, error) {
	for {
		h, err := m.rd.NextFrame()
		if err != nil {
			return nil, err
		}
		if h.OpCode.IsControl() {
			if err := m.ctl(h, &m.rd); err != nil {
				return nil, err
			}
			continue
		}
		if h.OpCode != ws.OpBinary {
			if err := m.rd.Discard(); err != nil {
				return nil, err
			}
			continue
		}
		return io.ReadAll(&m.rd)
	}
}

// AppendWSMessages appends each of msgs as one binary message sent by the
// given end (a client masks its frames), so that several messages go out in
// one write: a frame written header and payload apart would cost two.
func AppendWSMessages(dst []byte, end ws.State, msgs ...[]byte) []byte {
	buf := bytes.NewBuffer(dst)
	for _, msg := range msgs {
		h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: int64(len(msg))}
		if end.ClientSide() {
			h.Masked, h.Mask = true, ws.NewMask()
		}
		ws.WriteHeader(buf, h) // cannot fail on a bytes.Buffer
		start := buf.Len()
		buf.Write(msg)
		if h.Masked {
			ws.Cipher(buf.Bytes()[start:], h.Mask, 0)
		}
	}
	return buf.Bytes()
}
