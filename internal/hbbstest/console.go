package hbbstest

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
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
// TCP R (upstream's check_cmd consoles): read up to 1024 bytes within 1 s;
// nothing or non-UTF-8 → close without a reply; otherwise write the command's reply
// (possibly empty) and close.
func (s *Server) serveConsole(c net.Conn, run func(args []string) string) {
	c.SetReadDeadline(time.Now().Add(consoleReadTimeout))
	buf := make([]byte, consoleMax)
	n, _ := c.Read(buf)
	if n == 0 || !utf8.Valid(buf[:n]) {
		return
	}
	reply := run(consoleArgs(string(buf[:n])))
	if reply != "" {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, reply)
	}
}

// consoleArgs splits a console command the way the servers do: the line is
// trimmed, then split at every single space, so two spaces make an empty
// argument (measured on 1.1.16: "rs  x" sets an empty relay list rather
// than "x").
func consoleArgs(line string) []string {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	return strings.Split(line, " ")
}

const hbbsHelp = `relay-servers(rs) <separated by ,>
reload-geo(rg)
ip-blocker(ib) [<ip>|<number>] [-]
ip-changes(ic) [<id>|<number>] [-]
punch-requests(pr) [<number>] [-]
always-use-relay(aur)
test-geo(tg) <ip1> <ip2>
`

// ipBlock is one ip-blocker entry: a source of UDP RegisterPk.
type ipBlock struct {
	count int
	first time.Time
}

// ipChange is one recorded IP change of a registered peer.
type ipChange struct {
	at       time.Time
	from, to netip.Addr
}

// punchReq is one recorded punch request to an existing peer.
type punchReq struct {
	at       time.Time
	from, to netip.Addr
	id       string
}

// maxPunchReqs bounds the punch-request record.
const maxPunchReqs = 1000

