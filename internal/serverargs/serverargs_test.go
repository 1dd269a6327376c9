package serverargs

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// check compares everything Parse returns with want; nil and empty are the
// same.
func check(t *testing.T, argv []string, got, want Args) {
	t.Helper()
	if !maps.Equal(got.Values, want.Values) || len(got.Values) != len(want.Values) {
		t.Errorf("%q: values %q, want %q", argv, got.Values, want.Values)
	}
	if !slices.Equal(got.Unknown, want.Unknown) || !slices.Equal(got.NoValue, want.NoValue) ||
		!slices.Equal(got.Repeated, want.Repeated) || got.Positional != want.Positional {
		t.Errorf("%q: unknown %q, no value %q, repeated %q, %d positional; want %q, %q, %q, %d", argv,
			got.Unknown, got.NoValue, got.Repeated, got.Positional, want.Unknown, want.NoValue, want.Repeated, want.Positional)
	}
	if got.Refused() != (len(want.Unknown)+len(want.NoValue)+len(want.Repeated)+want.Positional > 0) {
		t.Errorf("%q: Refused() = %v", argv, got.Refused())
	}
}

type vals = map[string]string

// TestParse: the spellings clap 2 accepts, and what the readers in adopt
// and compose checked before they became this one.
func TestParse(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want Args
	}{
		{[]string{}, Args{}},
		{[]string{"hbbs"}, Args{}},
		{[]string{"hbbs", "-r", "a:21117", "-k", "_"}, Args{Values: vals{RelayServers: "a:21117", Key: "_"}}},
		{[]string{"hbbs", "-r", "a.example", "-k", "_"}, Args{Values: vals{RelayServers: "a.example", Key: "_"}}},
		{[]string{"hbbs", "-ra.example", "-k_"}, Args{Values: vals{RelayServers: "a.example", Key: "_"}}},
		{[]string{"hbbs", "-r=a.example"}, Args{Values: vals{RelayServers: "a.example"}}},
		{[]string{"/usr/bin/hbbs", "--relay-servers=a", "--key", "_", "-p", "21116"}, Args{Values: vals{RelayServers: "a", Key: "_", Port: "21116"}}},
		{[]string{"hbbs", "--relay-servers", "a.example:1", "--key=-", "--bind=::1"}, Args{Values: vals{RelayServers: "a.example:1", Key: "-", Bind: "::1"}}},
		{[]string{"hbbr", "-k_"}, Args{Values: vals{Key: "_"}}},
		{[]string{"hbbs", "-p", "21116", "-M", "0", "--mask", "10.0.0.0/8", "-r", "x"}, Args{Values: vals{Port: "21116", RMem: "0", Mask: "10.0.0.0/8", RelayServers: "x"}}},
		{[]string{"hbbs", "-c", "/etc/hbbs.toml", "-s", "3", "-R", "a,b", "-u", "https://x", "-bX"}, Args{Values: vals{Config: "/etc/hbbs.toml", Serial: "3", RendezvousServers: "a,b", SoftwareURL: "https://x", Bind: "X"}}},
		// an option at the end with no value sets nothing (clap refuses it)
		{[]string{"hbbs", "-r"}, Args{NoValue: []string{RelayServers}}},
		{[]string{"hbbs", "-k"}, Args{NoValue: []string{Key}}},
		{[]string{"hbbs", "--relay-servers"}, Args{NoValue: []string{RelayServers}}},
		// -V takes no value; an empty value is a value
		{[]string{"hbbs", "-V", "-k", ""}, Args{Values: vals{Key: ""}}},
		{[]string{"hbbs", "-k="}, Args{Values: vals{Key: ""}}},
		{[]string{"hbbs", "--key="}, Args{Values: vals{Key: ""}}},
		{[]string{"hbbs", "-r", ""}, Args{Values: vals{RelayServers: ""}}},
		// the last occurrence wins; clap itself refuses the repeat
		{[]string{"hbbs", "--unknown", "-r", "b", "-r", "c"}, Args{Values: vals{RelayServers: "c"}, Unknown: []string{"--unknown"}, Repeated: []string{RelayServers}}},
		{[]string{"hbbs", "-r", "a", "--relay-servers=b", "-rc"}, Args{Values: vals{RelayServers: "c"}, Repeated: []string{RelayServers}}},
	} {
		got := Parse(tc.argv)
		if tc.want.Values == nil {
			tc.want.Values = vals{}
		}
		check(t, tc.argv, got, tc.want)
	}
}

