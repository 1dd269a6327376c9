package main

import (
	"context"
	"time"

	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/tailnet"
)

// tailnetJSON is the per-target `tailnet` object of `check --json`.
type tailnetJSON struct {
	Peer       string   `json:"peer"`
	DNSName    string   `json:"dns_name,omitempty"`
	IPs        []string `json:"ips,omitempty"`
	Online     bool     `json:"online"`
	Path       string   `json:"path,omitempty"` // direct | derp | peer-relay
	LatencyMS  float64  `json:"latency_ms,omitempty"`
	Endpoint   string   `json:"endpoint,omitempty"`
	DERPRegion string   `json:"derp_region,omitempty"`
	LocalMode  string   `json:"local_mode,omitempty"` // this host's tailscaled: tun | userspace
	Error      string   `json:"error,omitempty"`
	Note       string   `json:"note,omitempty"`
}

// noteUserspaceConsole explains console answers seen over the tailnet: a
// server whose tailscaled runs in userspace mode forwards tailnet traffic
// to 127.0.0.1, so hbbs and hbbr take the probes for local admin sessions.
const noteUserspaceConsole = "21115/21117 answered with the admin consoles: the server's tailscaled likely runs in userspace mode and hands tailnet traffic to hbbs/hbbr from loopback"

// routeOverTailnet decides which targets go through the local tailscaled
// (all with --tailnet; otherwise tailnet IPs, *.ts.net names and names of
// tailnet peers), pings each one's peer, and gives those targets a dialer
// through tailscaled. It returns the per-target tailnet reports by index.
func (e *env) routeOverTailnet(ctx context.Context, targets []probe.Target, force bool, socket string, timeout time.Duration) (map[int]*tailnetJSON, error) {
	c := tailnet.New(socket)
	st, stErr := c.Status(ctx)
	if stErr == nil {
		stErr = st.Ready()
	}
	out := map[int]*tailnetJSON{}
	for i := range targets {
		t := &targets[i]
		wanted := force || tailnet.LooksTailnet(t.Host) || (stErr == nil && st.LooksTailnet(t.Host))
		if !wanted {
			continue
		}
		if stErr != nil {
			if force || tailnet.LooksTailnet(t.Host) {
				return nil, withHints(stErr, tailnet.Hint(stErr))
			}
			continue
		}
		info := &tailnetJSON{LocalMode: st.Mode()}
		out[i] = info
		t.Via = probe.ViaTailnet
		t.Dial = tailnetDialer(c)
		peer, err := st.FindPeer(t.Host)
		if err != nil {
			info.Peer, info.Error = t.Host, err.Error()
			continue
		}
		info.Peer, info.DNSName, info.Online = peer.Name(), peer.DNSName, peer.Online
		for _, ip := range peer.IPs {
			info.IPs = append(info.IPs, ip.String())
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := c.Ping(pctx, peer.Addr(), tailnet.PingDisco)
		cancel()
		if err != nil {
			info.Error = err.Error()
			continue
		}
		info.Path, info.LatencyMS, info.Endpoint, info.DERPRegion = res.Path, res.LatencyMS, res.Endpoint, res.DERPRegion
	}
	return out, nil
}

// tailnetDialer dials through tailscaled, so probes work whether it runs
// with a TUN device or in userspace mode.
func tailnetDialer(c *tailnet.Client) probe.DialFunc { return c.Dial }

// tailnetNote adds the userspace-mode note when consoles answered.
func tailnetNote(info *tailnetJSON, probes []checkProbeJSON) {
	for _, p := range probes {
		if p.Note != "" && len(p.Note) >= len(probe.NoteConsole) && p.Note[:len(probe.NoteConsole)] == probe.NoteConsole {
			info.Note = noteUserspaceConsole
			return
		}
	}
}
