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
	w   io.Writer
	end ws.State
	// One control frame's payload, and the reply to it: a flood of pings
	// is answered from these, never from a fresh buffer per ping
	// (wsutil's control handler copies each through a new 32 KiB one,
	// which made a ping flood allocate over a GB a second).
	ctlIn  [maxControlPayload]byte
	ctlOut [2 + 4 + maxControlPayload]byte
}

// maxControlPayload: a control frame carries at most 125 bytes (RFC 6455,
// section 5.5).
const maxControlPayload = 125

// NewWSMessages reads messages of at most max bytes from r (buffer it: a
// frame is read header first) as the given end of the connection;
// control-frame replies go to w.
func NewWSMessages(r io.Reader, w io.Writer, end ws.State, max int64) *WSMessages {
	m := &WSMessages{w: w, end: end}
	m.rd = wsutil.Reader{
		Source:         r,
		State:          end,
		MaxFrameSize:   max,
		MaxMessageSize: max,
		OnIntermediate: m.control,
	}
	return m
}

// control handles a control frame whose header has been read from r: a
// ping is answered with a pong carrying its payload, a pong is dropped, a
// close is answered with a close carrying its status code and returned as
// a wsutil.ClosedError.
func (m *WSMessages) control(h ws.Header, r io.Reader) error {
	switch {
	case h.Length > maxControlPayload:
		return ws.ErrProtocolControlPayloadOverflow
	case !h.Fin:
		return ws.ErrProtocolControlNotFinal
	}
	payload := m.ctlIn[:h.Length]
	if _, err := io.ReadFull(r, payload); err != nil {
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		return m.reply(ws.OpPong, payload)
	case ws.OpClose:
		code, reason := ws.ParseCloseFrameData(payload)
		closed := wsutil.ClosedError{Code: code, Reason: string(reason)}
		var body []byte
		if len(payload) >= 2 {
			body = payload[:2] // the status code, echoed
		}
		if err := m.reply(ws.OpClose, body); err != nil {
			return err
		}
		return closed
	}
	return nil
}

// reply writes one control frame from this end, in one write.
func (m *WSMessages) reply(op ws.OpCode, payload []byte) error {
	out := append(m.ctlOut[:0], 0x80|byte(op), byte(len(payload)))
	var mask [4]byte
	if m.end.ClientSide() { // a client masks its frames
		mask = ws.NewMask()
		out[1] |= 0x80
		out = append(out, mask[:]...)
	}
	start := len(out)
	out = append(out, payload...)
	if m.end.ClientSide() {
		ws.Cipher(out[start:], mask, 0)
	}
	_, err := m.w.Write(out)
	return err
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
			if err := m.control(h, &m.rd); err != nil {
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
