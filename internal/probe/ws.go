package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/rdctl/rdctl/internal/rendezvous"
)

// wsClient is the client end of one WebSocket connection to hbbs (P+2) or
// hbbr (R+2), which carry one RendezvousMessage per binary message.
//
// It is gobwas/ws's handshake and framing on a connection the probe dialled
// itself: no HTTP client, no per-connection goroutine, pooled handshake
// buffers. A check of a thousand targets opens thousands of these, so the
// per-connection cost is what counts.
type wsClient struct {
	conn net.Conn
	stop func() bool
	msgs *rendezvous.WSMessages
}

// wsDial dials addr (host:port), bound to ctx, and upgrades the connection
// to a WebSocket, sending host in the Host header ("" means addr). It never
// uses a proxy: the probe must reach the target itself.
func wsDial(ctx context.Context, dial DialFunc, addr, host string) (*wsClient, error) {
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// watch puts the probe's deadline on the connection before the
	// upgrade: a server sending its response a byte at a time costs at
	// most the probe's timeout.
	w := &wsClient{conn: c, stop: watch(ctx, c)}
	d := ws.Dialer{Host: host}
	// gobwas/ws reads the response's lines into a slice that grows as long
	// as the line does: a server sending an endless header line grew it by
	// hundreds of MB a second. The limit makes that an error at
	// maxHandshake bytes.
	lim := &handshakeLimit{r: c, left: maxHandshake}
	br, _, err := d.Upgrade(struct {
		io.Reader
		io.Writer
	}{lim, c}, &url.URL{Scheme: "ws", Host: addr, Path: "/"})
	if err != nil {
		w.Close()
		return nil, wsErr(ctx, err)
	}
	// What the server wrote past its response is in br, which reads on
	// through lim: from here frames are bounded by maxReply instead.
	lim.left = -1
	var src io.Reader = br
	if br == nil {
		src = replyReader(c)
	}
	w.msgs = rendezvous.NewWSMessages(src, c, ws.StateClientSide, maxReply)
	return w, nil
}

// WriteBinary sends each of msgs as one binary message, all in one write.
func (w *wsClient) WriteBinary(msgs ...[]byte) error {
	_, err := w.conn.Write(rendezvous.AppendWSMessages(nil, ws.StateClientSide, msgs...))
	return err
}

// ReadBinary returns the next binary message (see WSMessages.Next); a
// close frame from the server is ErrClosed.
func (w *wsClient) ReadBinary() ([]byte, error) {
	b, err := w.msgs.Next()
	var closed wsutil.ClosedError
	if errors.As(err, &closed) {
		return nil, ErrClosed
	}
	return b, err
}

// Close drops the connection without a closing handshake, as hbbs and hbbr
// do: the probe has its verdict by then.
func (w *wsClient) Close() error {
	w.stop()
	return w.conn.Close()
}

// maxHandshake bounds the bytes of the server's response to the WebSocket
// upgrade (status line and headers, and whatever it sends before the
// handshake is parsed). hbbs and hbbr answer in about 150 bytes; an HTTP
// server's response headers rarely pass 8 KiB (nginx's default limit).
const maxHandshake = 8 << 10

// ErrHandshakeTooLarge: the server's handshake response went on past
// maxHandshake bytes.
var ErrHandshakeTooLarge = fmt.Errorf("%w: WebSocket handshake response longer than %d bytes", ErrUnexpectedReply, maxHandshake)

// handshakeLimit fails a read once left bytes have been read; left < 0
// lifts the limit.
type handshakeLimit struct {
	r    io.Reader
	left int
}

func (l *handshakeLimit) Read(p []byte) (int, error) {
	switch {
	case l.left < 0:
		return l.r.Read(p)
	case l.left == 0:
		return 0, ErrHandshakeTooLarge
	}
	n, err := l.r.Read(p[:min(len(p), l.left)])
	l.left -= n
	return n, err
}

// wsErr classifies a WebSocket error: a handshake the server answered with
// anything but 101 is an unexpected reply.
func wsErr(ctx context.Context, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return ErrNoAnswer
	}
	if errors.Is(err, ErrHandshakeTooLarge) {
		return ErrHandshakeTooLarge
	}
	var st ws.StatusError
	if errors.As(err, &st) {
		return fmt.Errorf("%w: HTTP status %d to the WebSocket upgrade", ErrUnexpectedReply, int(st))
	}
	return classify(err)
}
