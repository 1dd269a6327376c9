package deploy

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func validRecord() *Record {
	return &Record{Format: 1, Backend: BackendSystemd, IDHost: "rd.example.com", Relay: "rd.example.com:21117",
		API: "https://api.example.com", Bind: "0.0.0.0", WorkingDir: DefaultWorkingDir, BinDir: DefaultBinDir,
		ServiceUser: "rustdesk", HBBSUnit: "hbbs.service", HBBRUnit: "hbbr.service", HBBSVersion: "1.1.16",
		Origin: OriginRdctl}
}

func validComposeRecord() *Record {
	r := validRecord()
	r.Backend, r.Origin = BackendCompose, OriginCompose
	r.Compose = &ComposeRecord{Dir: "/srv/rustdesk", Image: "rustdesk/rustdesk-server:1.1.16", Network: NetworkHost,
		Project: "rustdesk-server", MountTarget: "/root"}
	return r
}

func TestRecordValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Record)
	}{
		{"systemd", func(*Record) {}},
		{"compose", func(r *Record) { *r = *validComposeRecord() }},
		{"template units", func(r *Record) { r.HBBSUnit, r.HBBRUnit = "rustdesk-hbbs@main.service", "rustdesk_hbbr:x.service" }},
		{"debian", func(r *Record) {
			r.Origin, r.HBBSUnit, r.WorkingDir = OriginDebian, "rustdesk-hbbs.service", "/var/lib/rustdesk-server"
		}},
		{"installer script", func(r *Record) { r.Origin, r.WorkingDir = OriginInstallerScript, "/opt/rustdesk" }},
		{"custom", func(r *Record) { r.Origin = OriginCustom }},
		{"optional fields empty", func(r *Record) {
			r.Relay, r.API, r.Bind, r.BinDir, r.ServiceUser, r.HBBSUnit, r.HBBRUnit, r.HBBSVersion = "", "", "", "", "", "", "", ""
		}},
		{"version with revision", func(r *Record) { r.HBBSVersion = "1.1.10-3" }},
		{"api with path and port", func(r *Record) { r.API = "http://[2001:db8::1]:21114/api" }},
		{"directory named like a system one", func(r *Record) { r.WorkingDir = "/srv/proc/sys" }},
		{"prefix of a system directory", func(r *Record) { r.WorkingDir = "/devices" }},
		{"image digest", func(r *Record) {
			*r = *validComposeRecord()
			r.Compose.Image = "rustdesk/rustdesk-server@sha256:" + strings.Repeat("0f", 32)
		}},
		{"several relays", func(r *Record) { r.Relay = "a.example.com:21117,[2001:db8::2]:21117,192.0.2.7:443" }},
		{"eight long relays", func(r *Record) {
			var l []string
			for i := range MaxRelays {
				l = append(l, fmt.Sprintf("relay-%d.%s.example.com:21117", i, strings.Repeat("a", 40)))
			}
			r.Relay = strings.Join(l, ",")
		}},
		{"long one-case path", func(r *Record) { r.WorkingDir = "/srv/" + strings.Repeat("rustdesk-server-", 4) + "/data" }},
	}
	for _, tt := range tests {
		r := validRecord()
		tt.edit(r)
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestRecordValidateRejects(t *testing.T) {
	key := "j2FI0nKkrBFJY7UKDQJYhAOTCfAOBUyiby169temW3Q="
	tests := []struct {
		field string
		edit  func(*Record)
	}{
		{"backend", func(r *Record) { r.Backend = "docker" }},
		{"origin", func(r *Record) { r.Origin = "" }},
		{"origin", func(r *Record) { r.Origin = "\x1b[2Jpwned" }},
		{"origin", func(r *Record) { r.Origin = "Rdctl" }},
		{"id_host", func(r *Record) { r.IDHost = "" }},
		{"id_host", func(r *Record) {
			r.IDHost = strings.TrimSuffix(strings.NewReplacer("+", "a", "/", "b").Replace(key), "=")
		}},
		{"relay", func(r *Record) { r.Relay = "rd;x" }},
		{"relay", func(r *Record) { r.Relay = "a.example.com,,b.example.com" }},
		{"relay", func(r *Record) { r.Relay = "a.example.com," }},
		{"relay", func(r *Record) { r.Relay = "a.example.com,a.example.com:21117" }},
		{"relay", func(r *Record) { r.Relay = "a.example.com, b.example.com" }},
		{"relay", func(r *Record) { r.Relay = strings.Repeat("a.example.com:1,", MaxRelays) + "a.example.com:2" }},
		{"api", func(r *Record) { r.API = "ftp://api.example.com" }},
		{"api", func(r *Record) { r.API = "https://user:pw@api.example.com" }},
		{"api", func(r *Record) { r.API = "https://api.example.com/?x=1" }},
		{"api", func(r *Record) { r.API = "https://a b" }},
		{"bind", func(r *Record) { r.Bind = "rd.example.com" }},
		{"working_dir", func(r *Record) { r.WorkingDir = "/" }},
		{"working_dir", func(r *Record) { r.WorkingDir = "" }},
		{"working_dir", func(r *Record) { r.WorkingDir = "var/lib/rustdesk" }},
		{"working_dir", func(r *Record) { r.WorkingDir = "/var/lib/../../etc" }},
		{"working_dir", func(r *Record) { r.WorkingDir = "/proc/self/cwd" }},
		{"working_dir", func(r *Record) { r.WorkingDir = "/sys" }},
		{"working_dir", func(r *Record) { r.WorkingDir = "/dev/shm" }},
		{"working_dir", func(r *Record) { r.WorkingDir = "/var/lib/" + strings.Repeat("x", 200) }},
		{"bin_dir", func(r *Record) { r.BinDir = "/" }},
		{"service_user", func(r *Record) { r.ServiceUser = "Root" }},
		{"hbbs_unit", func(r *Record) { r.HBBSUnit = "../../../../tmp/x.service" }},
		{"hbbs_unit", func(r *Record) { r.HBBSUnit = "/etc/systemd/system/hbbs.service" }},
		{"hbbs_unit", func(r *Record) { r.HBBSUnit = "hbbs.socket" }},
		{"hbbs_unit", func(r *Record) { r.HBBSUnit = "hbbs" }},
		{"hbbs_unit", func(r *Record) { r.HBBSUnit = ".service" }},
		{"hbbs_unit", func(r *Record) { r.HBBSUnit = "-hbbs.service" }},
		{"hbbr_unit", func(r *Record) { r.HBBRUnit = "hbbr .service" }},
		{"hbbr_unit", func(r *Record) { r.HBBRUnit = "hbbr\n.service" }},
		{"hbbs_version", func(r *Record) { r.HBBSVersion = "1.1.16; rm -rf /" }},
		{"hbbs_version", func(r *Record) { r.HBBSVersion = "latest" }},
		{"hbbs_version", func(r *Record) { r.HBBSVersion = "1.1.16\u202e" }},
		{"compose.dir", func(r *Record) { *r = *validComposeRecord(); r.Compose.Dir = "/" }},
		{"compose.image", func(r *Record) { *r = *validComposeRecord(); r.Compose.Image = "Rust Desk" }},
		{"compose.network", func(r *Record) { *r = *validComposeRecord(); r.Compose.Network = "macvlan" }},
		{"compose.project", func(r *Record) { *r = *validComposeRecord(); r.Compose.Project = "-x" }},
		{"compose.project", func(r *Record) { *r = *validComposeRecord(); r.Compose.Project = "" }},
		{"compose.mount_target", func(r *Record) { *r = *validComposeRecord(); r.Compose.MountTarget = "root" }},
		{"compose.mount_target", func(r *Record) { *r = *validComposeRecord(); r.Compose.MountTarget = "/" }},
		{"compose.project", func(r *Record) { *r = *validComposeRecord(); r.Compose.Project = strings.Repeat("0f", 32) }},
		{"compose.image", func(r *Record) { *r = *validComposeRecord(); r.Compose.Image = strings.Repeat("0f", 20) + ":1" }},
		{"working_dir", func(r *Record) {
			r.WorkingDir = "/srv/" + strings.TrimSuffix(strings.NewReplacer("+", "-", "/", "_").Replace(key), "=")
		}},
		{"compose.dir", func(r *Record) { *r = *validComposeRecord(); r.Compose.Dir = "/" + key[:40] }},
	}
	for _, tt := range tests {
		r := validRecord()
		tt.edit(r)
		err := r.Validate()
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: %+v: got %v, want an *InputError", tt.field, r, err)
			continue
		}
		if ie.Field != tt.field {
			t.Errorf("%s: error names %s (%v)", tt.field, ie.Field, err)
		}
		if msg := err.Error(); strings.ContainsAny(msg, "\x1b\n\u202e") {
			t.Errorf("%s: message %q carries the value's control characters", tt.field, msg)
		}
	}
}

