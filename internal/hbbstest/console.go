package hbbstest

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// consoleReadTimeout is how long a console connection may take to send its
// command (upstream: 1 s).
const consoleReadTimeout = time.Second

// consoleMax is the most a console reads for one command.
const consoleMax = 1024

// serveConsole is the plain-text admin console of hbbs TCP P-1 and hbbr
// TCP R (reference §4e): read up to 1024 bytes within 1 s; nothing or
// non-UTF-8 → close without a reply; otherwise write the command's reply
// (possibly empty) and close.
func (s *Server) serveConsole(c net.Conn, run func(args []string) string) {
	c.SetReadDeadline(time.Now().Add(consoleReadTimeout))
	buf := make([]byte, consoleMax)
	n, _ := c.Read(buf)
	if n == 0 || !utf8.Valid(buf[:n]) {
		return
	}
	reply := run(strings.Fields(string(buf[:n])))
	if reply != "" {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, reply)
	}
}

const hbbsHelp = `relay-servers(rs) <separated by ,>
reload-geo(rg)
ip-blocker(ib) [<ip>|<number>] [-]
ip-changes(ic) [<id>|<number>] [-]
punch-requests(pr) [<number>] [-]
always-use-relay(aur)
test-geo(tg) <ip1> <ip2>
`

// hbbsCommand implements hbbs's console commands "h" and
// "relay-servers|rs [a,b,...]"; every other command gets an empty reply.
func (s *Server) hbbsCommand(args []string) string {
	if len(args) == 0 {
		return ""
	}
	switch args[0] {
	case "h":
		return hbbsHelp
	case "relay-servers", "rs":
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(args) > 1 {
			var relays []string
			for _, r := range strings.Split(args[1], ",") {
				if r = strings.TrimSpace(r); r != "" {
					relays = append(relays, r)
				}
			}
			s.relays = relays
			s.relayIdx = 0
			return ""
		}
		var b strings.Builder
		for _, r := range s.relays {
			b.WriteString(r + "\n")
		}
		return b.String()
	}
	return ""
}

const hbbrHelp = `blacklist-add(ba) <ip>
blacklist-remove(br) <ip>
blacklist(b) <ip>
blocklist-add(Ba) <ip>
blocklist-remove(Br) <ip>
blocklist(B) <ip>
downgrade-threshold(dt) [value]
downgrade-start-check(t) [value(second)]
limit-speed(ls) [value(Mb/s)]
total-bandwidth(tb) [value(Mb/s)]
single-bandwidth(sb) [value(Mb/s)]
usage(u)
`

// singleBandwidthKbps is hbbr's default per-connection limit (128 Mb/s),
// reported by "usage".
const singleBandwidthKbps = 128 * 1000

// hbbrCommand implements hbbr's console commands "h", "usage|u" and the
// blacklist/blocklist families ("ba ip|ip", "br ip|all", "b [ip]" and
// Ba/Br/B); every other command gets an empty reply. Changes are in memory
// only, as upstream.
func (s *Server) hbbrCommand(args []string) string {
	if len(args) == 0 {
		return ""
	}
	list := func(m map[string]bool, op string) string {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch op {
		case "add":
			if len(args) > 1 {
				for _, ip := range strings.Split(args[1], "|") {
					if ip != "" {
						m[ip] = true
					}
				}
			}
		case "remove":
			if len(args) > 1 {
				if args[1] == "all" {
					clear(m)
				}
				for _, ip := range strings.Split(args[1], "|") {
					delete(m, ip)
				}
			}
		case "show":
			if len(args) > 1 {
				return fmt.Sprint(m[args[1]])
			}
			var ips []string
			for ip := range m {
				ips = append(ips, ip)
			}
			slices.Sort(ips)
			var b strings.Builder
			for _, ip := range ips {
				b.WriteString(ip + "\n")
			}
			return b.String()
		}
		return ""
	}
	switch args[0] {
	case "h":
		return hbbrHelp
	case "blacklist-add", "ba":
		return list(s.blacklist, "add")
	case "blacklist-remove", "br":
		return list(s.blacklist, "remove")
	case "blacklist", "b":
		return list(s.blacklist, "show")
	case "blocklist-add", "Ba":
		return list(s.blocklist, "add")
	case "blocklist-remove", "Br":
		return list(s.blocklist, "remove")
	case "blocklist", "B":
		return list(s.blocklist, "show")
	case "usage", "u":
		return s.usage()
	}
	return ""
}

// usage lists active relay sides as "ip:port: Ns X.XXMB Nkb/s Nkb/s Nkb/s"
// (elapsed, received, highest and current speed, limit).
func (s *Server) usage() string {
	s.mu.Lock()
	sides := make([]*relaySide, 0, len(s.sessions))
	for r := range s.sessions {
		sides = append(sides, r)
	}
	s.mu.Unlock()
	slices.SortFunc(sides, func(a, b *relaySide) int { return strings.Compare(a.remote.String(), b.remote.String()) })
	var b strings.Builder
	for _, r := range sides {
		elapsed := time.Since(r.start)
		n := r.bytes.Load()
		secs := max(elapsed.Seconds(), 0.001)
		kbps := int64(float64(n) * 8 / 1000 / secs)
		fmt.Fprintf(&b, "%s: %ds %.2fMB %dkb/s %dkb/s %dkb/s\n", r.remote, int64(elapsed.Seconds()),
			float64(n)/1024/1024, kbps, kbps, singleBandwidthKbps)
	}
	return b.String()
}

// blocked reports whether hbbr's blocklist holds a's IP.
func (s *Server) blocked(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocklist[a.Unmap().String()]
}
