package tailnet

import (
	"cmp"
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// Client talks to one tailscaled over its LocalAPI. Build it with [New]. A
// Client is safe for concurrent use; each call is one or two LocalAPI
// requests and nothing is cached.
type Client struct {
	lc     *socketClient
	socket string // for messages; "" when unknown (tests' in-memory LocalAPI)
}

// New returns a Client for the tailscaled listening on socket. An empty
// socket means where tailscaled puts it by default: on most Linux systems
// /var/run/tailscale/tailscaled.sock (see defaultSocket).
//
// New does not connect; the first call does, once, without retrying, so
// that an rdctl run without tailscaled says so at once.
func New(socket string) *Client {
	if socket == "" {
		socket = defaultSocket(os.DirFS("/"))
	}
	return &Client{lc: newSocketClient(socket), socket: socket}
}

// Socket returns the LocalAPI socket path this client uses, or "" when it
// has a transport of its own (tests).
func (c *Client) Socket() string { return c.socket }

// BackendRunning is the tailscaled backend state in which the node is
// connected to its tailnet. Other states: "NoState", "NeedsLogin",
// "NeedsMachineAuth", "Stopped", "Starting".
const BackendRunning = "Running"

// Status is a snapshot of the local node and the peers it sees.
type Status struct {
	// BackendState is tailscaled's state; [BackendRunning] when connected.
	BackendState string `json:"backend_state"`
	// TUN is true when tailscaled uses a kernel TUN device, false in
	// userspace-networking mode (and for tsnet nodes).
	TUN bool `json:"tun"`
	// Self is this node. Self.Online is true when BackendState is Running.
	Self Peer `json:"self"`
	// MagicDNSSuffix is the tailnet's DNS suffix without dots around it
	// ("tail-scale.ts.net"); "" when control sends none.
	MagicDNSSuffix string `json:"magic_dns_suffix,omitempty"`
	// Peers are the other nodes in the network map, sorted by name.
	Peers []Peer `json:"peers"`
	// Health lists tailscaled's current health warnings, verbatim.
	Health []string `json:"health,omitempty"`
}

// Peer is one node of the tailnet as this host sees it.
type Peer struct {
	// HostName is the node's OS host name; not unique in a tailnet.
	HostName string `json:"host_name"`
	// DNSName is the node's MagicDNS FQDN without the trailing dot
	// ("rd-server.tail-scale.ts.net"), or just a bare name when the
	// tailnet has no MagicDNS domain. Unique within the tailnet.
	DNSName string `json:"dns_name,omitempty"`
	// IPs are the node's tailnet addresses, IPv4 first as tailscaled lists
	// them.
	IPs []netip.Addr `json:"ips"`
	// Online is the coordination server's view: the node is connected to
	// control. It says nothing about whether this host can reach it.
	Online bool `json:"online"`
	// Active is true when there was recent traffic with the node.
	Active bool `json:"active,omitempty"`
	// OS is the node's operating system as it reports it ("linux").
	OS string `json:"os,omitempty"`
	// Relay is the code of the node's home DERP region.
	Relay string `json:"relay,omitempty"`
	// CurAddr is the direct ip:port currently used to reach the node; ""
	// when traffic goes through DERP or there was no recent traffic.
	CurAddr string `json:"cur_addr,omitempty"`
	// Routes are the subnet routes the peer is the primary router for
	// (not exit-node routes).
	Routes []netip.Prefix `json:"routes,omitempty"`
	// PeerRelay is the peer-relay ip:port:vni in use, if any.
	PeerRelay string `json:"peer_relay,omitempty"`
	// LastSeen is when control last saw the node; set only while offline.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Self marks the local node.
	Self bool `json:"self,omitempty"`
}

// Name returns the most specific name of the peer: DNSName, else HostName.
func (p *Peer) Name() string { return cmp.Or(p.DNSName, p.HostName) }

// ShortName returns the first label of DNSName (the MagicDNS short name),
// else HostName.
func (p *Peer) ShortName() string {
	if p.DNSName != "" {
		s, _, _ := strings.Cut(p.DNSName, ".")
		return s
	}
	return p.HostName
}

// Addr returns the peer's first IPv4 tailnet address, else its first
// address, else the zero Addr.
func (p *Peer) Addr() netip.Addr {
	for _, a := range p.IPs {
		if a.Is4() {
			return a
		}
	}
	if len(p.IPs) > 0 {
		return p.IPs[0]
	}
	return netip.Addr{}
}

// OnlineErr returns nil when the peer is online, else an [ErrPeerOffline]
// error with a hint.
func (p *Peer) OnlineErr() error {
	if p.Online {
		return nil
	}
	e := &Error{Kind: ErrPeerOffline, Op: "peer", Target: p.Name(), Hint: hintOffline}
	if !p.LastSeen.IsZero() {
		e.Detail = "last seen " + p.LastSeen.UTC().Format(time.RFC3339)
	}
	return e
}

// Mode returns "tun" or "userspace": how tailscaled on this host networks.
// In userspace mode inbound tailnet connections reach local services from
// 127.0.0.1, so services must listen on loopback to be reachable.
func (s *Status) Mode() string {
	if s.TUN {
		return "tun"
	}
	return "userspace"
}

// Ready returns nil when the node is connected to its tailnet, else an
// [ErrNotRunning] error whose hint fits the state.
func (s *Status) Ready() error {
	if s.BackendState == BackendRunning {
		return nil
	}
	e := &Error{Kind: ErrNotRunning, Op: "status", Detail: "backend state " + cmp.Or(s.BackendState, "unknown"), Hint: hintUp}
	switch s.BackendState {
	case "NeedsMachineAuth":
		e.Hint = "approve this machine in the tailnet's admin console"
	case "Starting", "NoState":
		e.Hint = "tailscaled is still starting; retry in a few seconds, or if it stays so: " + hintUp
	}
	return e
}

// Status asks tailscaled for the local node and its peers. A node that is
// not connected (see [Status.Ready]) is not an error here: the returned
// Status says so, so `rdctl status` can show it.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	st, err := c.lc.Status(ctx)
	if err != nil {
		return nil, classify("status", "", c.socket, err)
	}
	return convertStatus(st), nil
}