// TestParseClapRules: where both earlier readers departed from clap 2, the
// answer is clap's.
func TestParseClapRules(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want Args
		why  string
	}{
		{[]string{"hbbs", "-r", "-k", "_"}, Args{Values: vals{Key: "_"}, NoValue: []string{RelayServers}},
			"both read relay \"-k\": a word starting with '-' starts a new argument, never a value"},
		{[]string{"hbbs", "-r", "--"}, Args{NoValue: []string{RelayServers}},
			"both read relay \"--\": \"--\" ends the options even after one that waits for a value"},
		{[]string{"hbbs", "-k", "--", "x"}, Args{NoValue: []string{Key}, Positional: 1},
			"both read key \"--\""},
		{[]string{"hbbs", "-k", "-"}, Args{Values: vals{Key: "-"}},
			"\"-\" alone is a value (hbbs's default key setting)"},
		{[]string{"hbbs", "-r==x"}, Args{Values: vals{RelayServers: "x"}},
			"both read \"=x\": clap trims every leading '=' of an attached value"},
		{[]string{"hbbs", "--relay-servers==x"}, Args{Values: vals{RelayServers: "x"}},
			"likewise for the long form"},
		{[]string{"hbbs", "-r", "=x"}, Args{Values: vals{RelayServers: "=x"}},
			"a value in its own word is kept whole"},
		{[]string{"hbbs", "-Vrx"}, Args{Values: vals{RelayServers: "x"}},
			"both read nothing: short flags cluster, and -V takes no value"},
		{[]string{"hbbs", "-hk_"}, Args{Values: vals{Key: "_"}}, "likewise with -h"},
		{[]string{"hbbs", "---relay-servers", "x"}, Args{Values: vals{RelayServers: "x"}},
			"both read nothing: clap trims every leading '-' of a long option"},
		{[]string{"hbbs", "-h", "-r", "x"}, Args{Values: vals{RelayServers: "x"}},
			"-h takes no value"},
		{[]string{"hbbs", "--help", "x", "--version", "-r", "y"}, Args{Values: vals{RelayServers: "y"}, Positional: 1},
			"--help and --version take no value: x is a stray word"},
		{[]string{"hbbs", "-x", "-r", "b", "-zk_"}, Args{Values: vals{RelayServers: "b"}, Unknown: []string{"-x", "-z"}},
			"an unknown short letter ends its word, as clap stops there"},
		{[]string{"hbbs", "-=", "-k=", "--=x"}, Args{Values: vals{Key: ""}, Unknown: []string{"-=", "--"}},
			"clap names the letter it does not know, even '=' (found by FuzzParse); --=x is a long option with no name"},
		{[]string{"hbbs", "--kye=SECRET", "-", "x"}, Args{Unknown: []string{"--kye"}, Positional: 2},
			"Unknown never carries a value; \"-\" alone is a stray word"},
	} {
		got := Parse(tc.argv)
		if tc.want.Values == nil {
			tc.want.Values = vals{}
		}
		t.Run(strings.Join(tc.argv[1:], " "), func(t *testing.T) {
			check(t, tc.argv, got, tc.want)
			if t.Failed() {
				t.Log(tc.why)
			}
		})
	}
}

// TestParseWhereOldReadersDisagreed lists every case found where
// internal/adopt's and internal/compose's readers, now replaced by Parse,
// gave different answers, with the answer chosen and why.
func TestParseWhereOldReadersDisagreed(t *testing.T) {
	for _, tc := range []struct {
		argv             []string
		adopt, compose   string // what each old reader found
		relay, key       string
		relaySet, keySet bool
		why              string
	}{
		{argv: []string{"hbbs", "--", "-r", "x"}, adopt: "relay x", compose: "no relay",
			why: "clap 2 takes every word after \"--\" as positional: hbbs has no relay (and refuses the stray words)"},
		{argv: []string{"hbbs", "--mask", "-r", "x"}, adopt: "no relay (--mask took \"-r\")", compose: "relay x (--mask unknown)",
			relay: "x", relaySet: true,
			why: "--mask is an hbbs option, but \"-r\" starts a new argument, so --mask has no value and -r x is the relay"},
		{argv: []string{"hbbs", "--mask", "-k", "_"}, adopt: "no key (--mask took \"-k\")", compose: "key _",
			key: "_", keySet: true, why: "likewise for -k"},
	} {
		a := Parse(tc.argv)
		relay, relaySet := a.Relay()
		key, keySet := a.Key()
		if relay != tc.relay || relaySet != tc.relaySet || key != tc.key || keySet != tc.keySet {
			t.Errorf("%q: relay %q (%v), key %q (%v); want %q (%v), %q (%v): %s (adopt found %s, compose %s)",
				tc.argv, relay, relaySet, key, keySet, tc.relay, tc.relaySet, tc.key, tc.keySet, tc.why, tc.adopt, tc.compose)
		}
	}
	// the rest of what Parse says about them
	check(t, nil, Parse([]string{"hbbs", "--", "-r", "x"}), Args{Values: vals{}, Positional: 2})
	check(t, nil, Parse([]string{"hbbs", "--mask", "-r", "x"}), Args{Values: vals{RelayServers: "x"}, NoValue: []string{Mask}})
}

