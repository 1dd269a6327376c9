package hbbstest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultVersion is the upstream release the stand-in behaves as unless told
// otherwise (the standalone binary's STANDIN_VERSION): the latest tag,
// 1.1.16, which has no -b (measured: 1.1.16 rejects it). Versions from
// BindVersion on (upstream HEAD, Cargo version 1.1.17) accept -b/--bind.
const DefaultVersion = "1.1.16"

// BindVersion is the first version with -b/--bind, env BIND and HEAD's
// lenient option names.
const BindVersion = "1.1.17"

// atLeast reports whether version v is at least min, comparing the leading
// dot-separated numbers ("1.1.10-3" counts as 1.1.10). A version that does
// not start with a number is treated as the newest, so an odd test value
// gets every feature.
func atLeast(v, min string) bool {
	nums := func(s string) ([]int, bool) {
		var out []int
		for _, p := range strings.Split(s, ".") {
			end := 0
			for end < len(p) && p[end] >= '0' && p[end] <= '9' {
				end++
			}
			n, err := strconv.Atoi(p[:end])
			if err != nil {
				return out, len(out) > 0
			}
			out = append(out, n)
			if end < len(p) {
				break
			}
		}
		return out, true
	}
	a, ok := nums(v)
	if !ok {
		return true
	}
	b, _ := nums(min)
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return x > y
		}
	}
	return true
}

// UsageError is a command-line error worded like clap 2's. The real servers
// print it to stderr and exit with status 1.
type UsageError struct {
	Kind Kind
	Msg  string // first line, without "error: "
}

func (e *UsageError) Error() string {
	return fmt.Sprintf("error: %s\n\nUSAGE:\n    %s [OPTIONS]\n\nFor more information try --help\n", e.Msg, e.Kind)
}

// option describes one clap option. All of the servers' options take a value.
type option struct {
	short byte
	long  string
	value string // value name in usage and messages
	help  string
}

var hbbsOptions = []option{
	{'c', "config", "FILE", "Sets a custom config file"},
	{'b', "bind", "IP", "Sets the bind address for all listeners"},
	{'p', "port", "NUMBER(default=21116)", "Sets the listening port"},
	{'s', "serial", "NUMBER(default=0)", "Sets configure update serial number"},
	{'R', "rendezvous-servers", "HOSTS", "Sets rendezvous servers, separated by comma"},
	{'u', "software-url", "URL", "Sets download url of RustDesk software of newest version"},
	{'r', "relay-servers", "HOST", "Sets the default relay servers, separated by comma"},
	{'M', "rmem", "NUMBER(default=0)", "Sets UDP recv buffer size"},
	{0, "mask", "MASK", "Determine if the connection comes from LAN, e.g. 192.168.0.0/16"},
	{'k', "key", "KEY", "Only allow the client with the same key"},
}

var hbbrOptions = []option{
	{'b', "bind", "IP", "Sets the bind address"},
	{'p', "port", "NUMBER(default=21117)", "Sets the listening port"},
	{'k', "key", "KEY", "Only allow the client with the same key"},
}

// optionsFor is the kind's option table in version: before BindVersion there
// is no -b, so clap rejects it like any unknown flag.
func optionsFor(kind Kind, version string) []option {
	opts := hbbsOptions
	if kind == HBBR {
		opts = hbbrOptions
	}
	if atLeast(version, BindVersion) {
		return opts
	}
	var out []option
	for _, o := range opts {
		if o.long != "bind" {
			out = append(out, o)
		}
	}
	return out
}

// Help returns the --help text of the kind's command line.
func Help(kind Kind, version string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", kind, version)
	if kind == HBBR {
		b.WriteString("RustDesk Relay Server\n\n")
	} else {
		b.WriteString("RustDesk ID/Rendezvous Server\n\n")
	}
	fmt.Fprintf(&b, "USAGE:\n    %s [OPTIONS]\n\nFLAGS:\n    -h, --help       Prints help information\n    -V, --version    Prints version information\n\nOPTIONS:\n", kind)
	for _, o := range optionsFor(kind, version) {
		short := "    "
		if o.short != 0 {
			short = "-" + string(o.short) + ", "
		}
		fmt.Fprintf(&b, "    %s--%s=[%s]    %s\n", short, o.long, o.value, o.help)
	}
	return b.String()
}

