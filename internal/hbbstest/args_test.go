package hbbstest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseArgsKeyForms(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "-"},
		{[]string{"-k", "_"}, nil, "_"},
		{[]string{"-k", "-"}, nil, "-"},
		{[]string{"-kabc"}, nil, "abc"},
		{[]string{"-k=abc"}, nil, "abc"},
		{[]string{"--key=abc"}, nil, "abc"},
		{[]string{"--key", "abc"}, nil, "abc"},
		{[]string{"--key="}, nil, ""},
		{nil, map[string]string{"KEY": "fromenv"}, "fromenv"},
		{nil, map[string]string{"KEY": ""}, ""},
		{[]string{"-k", "flag"}, map[string]string{"KEY": "fromenv"}, "flag"},
	}
	for _, c := range cases {
		inv, err := ParseArgs(HBBS, c.args, c.env, t.TempDir())
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if *inv.Options.Key != c.want {
			t.Errorf("hbbs %q env %v: key %q, want %q", c.args, c.env, *inv.Options.Key, c.want)
		}
	}
	inv, err := ParseArgs(HBBR, nil, nil, t.TempDir())
	if err != nil || *inv.Options.Key != "" || inv.Options.Port != 21117 {
		t.Fatalf("hbbr defaults: %+v %v", inv, err)
	}
	inv, err = ParseArgs(HBBR, nil, map[string]string{"KEY": "k", "PORT": "30000"}, t.TempDir())
	if err != nil || *inv.Options.Key != "k" || inv.Options.Port != 30001 {
		t.Fatalf("hbbr env: key %q port %d %v", *inv.Options.Key, inv.Options.Port, err)
	}
	inv, err = ParseArgs(HBBR, []string{"-p", "40000"}, map[string]string{"PORT": "30000"}, t.TempDir())
	if err != nil || inv.Options.Port != 40000 {
		t.Fatalf("hbbr -p beats PORT: %d %v", inv.Options.Port, err)
	}
}

func TestParseArgsHBBS(t *testing.T) {
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("# comment\nrelay_servers=envrelay:21117\nkey = fromdotenv\n"), 0o600))
	inv, err := ParseArgsVersion(HBBS, BindVersion, []string{"-p", "31116", "-b", "127.0.0.3", "-s", "7", "-R", "a,b", "--mask", "10.0.0.0/8", "-M", "0"}, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	o := inv.Options
	if o.Port != 31116 || o.Bind != "127.0.0.3" || o.Serial != 7 || !reflect.DeepEqual(o.RendezvousServers, []string{"a", "b"}) ||
		!reflect.DeepEqual(o.Relays, []string{"envrelay:21117"}) || *o.Key != "fromdotenv" || o.Dir != dir {
		t.Fatalf("%+v key %q", o, *o.Key)
	}
	inv, err = ParseArgs(HBBS, []string{"-r", "r1,r2:1"}, map[string]string{"RELAY_SERVERS": "ignored"}, dir)
	if err != nil || !reflect.DeepEqual(inv.Options.Relays, []string{"r1", "r2:1"}) {
		t.Fatalf("-r beats .env: %v %v", inv.Options.Relays, err)
	}
	// --config file, overridden by flags.
	noErr(t, os.WriteFile(filepath.Join(dir, "cfg.ini"), []byte("port=32000\nkey=cfgkey\n[other]\nkey=ignored\n"), 0o600))
	inv, err = ParseArgs(HBBS, []string{"-c", "cfg.ini", "-k", "_"}, nil, dir)
	if err != nil || inv.Options.Port != 32000 || *inv.Options.Key != "_" {
		t.Fatalf("config: %+v %v", inv, err)
	}
	if inv, err := ParseArgs(HBBS, []string{"-c", "missing.ini"}, nil, dir); err != nil || inv.Options.Port != 21116 {
		t.Fatalf("a missing --config is ignored: %v", err)
	}
}