// A key is no value of any field, and a rejected value that could be key
// material is withheld from the message, whichever field it is in. Values
// that merely could be part of a key ("/"+key is a valid path, 20
// characters of it a valid host name) may be accepted; when they are not,
// their message withholds them too.
func TestRecordErrorWithholdsKeys(t *testing.T) {
	const key = "j2FI0nKkrBFJY7UKDQJYhAOTCfAOBUyiby169temW3Q="
	mustReject := map[string]bool{key: true, key[:43]: true, key + "\n": true, "https://" + key: true, key[:20] + "_": true}
	for _, v := range []string{key, key[:43], key + "\n", "https://" + key, key[:20] + "_", "/" + key, key[:20], strings.Repeat("ab12", 10)} {
		for _, f := range validRecord().textFields() {
			r := validRecord()
			reflect.ValueOf(r).Elem().FieldByNameFunc(func(n string) bool {
				sf, _ := reflect.TypeOf(*r).FieldByName(n)
				return strings.Split(sf.Tag.Get("toml"), ",")[0] == f.field
			}).SetString(v)
			err := r.Validate()
			if err == nil {
				if mustReject[v] {
					t.Errorf("%s = %q accepted", f.field, v)
				}
				continue
			}
			if msg := err.Error(); strings.Contains(msg, v[:16]) || !strings.Contains(msg, "withheld") {
				t.Errorf("%s = %q: message %q", f.field, v, msg)
			}
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []*Record{validRecord(), validComposeRecord()} {
		data, err := r.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("format = 1\nbackend = 'systemd'\nhbbs_unit = '../../x.service'\n"))
	f.Add([]byte("format = 1\nbackend = 'compose'\n[compose]\ndir = '/'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeRecord(data)
		if err != nil {
			return
		}
		out, err := r.Encode()
		if err != nil {
			t.Fatalf("accepted %+v does not encode: %v", r, err)
		}
		back, err := DecodeRecord(out)
		if err != nil {
			t.Fatalf("accepted %+v encodes to %q, which is refused: %v", r, out, err)
		}
		if !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip: %+v != %+v", back, r)
		}
		for _, f := range r.textFields() {
			if len(f.value) > 4*MaxTextLen || strings.ContainsAny(f.value, "\x00\n\r\x1b") {
				t.Fatalf("%s = %q accepted", f.field, f.value)
			}
		}
	})
}

// A record written when one relay was all rdctl knew reads the same; a
// record with several keeps the list as hbbs's -r takes it.
func TestRecordRelayList(t *testing.T) {
	old := `format = 1
backend = 'systemd'
id_host = 'rd.example.com'
relay = 'rd.example.com:21117'
tailnet_only = false
working_dir = '/var/lib/rustdesk'
hbbr_enforces_key = true
origin = 'rdctl'
`
	r, err := DecodeRecord([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.RelayList(); len(got) != 1 || got[0].String() != "rd.example.com:21117" {
		t.Errorf("one relay: %v", got)
	}
	r.Relay = JoinRelays([]HostPort{{Host: "a.example.com", Port: 21117}, {Host: "2001:db8::2", Port: 21117}})
	data, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.RelayList(); len(got) != 2 || got[1].String() != "[2001:db8::2]:21117" || back.Relay != "a.example.com:21117,[2001:db8::2]:21117" {
		t.Errorf("two relays: %v (%q)", got, back.Relay)
	}
}

func TestParseRelays(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want string
	}{
		{[]string{"a.example.com"}, "a.example.com:21117"},
		{[]string{"a.example.com,b.example.com:443"}, "a.example.com:21117,b.example.com:443"},
		{[]string{"a.example.com", "b.example.com"}, "a.example.com:21117,b.example.com:21117"},
		{[]string{"[::1]:5,127.0.0.1"}, "[::1]:5,127.0.0.1:21117"},
		{[]string{"a.example.com", ""}, ""},
		{[]string{}, ""},
		{[]string{"a.example.com,a.example.com:21117"}, ""},
		{[]string{"a.example.com;b"}, ""},
	} {
		hps, err := ParseRelays("--relay", c.in...)
		if got := JoinRelays(hps); got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("%q: %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func FuzzParseRelays(f *testing.F) {
	for _, s := range []string{"a.example.com", "a,b", "[::1]:1,x", ",", "a.example.com:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hps, err := ParseRelays("relay", s)
		if err != nil {
			return
		}
		if len(hps) == 0 || len(hps) > MaxRelays {
			t.Fatalf("%q: %d relays", s, len(hps))
		}
		// What was accepted reads back the same.
		again, err := ParseRelays("relay", JoinRelays(hps))
		if err != nil || JoinRelays(again) != JoinRelays(hps) {
			t.Fatalf("%q: %q does not read back: %v", s, JoinRelays(hps), err)
		}
	})
}

// KeepFrom carries the [proxy] table over to a re-install of the same
// deployment only, and never replaces one the new record has.
func TestRecordKeepFrom(t *testing.T) {
	proxy := &ProxyRecord{Kind: ProxyCaddy, Domain: "rd.example.com", TLS: "automatic", Config: "/etc/caddy/rdctl/rustdesk-rd.example.com.caddy"}
	base := func() *Record {
		return &Record{Format: 1, Backend: BackendSystemd, WorkingDir: "/var/lib/rustdesk"}
	}
	old := base()
	old.Proxy = proxy
	r := base()
	r.KeepFrom(old)
	if r.Proxy == nil || *r.Proxy != *proxy || r.Proxy == proxy {
		t.Errorf("same deployment: proxy %+v (a copy of %+v wanted)", r.Proxy, proxy)
	}
	for name, other := range map[string]*Record{
		"another backend":     {Format: 1, Backend: BackendCompose, WorkingDir: "/var/lib/rustdesk", Proxy: proxy},
		"another working dir": {Format: 1, Backend: BackendSystemd, WorkingDir: "/srv/rustdesk", Proxy: proxy},
		"none":                nil,
	} {
		r := base()
		r.KeepFrom(other)
		if r.Proxy != nil {
			t.Errorf("%s: proxy %+v carried over", name, r.Proxy)
		}
	}
	own := &ProxyRecord{Kind: ProxyNginx, Domain: "new.example.com"}
	r = base()
	r.Proxy = own
	r.KeepFrom(old)
	if r.Proxy != own {
		t.Errorf("the new record's own proxy was replaced: %+v", r.Proxy)
	}
}
