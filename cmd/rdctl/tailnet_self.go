package main

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/doctor"
	"github.com/rdctl/rdctl/internal/tailnet"
)

// statusTailnetJSON is status's view of this host on its tailnet.
type statusTailnetJSON struct {
	Name    string   `json:"name"`
	DNSName string   `json:"dns_name,omitempty"`
	IPs     []string `json:"ips"`
	Mode    string   `json:"mode"` // tun | userspace
	// Reachable lists, per server port, whether a listener covers the
	// tailnet addresses (bound to them or to the wildcard address).
	Ports []statusTailnetPort `json:"ports,omitempty"`
	Error string              `json:"error,omitempty"`
}

type statusTailnetPort struct {
	Proto     string `json:"proto"`
	Port      int    `json:"port"`
	Reachable bool   `json:"reachable"`
}

// tailnetSelf asks the local tailscaled about this host. A host with no
// tailscaled gives nil: the tailnet is optional.
func tailnetSelf(ctx context.Context, socket string) (*tailnet.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := tailnet.New(socket).Status(ctx)
	if err != nil {
		return nil, err
	}
	return st, st.Ready()
}

// statusTailnet reports this host's tailnet addresses and whether hbbs and
// hbbr listen on them. Under userspace networking tailscaled hands tailnet
// traffic to 127.0.0.1, so loopback listeners count there too.
func statusTailnet(ctx context.Context, socket string, ports []doctor.PortState) *statusTailnetJSON {
	st, err := tailnetSelf(ctx, socket)
	if errors.Is(err, tailnet.ErrDaemonUnavailable) {
		return nil
	}
	if err != nil {
		return &statusTailnetJSON{Error: err.Error()}
	}
	out := &statusTailnetJSON{Name: st.Self.HostName, DNSName: strings.TrimSuffix(st.Self.DNSName, "."), Mode: st.Mode(), IPs: []string{}}
	for _, ip := range st.Self.IPs {
		out.IPs = append(out.IPs, ip.String())
	}
	for _, p := range ports {
		r := statusTailnetPort{Proto: p.Port.Proto, Port: int(p.Port.Port)}
		for _, a := range p.Addresses {
			ap, err := netip.ParseAddrPort(a)
			if err != nil {
				continue
			}
			ip := ap.Addr().Unmap()
			switch {
			case ip.IsUnspecified(), out.Mode == "userspace" && ip.IsLoopback():
				r.Reachable = true
			default:
				for _, tip := range st.Self.IPs {
					r.Reachable = r.Reachable || tip == ip
				}
			}
		}
		out.Ports = append(out.Ports, r)
	}
	return out
}

// tailnetRelayDefault is the relay a --tailnet-only install advertises when
// no --relay is given: this host's MagicDNS name (its tailnet IP without
// MagicDNS).
func tailnetRelayDefault(ctx context.Context, socket string) (string, error) {
	st, err := tailnetSelf(ctx, socket)
	if err != nil {
		return "", withHints(err, tailnet.Hint(err), "or name the relay: --relay HOST")
	}
	if name := strings.TrimSuffix(st.Self.DNSName, "."); strings.Contains(name, ".") {
		return name, nil
	}
	if len(st.Self.IPs) > 0 {
		return st.Self.IPs[0].String(), nil
	}
	return "", withHints(errors.New("this host has no tailnet name or address"), "name the relay: --relay HOST")
}
