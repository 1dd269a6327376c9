package deploy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseHostPortAccepts(t *testing.T) {
	for in, want := range map[string]string{
		"rd.example.com":        "rd.example.com",
		"rd.example.com.":       "rd.example.com",
		"RD.Example.com:21117":  "RD.Example.com:21117",
		"192.0.2.1":             "192.0.2.1",
		"192.0.2.1:21116":       "192.0.2.1:21116",
		"[2001:db8::1]:21117":   "[2001:db8::1]:21117",
		"[2001:db8::1]":         "2001:db8::1",
		"2001:db8::1":           "2001:db8::1",
		"localhost":             "localhost",
		"rd-server":             "rd-server",
		"xn--rd-fka.example":    "xn--rd-fka.example",
		"a.b.c.d.e.f.g.example": "a.b.c.d.e.f.g.example",
	} {
		hp, err := ParseHostPort("--relay", in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if hp.String() != want {
			t.Errorf("%q -> %q, want %q", in, hp.String(), want)
		}
	}
}

func TestParseHostPortRejects(t *testing.T) {
	bad := []string{"", " rd", "rd.example.com ", "rd\nexample", "rd\texample", "rd;rm", "rd'x", `rd"x`, "rd`x`",
		"$HOST", "rd#1", "rd\\x", "{a}", "[a]", "a,b", "&a", "*a", "!a", "|a", ">a", "%a", "@a", "a?b", "a<b", "a=b", "~a",
		"-rd", "rd-", "rd..com", ".rd", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "com",
		"rd:0", "rd:65536", "rd:-1", "rd:080", "rd:x", "rd:", "1.2.3.256", "999.1.1.1", "1.2.3", "[1.2.3.4]:1",
		"[2001:db8::1", "[2001:db8::1]x", "fe80::1%eth0", "rdé.com", "rd_x.com", "a:b:c:"}
	for _, in := range bad {
		_, err := ParseHostPort("--relay", in)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%q accepted (err=%v)", in, err)
			continue
		}
		if ie.Field != "--relay" || !strings.Contains(err.Error(), "--relay") {
			t.Errorf("%q: error %q does not name the flag", in, err)
		}
	}
}

func TestOtherTypes(t *testing.T) {
	if _, err := ParseImageRef("--image", "rustdesk/rustdesk-server:1.1.16"); err != nil {
		t.Error(err)
	}
	if _, err := ParseImageRef("--image", "ghcr.io/rustdesk/rustdesk-server-s6:latest"); err != nil {
		t.Error(err)
	}
	if _, err := ParseImageRef("--image", "localhost:5000/rd@sha256:"+strings.Repeat("a", 64)); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"Rustdesk/Server", "rd:tag with space", "rd;x", "rd:{x}", "rd:1.0\n"} {
		if _, err := ParseImageRef("--image", bad); err == nil {
			t.Errorf("image %q accepted", bad)
		}
	}
	v, err := ParseVersion("v", "1.1.10-3")
	if err != nil || v.String() != "1.1.10-3" {
		t.Errorf("version: %v %v", v, err)
	}
	old, _ := ParseVersion("v", "1.1.16")
	bind, _ := ParseVersion("v", "1.1.17")
	if !old.Less(bind) || bind.Less(old) || !v.Less(old) {
		t.Error("version order")
	}
	for _, bad := range []string{"1.1", "1.1.16.1", "latest", "1.1.16-", "1.1.16 "} {
		if _, err := ParseVersion("v", bad); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
	if _, err := ParseAbsPath("--dir", "/opt/rustdesk-server"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"opt/x", "/opt/../etc", "/opt//x", "/opt/x y", "/opt/$x", "/opt/x\n"} {
		if _, err := ParseAbsPath("--dir", bad); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
	if _, err := ParseBindAddr("--bind", "0.0.0.0"); err != nil {
		t.Error(err)
	}
	if _, err := ParseBindAddr("--bind", "rd.example.com"); err == nil {
		t.Error("bind to a name accepted")
	}
}

func TestRecordRoundTripAndRejects(t *testing.T) {
	r := &Record{Format: 1, Backend: BackendSystemd, IDHost: "rd.example.com", Relay: "rd.example.com:21117",
		WorkingDir: DefaultWorkingDir, BinDir: DefaultBinDir, ServiceUser: "rustdesk", HBBSUnit: "hbbs.service",
		HBBRUnit: "hbbr.service", Origin: "rdctl"}
	data, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*back, *r) {
		t.Errorf("round trip: %+v != %+v", back, r)
	}
	for name, edit := range map[string]func(string) string{
		"bad relay":     func(s string) string { return strings.Replace(s, "rd.example.com:21117", "rd;x", 1) },
		"unknown field": func(s string) string { return s + "surprise = 1\n" },
		"newer format":  func(s string) string { return strings.Replace(s, "format = 1", "format = 2", 1) },
		"relative dir":  func(s string) string { return strings.Replace(s, "'/var/lib/rustdesk'", "'var/lib'", 1) },
	} {
		if _, err := DecodeRecord([]byte(edit(string(data)))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseHostPort(f *testing.F) {
	for _, s := range []string{"rd.example.com", "rd.example.com:21117", "[::1]:1", "::1", "1.2.3.4:5", "rd;x", "a:b", "[", "]:", "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hp, err := ParseHostPort("f", s)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out := hp.String()
		if strings.ContainsAny(strings.NewReplacer("[", "", "]", "").Replace(out), forbidden) {
			t.Fatalf("%q accepted and rendered as %q with a forbidden character", s, out)
		}
		again, err := ParseHostPort("f", out)
		if err != nil || again != hp {
			t.Fatalf("%q -> %q does not parse back (%v)", s, out, err)
		}
	})
}
