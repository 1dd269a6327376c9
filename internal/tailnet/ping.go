package tailnet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// PingKind selects how [Client.Ping] pings. Its values are tailscaled's
// ping type names (tailcfg.PingType in tailscale.com), sent as the LocalAPI
// ping request's "type".
type PingKind string

const (
	// PingDisco is a magicsock discovery ping: it tests the WireGuard
	// transport path (direct UDP or DERP) and reports which one answered.
	PingDisco PingKind = "disco"
	// PingTSMP is a ping through WireGuard and the peer's network stack; it
	// proves the peer's tailscaled processes packets.
	PingTSMP PingKind = "TSMP"
	// PingICMP is an ICMP echo through the tunnel.
	PingICMP PingKind = "ICMP"
)

// Path values in [PingResult.Path].
const (
	PathDirect    = "direct"     // peer-to-peer UDP; Endpoint is set
	PathDERP      = "derp"       // relayed through a DERP server; DERPRegion is set
	PathPeerRelay = "peer-relay" // relayed through a peer relay; Endpoint is set
	PathUnknown   = "unknown"    // tailscaled did not say (TSMP/ICMP before any traffic)
)

// DefaultPingTimeout bounds [Client.Ping] when ctx has no deadline: a ping to
// an unreachable peer otherwise waits forever.
const DefaultPingTimeout = 10 * time.Second

// PingResult is the answer to one ping.
type PingResult struct {
	// Kind is the ping type used.
	Kind PingKind `json:"kind"`
	// IP is the address pinged.
	IP netip.Addr `json:"ip"`
	// NodeName is the answering node's name as tailscaled reports it.
	NodeName string `json:"node_name,omitempty"`
	// Path is one of PathDirect, PathDERP, PathPeerRelay or PathUnknown.
	// Disco pings report it themselves. tailscaled does not report the path
	// of TSMP and ICMP pings; for those it is taken from the peer's current
	// address in the status right after the ping.
	Path string `json:"path"`
	// Endpoint is the peer's direct ip:port (PathDirect) or relay address
	// (PathPeerRelay).
	Endpoint string `json:"endpoint,omitempty"`
	// DERPRegion is the DERP region code when Path is PathDERP.
	DERPRegion string `json:"derp_region,omitempty"`
	// Latency is the round-trip time tailscaled measured.
	Latency time.Duration `json:"-"`
	// LatencyMS is Latency in milliseconds, for JSON.
	LatencyMS float64 `json:"latency_ms"`
}

// Ping pings ip, a tailnet address of a peer, through tailscaled and reports
// the path and latency. A ping that tailscaled reports as failed
// (PingResult.Err) is an error: [ErrPeerNotFound] for an address no peer
// has, [ErrTimeout] when no answer came before ctx's deadline (or
// [DefaultPingTimeout]) — [ErrPeerOffline] instead when control reports the
// peer offline — and [ErrPingFailed] otherwise.
func (c *Client) Ping(ctx context.Context, ip netip.Addr, kind PingKind) (*PingResult, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultPingTimeout)
		defer cancel()
	}
	op, target := "ping "+string(kind), ip.String()
	res, err := c.lc.Ping(ctx, ip, kind)
	if err != nil {
		err = classify(op, target, c.socket, err)
		if errors.Is(err, ErrTimeout) {
			// ctx is spent; ask briefly whether control knows the peer
			// is offline, which explains the silence.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if st, serr := c.Status(sctx); serr == nil {
				if p, ferr := st.FindPeer(target); ferr == nil {
					err = offlineIfSilent(err, p)
				}
			}
		}
		return nil, err
	}
	if res.Err != "" {
		e := &Error{Kind: ErrPingFailed, Op: op, Target: target, Detail: res.Err}
		switch {
		case res.IsLocalIP:
			e.Detail = "address of this host"
		case res.Err == "no matching peer":
			e.Kind, e.Hint = ErrPeerNotFound, hintListPeers
		}
		return nil, e
	}
	out := &PingResult{
		Kind:       kind,
		IP:         ip,
		NodeName:   res.NodeName,
		Latency:    time.Duration(res.LatencySeconds * float64(time.Second)),
		LatencyMS:  res.LatencySeconds * 1000,
		Path:       PathUnknown,
		DERPRegion: res.DERPRegionCode,
	}
	switch {
	case res.Endpoint != "":
		out.Path, out.Endpoint = PathDirect, res.Endpoint
	case res.PeerRelay != "":
		out.Path, out.Endpoint = PathPeerRelay, res.PeerRelay
	case res.DERPRegionID != 0 || res.DERPRegionCode != "":
		out.Path = PathDERP
		if out.DERPRegion == "" {
			out.DERPRegion = fmt.Sprint(res.DERPRegionID)
		}
	default:
		// TSMP/ICMP: ask where traffic to the peer goes now. Best effort:
		// the ping itself succeeded, so a failing status leaves PathUnknown.
		if st, err := c.Status(ctx); err == nil {
			if p, err := st.FindPeer(target); err == nil && !p.Self {
				switch {
				case p.CurAddr != "":
					out.Path, out.Endpoint = PathDirect, p.CurAddr
				case p.PeerRelay != "":
					out.Path, out.Endpoint = PathPeerRelay, p.PeerRelay
				case p.Relay != "":
					out.Path, out.DERPRegion = PathDERP, p.Relay
				}
			}
		}
	}
	return out, nil
}
