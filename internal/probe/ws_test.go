package probe

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rdctl/rdctl/internal/hbbstest"
	"github.com/rdctl/rdctl/internal/rendezvous"
)

// The probes' WebSocket client is gobwas/ws, and so is the stand-in's
// server; these tests hold the client to a second implementation
// (coder/websocket's server), so a quirk the two gobwas sides share cannot
// hide.
func wsServer(t *testing.T, h func(ctx context.Context, c *websocket.Conn, r *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		h(r.Context(), c, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestTestNatWSAgainstAnotherServer(t *testing.T) {
	t.Parallel()
	hosts := make(chan string, 1)
	addr := wsServer(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		hosts <- r.Host
		typ, b, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageBinary {
			return
		}
		if m, err := rendezvous.Unmarshal(b); err != nil {
			return
		} else if _, ok := m.(*rendezvous.TestNatRequest); !ok {
			return
		}
		// A text message first: the client skips it.
		c.Write(ctx, websocket.MessageText, []byte("not for you"))
		c.Write(ctx, websocket.MessageBinary, rendezvous.Marshal(&rendezvous.TestNatResponse{Port: 4242}))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := TestNatWS(ctx, DirectDial, addr, "rd.example.com:21118"); err != nil {
		t.Fatal(err)
	}
	if h := <-hosts; h != "rd.example.com:21118" {
		t.Errorf("Host header %q", h)
	}
}

func TestTestNatWSClosedAndRefusedUpgrade(t *testing.T) {
	t.Parallel()
	addr := wsServer(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		c.Read(ctx)
		c.Close(websocket.StatusNormalClosure, "bye") // a closing handshake, no reply
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := TestNatWS(ctx, DirectDial, addr, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("server closed without a reply: %v, want %v", err, ErrClosed)
	}

	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	err := TestNatWS(ctx, DirectDial, strings.TrimPrefix(plain.URL, "http://"), "")
	if !errors.Is(err, ErrUnexpectedReply) || !strings.Contains(err.Error(), "HTTP status 404") {
		t.Errorf("plain HTTP server: %v", err)
	}
}

func TestTestNatWSOversizedReply(t *testing.T) {
	t.Parallel()
	addr := wsServer(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		c.Read(ctx)
		c.Write(ctx, websocket.MessageBinary, make([]byte, maxReply+1))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := TestNatWS(ctx, DirectDial, addr, ""); !errors.Is(err, ErrUnexpectedReply) {
		t.Errorf("a reply over %d bytes: %v", maxReply, err)
	}
}

// A black-holed WebSocket port: the TCP connection is accepted, the
// upgrade never answered (the stand-in's muted listener).
func TestTestNatWSNoAnswer(t *testing.T) {
	t.Parallel()
	s := startServer(t, hbbstest.Options{Mute: []hbbstest.Listener{hbbstest.RendezvousWS}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := TestNatWS(ctx, DirectDial, s.hbbs.Addrs().WS.String(), ""); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("%v, want %v", err, ErrNoAnswer)
	}
}
