//go:build linux

package probe

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/hbbstest"
	"github.com/rdctl/rdctl/internal/rendezvous"
)

// The rendezvous-udp probes of one check share a socket: each reply and
// each ICMP refusal goes to the probe of the address it came from, also
// with a target listed twice and refusing and answering targets mixed.
func TestUDPSharedSocketDemultiplexes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	up := startServer(t, hbbstest.Options{Dir: dir}, nil)
	closed := startServer(t, hbbstest.Options{Dir: dir, Skip: []hbbstest.Listener{hbbstest.RendezvousUDP}}, nil)
	up2 := startServer(t, hbbstest.Options{Dir: dir}, nil)
	targets := []Target{up.target, closed.target, up2.target, up.target, closed.target}
	rs, err := Check(context.Background(), targets, Options{Key: up.hbbs.Key(), Probes: []Name{RendezvousUDP}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		p := probeOf(t, r, RendezvousUDP)
		wantOK := targets[i].Name != closed.target.Name
		if p.OK != wantOK || (!wantOK && p.Error != "connection refused") {
			t.Errorf("target %d (%s): %+v, want ok=%v", i, targets[i].Name, p, wantOK)
		}
	}
}

// A RegisterPeerResponse from another port of the target's host is not the
// target's answer.
func TestUDPSharedSocketIgnoresOtherSources(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			// answer from the wrong port, and garbage from the right one
			other.WriteTo(rendezvous.Marshal(&rendezvous.RegisterPeerResponse{}), from)
			pc.WriteTo([]byte("\xff\xff garbage"), from)
		}
	}()
	m := newUDPMux()
	defer m.close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := m.register(ctx, pc.LocalAddr().String()); err != ErrNoAnswer {
		t.Fatalf("register: %v, want no answer", err)
	}
	if len(m.waiters) != 0 {
		t.Errorf("waiters left: %v", m.waiters)
	}
}
