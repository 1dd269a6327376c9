// Package serverargs reads hbbs/hbbr command lines as the servers' clap 2
// parser reads them (rustdesk-server 1.1.16 declares both command lines
// with clap 2's App::args_from_usage).
//
// The rules, from clap 2's Parser:
//   - "--" ends the options: every word after it is a positional argument,
//     which hbbs and hbbr do not take (they refuse to start);
//   - -rX, -r=X, -r X, --relay-servers X and --relay-servers=X all give
//     relay-servers X; leading '=' of an attached value are dropped
//     (-r==X is X); --name is also read with more leading dashes;
//   - an option's value is the next word unless that word starts a new
//     argument: anything starting with '-' except "-" alone. -k - is the
//     key "-"; in -r -k _ the relay has no value (clap refuses it);
//   - short flags cluster: -Vrx is -V, then -r with value x;
//   - -h, -V, --help and --version take no value (clap prints and exits).
//
// Where clap would refuse the line (an unknown flag, a stray word, an
// option without a value, an option given twice) the server never starts;
// rdctl still reads what it can, reports the refusal in [Args], and lets
// the last occurrence of a repeated option win.
package serverargs

import (
	"slices"
	"strings"
)

// Long names of the options hbbs and hbbr take. Every one takes a value.
const (
	Config            = "config"
	Bind              = "bind"
	Port              = "port"
	Serial            = "serial"
	RendezvousServers = "rendezvous-servers"
	SoftwareURL       = "software-url"
	RelayServers      = "relay-servers"
	RMem              = "rmem"
	Mask              = "mask"
	Key               = "key"
)

// shorts maps short options to long names: the union of hbbs's and hbbr's
// across releases (hbbr takes a few of them; one a server lacks makes it
// refuse to start, which is not this reader's to judge). --mask has no
// short form.
var shorts = map[rune]string{
	'c': Config, 'b': Bind, 'p': Port, 's': Serial, 'R': RendezvousServers,
	'u': SoftwareURL, 'r': RelayServers, 'M': RMem, 'k': Key,
}

// valued holds every long option name.
var valued = map[string]bool{
	Config: true, Bind: true, Port: true, Serial: true, RendezvousServers: true,
	SoftwareURL: true, RelayServers: true, RMem: true, Mask: true, Key: true,
}

// Args is what a command line sets. Values may hold a secret key (-k):
// callers classify it and never copy it out. Unknown never holds a value,
// so it can be shown.
type Args struct {
	// Values are the options' values by long name; the last occurrence
	// wins.
	Values map[string]string
	// Unknown lists the flags the servers do not have, as clap names them
	// ("-x", "--name"), without any value written with them.
	Unknown []string
	// Positional counts the words that are neither an option nor its
	// value, every word after "--" among them.
	Positional int
	// NoValue lists the long names of options given without a value.
	NoValue []string
	// Repeated lists the long names of options given more than once.
	Repeated []string
}

// Refused reports whether clap would refuse the command line, so the
// server would not start.
func (a Args) Refused() bool {
	return len(a.Unknown) > 0 || a.Positional > 0 || len(a.NoValue) > 0 || len(a.Repeated) > 0
}

// Get returns the value of the option with long name name, and whether the
// command line sets it (an empty value is set).
func (a Args) Get(name string) (string, bool) {
	v, ok := a.Values[name]
	return v, ok
}

// Relay is -r/--relay-servers.
func (a Args) Relay() (string, bool) { return a.Get(RelayServers) }

// SplitRelays splits a relay-servers value as hbbs does when it starts:
// at every comma, skipping empty entries, each entry kept as written (hbbs
// then drops, silently but for a log line, every entry whose name does not
// resolve at that moment).
func SplitRelays(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Key is -k/--key. It may be a secret key.
func (a Args) Key() (string, bool) { return a.Get(Key) }

// Bind is -b/--bind.
func (a Args) Bind() (string, bool) { return a.Get(Bind) }

// Port is -p/--port.
func (a Args) Port() (string, bool) { return a.Get(Port) }

// Config is -c/--config.
func (a Args) Config() (string, bool) { return a.Get(Config) }

// Parse reads argv, the program first (as in an ExecStart= line or a
// compose command), as clap 2 reads an hbbs or hbbr command line.
func Parse(argv []string) Args {
	p := parser{Args: Args{Values: map[string]string{}}, seen: map[string]bool{}}
	if len(argv) == 0 {
		return p.Args
	}
	pending := "" // an option still waiting for its value
	trailing := false
	for _, w := range argv[1:] {
		if trailing {
			p.Positional++
			continue
		}
		newArg := strings.HasPrefix(w, "-") && w != "-"
		if pending != "" {
			if !newArg {
				p.Values[pending] = w
				pending = ""
				continue
			}
			p.NoValue = append(p.NoValue, pending)
			pending = ""
		}
		switch {
		case w == "--":
			trailing = true
		case strings.HasPrefix(w, "--"):
			pending = p.long(w)
		case newArg:
			pending = p.short(w[1:])
		default:
			p.Positional++
		}
	}
	if pending != "" {
		p.NoValue = append(p.NoValue, pending)
	}
	return p.Args
}

type parser struct {
	Args
	seen map[string]bool // options met, with or without a value
}

// long reads a word starting with "--" and returns the option that waits
// for its value in the next word, if any.
func (p *parser) long(w string) string {
	// clap trims every leading '-' and splits at the first '='.
	name, val, hasVal := strings.Cut(strings.TrimLeft(w, "-"), "=")
	switch {
	case valued[name]:
		p.occur(name)
		if !hasVal {
			return name
		}
		p.Values[name] = strings.TrimLeft(val, "=")
	case name == "help" || name == "version":
	default:
		p.Unknown = append(p.Unknown, "--"+name)
	}
	return ""
}

// short reads the letters of a word starting with a single '-': flags
// until an option, whose value is the rest of the word or else the next
// word (returned as waiting).
func (p *parser) short(letters string) string {
	for i, c := range letters {
		if name, ok := shorts[c]; ok {
			p.occur(name)
			rest := letters[i+1:] // every option letter is one byte
			if rest == "" {
				return name
			}
			p.Values[name] = strings.TrimLeft(rest, "=")
			return ""
		}
		if c == 'h' || c == 'V' {
			continue
		}
		// clap stops at the first letter it does not know.
		p.Unknown = append(p.Unknown, "-"+string(c))
		return ""
	}
	return ""
}

func (p *parser) occur(name string) {
	if p.seen[name] && !slices.Contains(p.Repeated, name) {
		p.Repeated = append(p.Repeated, name)
	}
	p.seen[name] = true
}