func convertStatus(st *lapiStatus) *Status {
	out := &Status{
		BackendState: st.BackendState,
		TUN:          st.TUN,
		Health:       st.Health,
		Peers:        []Peer{},
	}
	if st.CurrentTailnet != nil {
		out.MagicDNSSuffix = st.CurrentTailnet.MagicDNSSuffix
	}
	if out.MagicDNSSuffix == "" {
		out.MagicDNSSuffix = st.MagicDNSSuffix // older tailscaled fill only this
	}
	out.MagicDNSSuffix = strings.Trim(out.MagicDNSSuffix, ".")
	if st.Self != nil {
		out.Self = convertPeer(st.Self)
	}
	out.Self.Self = true
	out.Self.Online = st.BackendState == BackendRunning
	if len(out.Self.IPs) == 0 {
		out.Self.IPs = st.TailscaleIPs
	}
	for _, ps := range st.Peer {
		if ps != nil {
			out.Peers = append(out.Peers, convertPeer(ps))
		}
	}
	slices.SortFunc(out.Peers, func(a, b Peer) int {
		return cmp.Or(cmp.Compare(a.Name(), b.Name()), cmp.Compare(a.HostName, b.HostName))
	})
	return out
}

func convertPeer(ps *lapiPeer) Peer {
	return Peer{
		Routes:    ps.PrimaryRoutes,
		HostName:  ps.HostName,
		DNSName:   strings.TrimSuffix(ps.DNSName, "."),
		IPs:       ps.TailscaleIPs,
		Online:    ps.Online,
		Active:    ps.Active,
		OS:        ps.OS,
		Relay:     ps.Relay,
		CurAddr:   ps.CurAddr,
		PeerRelay: ps.PeerRelay,
		LastSeen:  ps.LastSeen,
	}
}