func TestParseArgsErrors(t *testing.T) {
	cases := map[string][]string{
		"Found argument '-g' which wasn't expected":                         {"-g"},
		"Found argument '--foo' which wasn't expected":                      {"--foo"},
		"Found argument 'extra' which wasn't expected":                      {"extra"},
		"The argument '--key <KEY>' requires a value but none was supplied": {"-k"},
		"requires a value": {"-k", "-r"},
		"The argument '--port <NUMBER(default=21116)>' was provided more than once": {"-p", "1", "-p", "2"},
		"Invalid value for '--port'": {"-p", "abc"},
		"needs 3..65533":             {"-p", "2"},
	}
	for want, args := range cases {
		_, err := ParseArgs(HBBS, args, nil, t.TempDir())
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", args, err, want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "error: ") || !strings.Contains(err.Error(), "USAGE:\n    hbbs [OPTIONS]") {
			t.Errorf("%q: not clap-shaped: %q", args, err.Error())
		}
	}
	// hbbr has no -r or -c.
	for _, a := range []string{"-r", "-c"} {
		if _, err := ParseArgs(HBBR, []string{a, "x"}, nil, t.TempDir()); err == nil {
			t.Errorf("hbbr accepted %s", a)
		}
	}
	inv, err := ParseArgs(HBBR, []string{"-V"}, nil, "")
	if err != nil || !inv.ShowVersion {
		t.Fatal(err)
	}
	if !strings.Contains(Help(HBBS, "1.1.17"), "-k, --key=[KEY]") {
		t.Fatal(Help(HBBS, "1.1.17"))
	}
}

// FuzzParseArgs: any argument list parses or fails with *UsageError, never
// panics, and an accepted hbbs port always leaves room for P-1 and P+2.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"-k _", "--key=abc -p 21116", "-r a,b -s 3", "-g", "-k", "--port", "-p 2", "-V", "--key= -b ::1", "x y z", "-kk -k", "--=x", "- -"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, line string, hbbr bool) {
		kind := HBBS
		if hbbr {
			kind = HBBR
		}
		inv, err := ParseArgs(kind, strings.Split(line, " "), map[string]string{}, dir)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("%q: %T %v", line, err, err)
			}
			return
		}
		if inv.ShowHelp || inv.ShowVersion {
			return
		}
		o := inv.Options
		if o.Key == nil {
			t.Fatal("resolved options must carry a key")
		}
		if kind == HBBS && (o.Port < 3 || o.Port > 65533) || o.Port < 1 || o.Port > 65533 {
			t.Fatalf("%q: port %d", line, o.Port)
		}
	})
}

