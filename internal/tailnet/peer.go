package tailnet

import (
	"context"
	"errors"
	"net/netip"
	"strings"
)

// FindPeer resolves target, a MagicDNS short name ("rd-server"), FQDN
// ("rd-server.tail-scale.ts.net", trailing dot allowed), host name, or tailnet
// IP, optionally with a ":port", to a peer of this node. The local node
// itself matches too (Peer.Self is set), so a host can check its own server.
//
// It fails with [ErrNotRunning] when the node is not connected,
// [ErrPeerNotFound] when nothing matches and [ErrAmbiguousPeer] when a short
// name matches several peers. An offline peer is returned without error;
// see [Peer.Online] and [Peer.OnlineErr].
func (c *Client) FindPeer(ctx context.Context, target string) (*Peer, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	if err := st.Ready(); err != nil {
		return nil, err
	}
	return st.FindPeer(target)
}

// FindPeer resolves target against this snapshot; see [Client.FindPeer].
// Names match case-insensitively, in this order: the full DNS name, the
// MagicDNS short name (first label), then the OS host name. The first rule
// that matches anything decides; more than one match under it is
// [ErrAmbiguousPeer].
func (s *Status) FindPeer(target string) (*Peer, error) {
	h := hostOf(target)
	all := make([]*Peer, 0, len(s.Peers)+1)
	all = append(all, &s.Self)
	for i := range s.Peers {
		all = append(all, &s.Peers[i])
	}
	notFound := &Error{Kind: ErrPeerNotFound, Op: "find peer", Target: target, Hint: hintListPeers}
	if h == "" {
		notFound.Detail = "empty name"
		return nil, notFound
	}
	if a, err := netip.ParseAddr(h); err == nil {
		for _, p := range all {
			for _, ip := range p.IPs {
				if ip == a.Unmap() {
					return p, nil
				}
			}
		}
		if !IsTailnetAddr(a) {
			notFound.Detail = "not a tailnet address"
		}
		return nil, notFound
	}
	rules := []func(*Peer) bool{
		func(p *Peer) bool { return p.DNSName != "" && strings.EqualFold(p.DNSName, h) },
		func(p *Peer) bool { return p.DNSName != "" && strings.EqualFold(p.ShortName(), h) },
		func(p *Peer) bool { return strings.EqualFold(p.HostName, h) },
	}
	for _, match := range rules {
		var found []*Peer
		for _, p := range all {
			if match(p) {
				found = append(found, p)
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		default:
			names := make([]string, len(found))
			for i, p := range found {
				names[i] = p.Name()
			}
			return nil, &Error{Kind: ErrAmbiguousPeer, Op: "find peer", Target: target,
				Detail: strings.Join(names, ", "), Hint: "use the full MagicDNS name or a tailnet IP"}
		}
	}
	return nil, notFound
}

// LooksTailnet is [LooksTailnet] plus what this snapshot knows: names under
// the tailnet's MagicDNS suffix, and peers' DNS, short and host names.
func (s *Status) LooksTailnet(target string) bool {
	if LooksTailnet(target) {
		return true
	}
	h := hostOf(target)
	if suf := strings.ToLower(s.MagicDNSSuffix); suf != "" && strings.HasSuffix(h, "."+suf) {
		return true
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false
	}
	_, err := s.FindPeer(h)
	return err == nil || errors.Is(err, ErrAmbiguousPeer)
}