func TestAccessors(t *testing.T) {
	a := Parse([]string{"hbbs", "-r", "r", "-k", "k", "-b", "b", "-p", "1", "-c", "c"})
	for _, tc := range []struct {
		get  func() (string, bool)
		want string
	}{{a.Relay, "r"}, {a.Key, "k"}, {a.Bind, "b"}, {a.Port, "1"}, {a.Config, "c"}} {
		if v, ok := tc.get(); v != tc.want || !ok {
			t.Errorf("got %q %v, want %q", v, ok, tc.want)
		}
	}
	b := Parse([]string{"hbbs"})
	for _, get := range []func() (string, bool){b.Relay, b.Key, b.Bind, b.Port, b.Config} {
		if v, ok := get(); v != "" || ok {
			t.Errorf("unset: got %q %v", v, ok)
		}
	}
}

// render writes values as a command line: --name=value, in name order, or
// "--name value" for a value starting with '=' (clap would trim it from
// --name==value).
func render(values map[string]string) []string {
	names := slices.Collect(maps.Keys(values))
	sort.Strings(names)
	argv := []string{"hbbs"}
	for _, n := range names {
		if v := values[n]; strings.HasPrefix(v, "=") {
			argv = append(argv, "--"+n, v)
		} else {
			argv = append(argv, "--"+n+"="+v)
		}
	}
	return argv
}

// newArg is clap's test for a word that cannot be an option's value.
func newArg(w string) bool { return strings.HasPrefix(w, "-") && w != "-" }

// FuzzParse: never panics; only known options get values and Unknown
// carries no value; the values rendered as --name=value read back the
// same, with nothing refused; an option is found however it is spelled;
// -k VALUE alone is read unless VALUE starts a new argument.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"-r rd.example.com:21117 -k _", "--relay-servers=a -k", "-kX --", "-r a -k _", "--key=- -ra", "-k",
		"-- -k x", "-", "--mask -r x", "-Vrx -hk_", "---relay-servers ==x", "--kye=1 -x  -r", "-r=",
	} {
		f.Add(s, "relay.example.net")
	}
	f.Add("", "-")
	f.Add("-r", "-x")
	f.Add("-k", "=v")
	f.Fuzz(func(t *testing.T, line, val string) {
		argv := append([]string{"hbbs"}, strings.Split(line, " ")...)
		a := Parse(argv)
		for n := range a.Values {
			if !valued[n] {
				t.Fatalf("%q: value for unknown option %q", argv, n)
			}
		}
		for _, u := range a.Unknown {
			// "-" and one letter, or "--" and a name without "=value"
			long, isLong := strings.CutPrefix(u, "--")
			if isLong && strings.Contains(long, "=") || !isLong && (!strings.HasPrefix(u, "-") || utf8.RuneCountInString(u) != 2) {
				t.Fatalf("%q: unknown %q", argv, u)
			}
		}
		again := render(a.Values)
		b := Parse(again)
		if !maps.Equal(a.Values, b.Values) || b.Refused() {
			t.Fatalf("%q: values %q rendered as %q read back as %+v", argv, a.Values, again, b)
		}

		k := Parse([]string{"hbbs", "-k", val})
		if key, set := k.Key(); newArg(val) {
			// -k has no value; VALUE is read as an option of its own
			// (-k -k0 is key 0 and clap refuses the repeat)
			if set && key == val || len(k.NoValue) == 0 || k.NoValue[0] != Key {
				t.Fatalf("-k %q read as %+v", val, k)
			}
		} else if !set || key != val {
			t.Fatalf("-k %q read as %+v", val, k)
		}

		if val == "" || newArg(val) || strings.HasPrefix(val, "=") {
			return // not every spelling can carry these
		}
		for _, form := range [][]string{{"-r", val}, {"-r" + val}, {"-r=" + val}, {"--relay-servers", val}, {"--relay-servers=" + val}} {
			full := append(append([]string{"hbbs"}, form...), "-k", "_")
			if got, _ := Parse(full).Relay(); got != val {
				t.Fatalf("%q: relay %q, want %q", full, got, val)
			}
		}
	})
}