// Invocation is a parsed command line.
type Invocation struct {
	Kind    Kind
	Options Options
	// ShowVersion and ShowHelp mean: print "<kind> <version>" or Help to
	// stdout and exit 0 without starting.
	ShowVersion bool
	ShowHelp    bool
}

// ParseArgs is ParseArgsVersion for DefaultVersion.
func ParseArgs(kind Kind, args []string, env map[string]string, dir string) (*Invocation, error) {
	return ParseArgsVersion(kind, DefaultVersion, args, env, dir)
}

// ParseArgsVersion parses a server command line (args without the program
// name) the way the given upstream version does and resolves it against env
// (the process environment; it is copied, not modified) and the files in
// dir:
//
//   - hbbs: ".env" in dir, then the --config file, then the flags are each
//     applied as environment variables named like the option, upper-cased
//     with '_' turned into '-' (so -r sets RELAY-SERVERS), later sources
//     overwriting earlier ones; then key = KEY (default "-"), port = PORT
//     (default 21116, at least 3), relays = RELAY-SERVERS, serial = SERIAL,
//     rendezvous servers = RENDEZVOUS-SERVERS, always-use-relay =
//     ALWAYS_USE_RELAY == "Y" (read with the underscore, so on 1.1.16 only
//     the real environment sets it: .env names become dashed). From
//     BindVersion on: -b and bind = BIND, relays also from RELAY_SERVERS,
//     relay-servers or relay_servers, always-use-relay also from .env.
//   - hbbr: ".env" with names taken verbatim (normalised like hbbs's from
//     BindVersion on), then flags; key = -k, else KEY by that exact name
//     (measured: "key=" in hbbr's .env is ignored), else "" (no check);
//     port = -p, else PORT+1 when PORT is set, else 21117.
//
// Errors are always *UsageError (clap's wording; the servers exit 1).
func ParseArgsVersion(kind Kind, version string, args []string, env map[string]string, dir string) (*Invocation, error) {
	head := atLeast(version, BindVersion)
	inv := &Invocation{Kind: kind}
	opts := optionsFor(kind, version)
	flags := map[string]string{} // long name → value
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-h", "--help":
			inv.ShowHelp = true
			continue
		case "-V", "--version":
			inv.ShowVersion = true
			continue
		}
		var o *option
		var val string
		hasVal := false
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 2:
			name := a[2:]
			if k, v, ok := strings.Cut(name, "="); ok {
				name, val, hasVal = k, v, true
			}
			for j := range opts {
				if opts[j].long == name {
					o = &opts[j]
				}
			}
			if o == nil {
				return nil, &UsageError{kind, fmt.Sprintf("Found argument '%s' which wasn't expected, or isn't valid in this context", a)}
			}
		case strings.HasPrefix(a, "-") && len(a) > 1 && a != "-":
			for j := range opts {
				if opts[j].short == a[1] {
					o = &opts[j]
				}
			}
			if o == nil {
				return nil, &UsageError{kind, fmt.Sprintf("Found argument '%s' which wasn't expected, or isn't valid in this context", a)}
			}
			if len(a) > 2 {
				val, hasVal = strings.TrimPrefix(a[2:], "="), true
			}
		default:
			return nil, &UsageError{kind, fmt.Sprintf("Found argument '%s' which wasn't expected, or isn't valid in this context", a)}
		}
		if !hasVal {
			// clap takes the next argument as the value unless it looks
			// like a flag; a lone "-" is a value.
			if i+1 < len(args) && (args[i+1] == "-" || !strings.HasPrefix(args[i+1], "-")) {
				i++
				val = args[i]
			} else {
				return nil, &UsageError{kind, fmt.Sprintf("The argument '--%s <%s>' requires a value but none was supplied", o.long, o.value)}
			}
		}
		if _, dup := flags[o.long]; dup {
			return nil, &UsageError{kind, fmt.Sprintf("The argument '--%s <%s>' was provided more than once, but cannot be used multiple times", o.long, o.value)}
		}
		flags[o.long] = val
	}
	if inv.ShowHelp || inv.ShowVersion {
		return inv, nil
	}

	e := make(map[string]string, len(env))
	for k, v := range env {
		e[k] = v
	}
	applyIni(e, filepath.Join(dir, ".env"), kind == HBBS || head)
	if kind == HBBS {
		if cfg, ok := flags["config"]; ok {
			if !filepath.IsAbs(cfg) {
				cfg = filepath.Join(dir, cfg)
			}
			applyIni(e, cfg, true)
		}
	}
	hbbrPortFlag := false
	for long, v := range flags {
		e[argName(long)] = v
		if long == "port" {
			hbbrPortFlag = true
		}
	}

	o := Options{Dir: dir}
	if head {
		o.Bind = e["BIND"]
	}
	num := func(name, s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, &UsageError{kind, fmt.Sprintf("Invalid value for '%s': %q is not a number", name, s)}
		}
		return n, nil
	}
	if kind == HBBS {
		key := "-"
		if v, ok := e["KEY"]; ok {
			key = v
		}
		o.Key = &key
		o.Port = DefaultRendezvousPort
		if v, ok := e["PORT"]; ok {
			n, err := num("--port", v)
			if err != nil {
				return nil, err
			}
			o.Port = n
		}
		if o.Port < 3 || o.Port > 65533 {
			return nil, &UsageError{kind, fmt.Sprintf("Invalid value for '--port': %d (needs 3..65533 for P-1 and P+2)", o.Port)}
		}
		names := []string{"RELAY-SERVERS"}
		if head {
			names = append(names, "RELAY_SERVERS", "relay-servers", "relay_servers")
		}
		for _, name := range names {
			if v, ok := e[name]; ok {
				o.Relays = splitList(v)
				break
			}
		}
		o.AlwaysUseRelay = e["ALWAYS_USE_RELAY"] == "Y" || head && e["ALWAYS-USE-RELAY"] == "Y"
		o.RendezvousServers = splitList(e["RENDEZVOUS-SERVERS"])
		if v, ok := e["SERIAL"]; ok && v != "" {
			n, err := num("--serial", v)
			if err != nil {
				return nil, err
			}
			o.Serial = int32(n)
		}
	} else {
		key := ""
		if v, ok := e["KEY"]; ok {
			key = v
		}
		o.Key = &key
		o.Port = DefaultRelayPort
		if hbbrPortFlag {
			n, err := num("--port", e["PORT"])
			if err != nil {
				return nil, err
			}
			o.Port = n
		} else if v, ok := e["PORT"]; ok {
			n, err := num("PORT", v)
			if err != nil {
				return nil, err
			}
			o.Port = n + 1
		}
		if o.Port < 1 || o.Port > 65533 {
			return nil, &UsageError{kind, fmt.Sprintf("Invalid value for '--port': %d", o.Port)}
		}
	}
	inv.Options = o
	return inv, nil
}

// argName is upstream's mapping from an option or .env name to the
// environment variable it sets: upper case, '_' → '-'.
func argName(s string) string { return strings.ReplaceAll(strings.ToUpper(s), "_", "-") }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// applyIni reads KEY=VALUE lines (the top section of an INI file; '#' and
// ';' start comments; [sections] end it) into env under argName(KEY), or
// under KEY verbatim when normalise is false (1.1.16's hbbr). A file that
// cannot be read is ignored, as upstream ignores a failed load of both .env
// and the --config file.
func applyIni(env map[string]string, path string, normalise bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		k = strings.TrimSpace(k)
		if normalise {
			k = argName(k)
		}
		env[k] = v
	}
}