// hbbsCommand implements hbbs's console. The commands and their state
// changes follow upstream's check_cmd as measured on 1.1.16; the wording of
// the listings is the stand-in's own (only that they answer with content
// was measured, not the text):
//
//	h                          help
//	rs [a,b,...]               list the relays one per line, or replace them
//	                           ("rs  x", two spaces: an empty list)
//	ib [<ip>|<n>] [-]          ip-blocker entries "<ip> <count> <first seen>";
//	                           with "-" the selected entries are removed
//	ic [<id>|<n>] [-]          ip changes "<id> <time> <from> -> <to>"
//	pr [<start>] [<size>] | -  punch requests "<time> <from_ip> -> <id>@<to_ip>"
//	aur [Y|N]                  "ALWAYS_USE_RELAY=Y|N", or set it; setting also
//	                           feeds Y/N into the relay list, which empties it
//	tg <ip1> [<ip2>]           "<ip>: no geo data" per address (OSS has none)
//
// Every other command gets an empty reply.
func (s *Server) hbbsCommand(args []string) string {
	if len(args) == 0 {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	switch args[0] {
	case "h":
		return hbbsHelp
	case "relay-servers", "rs":
		if len(args) > 1 {
			s.relays = splitList(args[1])
			s.relayIdx = 0
			return ""
		}
		for _, r := range s.relays {
			b.WriteString(r + "\n")
		}
	case "ip-blocker", "ib":
		ips := sortedKeys(s.ipBlocker)
		ips, remove := selectEntries(ips, args[1:], func(k string) bool { return s.ipBlocker[k] != nil })
		for _, ip := range ips {
			e := s.ipBlocker[ip]
			fmt.Fprintf(&b, "%s %d %s\n", ip, e.count, e.first.UTC().Format(time.RFC3339))
			if remove {
				delete(s.ipBlocker, ip)
			}
		}
	case "ip-changes", "ic":
		ids := sortedKeys(s.ipChanges)
		ids, remove := selectEntries(ids, args[1:], func(k string) bool { return s.ipChanges[k] != nil })
		for _, id := range ids {
			for _, c := range s.ipChanges[id] {
				fmt.Fprintf(&b, "%s %s %s -> %s\n", id, c.at.UTC().Format(time.RFC3339), c.from, c.to)
			}
			if remove {
				delete(s.ipChanges, id)
			}
		}
	case "punch-requests", "pr":
		if len(args) > 1 && args[1] == "-" {
			s.punchReqs = nil
			return ""
		}
		start, size := 0, len(s.punchReqs)
		if len(args) > 1 {
			start, _ = strconv.Atoi(args[1])
		}
		if len(args) > 2 {
			size, _ = strconv.Atoi(args[2])
		}
		for i := max(start, 0); i < len(s.punchReqs) && i < start+size; i++ {
			r := s.punchReqs[i]
			fmt.Fprintf(&b, "%s %s -> %s@%s\n", r.at.UTC().Format(time.RFC3339), r.from, r.id, r.to)
		}
	case "always-use-relay", "aur":
		if len(args) > 1 {
			s.alwaysUseRelay = strings.EqualFold(args[1], "Y")
			// Upstream quirk (hbbs's check_cmd): the argument also goes
			// through the relay-list parser, and "Y"/"N" never resolve as relays.
			s.relays = nil
			s.relayIdx = 0
			return ""
		}
		yn := "N"
		if s.alwaysUseRelay {
			yn = "Y"
		}
		fmt.Fprintf(&b, "ALWAYS_USE_RELAY=%s\n", yn)
	case "test-geo", "tg":
		if len(args) < 2 {
			return "test-geo(tg) <ip1> <ip2>\n"
		}
		for _, ip := range args[1:] {
			if ip != "" {
				fmt.Fprintf(&b, "%s: no geo data\n", ip)
			}
		}
	}
	return b.String()
}

// selectEntries applies a "[<key>|<n>] [-]" console selection to keys: a
// number n takes the first n, a key takes that entry (if has says it
// exists), nothing takes all; a trailing "-" asks for removal.
func selectEntries(keys, args []string, has func(string) bool) (sel []string, remove bool) {
	if len(args) > 0 && args[len(args)-1] == "-" {
		remove = true
		args = args[:len(args)-1]
	}
	if len(args) == 0 || args[0] == "" {
		return keys, remove
	}
	if n, err := strconv.Atoi(args[0]); err == nil {
		return keys[:min(max(n, 0), len(keys))], remove
	}
	if has(args[0]) {
		return []string{args[0]}, remove
	}
	return nil, remove
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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

// relayLimits are hbbr's bandwidth settings (upstream's check_params
// defaults), shown and changed by the console; the stand-in does not enforce them.
type relayLimits struct {
	downgradeThreshold float64 // dt
	downgradeStart     int     // t, seconds
	limitSpeed         int     // ls, Mb/s
	totalBandwidth     int     // tb, Mb/s
	singleBandwidth    int     // sb, Mb/s
}

var defaultRelayLimits = relayLimits{
	downgradeThreshold: 0.66,
	downgradeStart:     1800,
	limitSpeed:         32,
	totalBandwidth:     1024,
	singleBandwidth:    128,
}

// hbbrCommand implements hbbr's console: "h", "usage|u", the
// blacklist/blocklist families ("ba ip|ip", "br ip|all", "b [ip]" and
// Ba/Br/B), and the bandwidth settings dt, t, ls, tb, sb, which print their
// value ("0.66", "1800s", "32Mb/s", ...; the wording is the stand-in's own)
// or, given a valid number, set it. Every other command gets an empty reply.
// Changes are in memory only, as upstream.
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
			var b strings.Builder
			for _, ip := range sortedKeys(m) {
				b.WriteString(ip + "\n")
			}
			return b.String()
		}
		return ""
	}
	// setting shows or sets one of the limits.
	setting := func(get func(*relayLimits) string, set func(*relayLimits, float64)) string {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(args) > 1 {
			if v, err := strconv.ParseFloat(args[1], 64); err == nil && v >= 0 {
				set(&s.limits, v)
			}
			return ""
		}
		return get(&s.limits) + "\n"
	}
	mbps := func(v int) string { return strconv.Itoa(v) + "Mb/s" }
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
	case "downgrade-threshold", "dt":
		return setting(func(l *relayLimits) string { return strconv.FormatFloat(l.downgradeThreshold, 'f', -1, 64) },
			func(l *relayLimits, v float64) { l.downgradeThreshold = v })
	case "downgrade-start-check", "t":
		return setting(func(l *relayLimits) string { return strconv.Itoa(l.downgradeStart) + "s" },
			func(l *relayLimits, v float64) { l.downgradeStart = int(v) })
	case "limit-speed", "ls":
		return setting(func(l *relayLimits) string { return mbps(l.limitSpeed) },
			func(l *relayLimits, v float64) { l.limitSpeed = int(v) })
	case "total-bandwidth", "tb":
		return setting(func(l *relayLimits) string { return mbps(l.totalBandwidth) },
			func(l *relayLimits, v float64) { l.totalBandwidth = int(v) })
	case "single-bandwidth", "sb":
		return setting(func(l *relayLimits) string { return mbps(l.singleBandwidth) },
			func(l *relayLimits, v float64) { l.singleBandwidth = int(v) })
	case "usage", "u":
		return s.usage()
	}
	return ""
}

// usage lists active relays, one line per pair (measured on 1.1.16), as
// "ip:port: Ns X.XXMB Nkb/s Nkb/s Nkb/s" (elapsed, received from both sides,
// highest and current speed, the single-bandwidth limit).
func (s *Server) usage() string {
	s.mu.Lock()
	pairs := make([]*relayPair, 0, len(s.sessions))
	for r := range s.sessions {
		pairs = append(pairs, r)
	}
	limit := s.limits.singleBandwidth * 1000
	s.mu.Unlock()
	slices.SortFunc(pairs, func(a, b *relayPair) int { return strings.Compare(a.remote.String(), b.remote.String()) })
	var b strings.Builder
	for _, r := range pairs {
		elapsed := time.Since(r.start)
		n := r.bytes.Load()
		secs := max(elapsed.Seconds(), 0.001)
		kbps := int64(float64(n) * 8 / 1000 / secs)
		fmt.Fprintf(&b, "%s: %ds %.2fMB %dkb/s %dkb/s %dkb/s\n", r.remote, int64(elapsed.Seconds()),
			float64(n)/1024/1024, kbps, kbps, limit)
	}
	return b.String()
}

// blocked reports whether hbbr's blocklist holds a's IP.
func (s *Server) blocked(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocklist[a.Unmap().String()]
}
