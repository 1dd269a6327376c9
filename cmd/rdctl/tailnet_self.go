package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/status"
	"github.com/rdctl/rdctl/internal/tailnet"
)

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

// tailnetStatusSelf is status's tailnet seam: this host as tailscaled
// sees it, nil without tailscaled (the tailnet is optional).
func tailnetStatusSelf(socket string) func(context.Context) (*status.TailnetSelf, error) {
	return func(ctx context.Context) (*status.TailnetSelf, error) {
		st, err := tailnetSelf(ctx, socket)
		if errors.Is(err, tailnet.ErrDaemonUnavailable) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &status.TailnetSelf{HostName: st.Self.HostName, DNSName: st.Self.DNSName, IPs: st.Self.IPs, Mode: st.Mode()}, nil
	}
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