// TestParseArgsVersions pins what differs between 1.1.16 (the default) and
// 1.1.17: -b, BIND, the lenient relay-server names and hbbr's .env names.
func TestParseArgsVersions(t *testing.T) {
	cases := []struct {
		name    string
		kind    Kind
		version string
		args    []string
		env     map[string]string
		dotenv  string
		wantErr string // substring of the *UsageError; "" = accepted
		check   func(o Options) bool
	}{
		{"1.1.16 hbbs -b exits 1", HBBS, "1.1.16", []string{"-b", "127.0.0.1"}, nil, "", "Found argument '-b' which wasn't expected", nil},
		{"1.1.16 hbbs --bind exits 1", HBBS, "1.1.16", []string{"--bind=::1"}, nil, "", "Found argument '--bind=::1' which wasn't expected", nil},
		{"1.1.16 hbbr -b exits 1", HBBR, "1.1.16", []string{"-b", "127.0.0.1"}, nil, "", "Found argument '-b' which wasn't expected", nil},
		{"1.1.17 hbbs -b", HBBS, "1.1.17", []string{"-b", "127.0.0.1"}, nil, "", "", func(o Options) bool { return o.Bind == "127.0.0.1" }},
		{"1.1.18 hbbr --bind", HBBR, "1.1.18", []string{"--bind", "::1"}, nil, "", "", func(o Options) bool { return o.Bind == "::1" }},
		{"1.1.16 ignores BIND", HBBS, "1.1.16", nil, map[string]string{"BIND": "127.0.0.9"}, "", "", func(o Options) bool { return o.Bind == "" }},
		{"1.1.17 reads BIND", HBBS, "1.1.17", nil, map[string]string{"BIND": "127.0.0.9"}, "", "", func(o Options) bool { return o.Bind == "127.0.0.9" }},
		{"1.1.16 ignores env RELAY_SERVERS", HBBS, "1.1.16", nil, map[string]string{"RELAY_SERVERS": "r"}, "", "", func(o Options) bool { return o.Relays == nil }},
		{"1.1.17 reads env RELAY_SERVERS", HBBS, "1.1.17", nil, map[string]string{"RELAY_SERVERS": "r"}, "", "", func(o Options) bool { return reflect.DeepEqual(o.Relays, []string{"r"}) }},
		{"1.1.16 hbbr ignores key= in .env", HBBR, "1.1.16", nil, nil, "key=abc\n", "", func(o Options) bool { return *o.Key == "" }},
		{"1.1.16 hbbr reads KEY= in .env", HBBR, "1.1.16", nil, nil, "KEY=abc\n", "", func(o Options) bool { return *o.Key == "abc" }},
		{"1.1.17 hbbr normalises key= in .env", HBBR, "1.1.17", nil, nil, "key=abc\n", "", func(o Options) bool { return *o.Key == "abc" }},
		{"a lower-case key env is ignored", HBBR, "1.1.16", nil, map[string]string{"key": "abc"}, "", "", func(o Options) bool { return *o.Key == "" }},
		{"1.1.16 ALWAYS_USE_RELAY from the environment", HBBS, "1.1.16", nil, map[string]string{"ALWAYS_USE_RELAY": "Y"}, "", "", func(o Options) bool { return o.AlwaysUseRelay }},
		{"1.1.16 ALWAYS_USE_RELAY in .env does nothing", HBBS, "1.1.16", nil, nil, "ALWAYS_USE_RELAY=Y\n", "", func(o Options) bool { return !o.AlwaysUseRelay }},
		{"1.1.17 ALWAYS_USE_RELAY in .env", HBBS, "1.1.17", nil, nil, "ALWAYS_USE_RELAY=Y\n", "", func(o Options) bool { return o.AlwaysUseRelay }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.dotenv != "" {
				noErr(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(c.dotenv), 0o600))
			}
			inv, err := ParseArgsVersion(c.kind, c.version, c.args, c.env, dir)
			if c.wantErr != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("%v, want a usage error with %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(inv.Options) {
				t.Fatalf("%+v (key %q)", inv.Options, *inv.Options.Key)
			}
		})
	}
	if strings.Contains(Help(HBBS, "1.1.16"), "--bind") || !strings.Contains(Help(HBBS, "1.1.17"), "-b, --bind=[IP]") {
		t.Fatal("--help must list -b from 1.1.17 on only")
	}
	if DefaultVersion != "1.1.16" {
		t.Fatalf("default version %s", DefaultVersion)
	}
}

func TestAtLeast(t *testing.T) {
	cases := []struct {
		v, min string
		want   bool
	}{
		{"1.1.16", "1.1.17", false},
		{"1.1.17", "1.1.17", true},
		{"1.1.18", "1.1.17", true},
		{"1.2", "1.1.17", true},
		{"1.1.10-3", "1.1.17", false},
		{"1.1.17-1", "1.1.17", true},
		{"2", "1.1.17", true},
		{"1.1", "1.1.17", false},
		{"dev", "1.1.17", true},
	}
	for _, c := range cases {
		if got := atLeast(c.v, c.min); got != c.want {
			t.Errorf("atLeast(%q, %q) = %v", c.v, c.min, got)
		}
	}
}
