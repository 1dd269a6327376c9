package firewall

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestNFTScriptExact(t *testing.T) {
	const header = "#!/usr/sbin/nft -f\n" +
		"# Written by rdctl: RustDesk server ports (tcp 21115-21119, udp 21116; hbbr has no UDP port).\n" +
		"# Loading it replaces table inet rdctl and touches nothing else.\n" +
		"table inet rdctl\n" +
		"delete table inet rdctl\n" +
		"table inet rdctl {\n" +
		"\tchain input {\n" +
		"\t\ttype filter hook input priority filter - 1; policy accept;\n"
	open := header +
		"\t\ttcp dport 21115-21119 accept\n" +
		"\t\tudp dport 21116 accept\n" +
		"\t}\n}\n"
	if got := NFTScript(Options{}); got != open {
		t.Errorf("open script:\n%s\nwant:\n%s", got, open)
	}
	tailnet := header +
		"\t\tiifname != { \"lo\", \"tailscale0\" } tcp dport 21115-21119 drop\n" +
		"\t\tiifname != { \"lo\", \"tailscale0\" } udp dport 21116 drop\n" +
		"\t\ttcp dport 21115-21119 accept\n" +
		"\t\tudp dport 21116 accept\n" +
		"\t}\n}\n"
	if got := NFTScript(Options{TailnetOnly: true}); got != tailnet {
		t.Errorf("tailnet script:\n%s\nwant:\n%s", got, tailnet)
	}
	if strings.Contains(tailnet, "21117 accept") && strings.Contains(tailnet, "udp dport 21117") {
		t.Error("udp 21117 opened")
	}
}

func shell(cmds []Command) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, c.String())
	}
	return out
}

func TestCommandsExact(t *testing.T) {
	for _, tc := range []struct {
		b       Backend
		tailnet bool
		want    []string
	}{
		{UFW, false, []string{
			"ufw allow 21115:21119/tcp comment 'rdctl: RustDesk server'",
			"ufw allow 21116/udp comment 'rdctl: RustDesk server'",
		}},
		{UFW, true, []string{
			"ufw allow in on tailscale0 to any port 21115:21119 proto tcp comment 'rdctl: RustDesk server'",
			"ufw allow in on tailscale0 to any port 21116 proto udp comment 'rdctl: RustDesk server'",
		}},
		{Firewalld, false, []string{
			"firewall-cmd --permanent --new-service=rdctl-rustdesk",
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21115-21119/tcp",
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21116/udp",
			"firewall-cmd --permanent --service=rdctl-rustdesk --remove-port=21115-21117/tcp",
			"firewall-cmd --permanent --add-service=rdctl-rustdesk",
			"firewall-cmd --reload",
		}},
		{Firewalld, true, []string{
			"firewall-cmd --permanent --new-service=rdctl-rustdesk",
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21115-21119/tcp",
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21116/udp",
			"firewall-cmd --permanent --service=rdctl-rustdesk --remove-port=21115-21117/tcp",
			"firewall-cmd --permanent --new-zone=rdctl-tailnet",
			"firewall-cmd --permanent --zone=rdctl-tailnet --add-interface=tailscale0",
			"firewall-cmd --permanent --remove-service=rdctl-rustdesk",
			"firewall-cmd --permanent --zone=rdctl-tailnet --add-service=rdctl-rustdesk",
			"firewall-cmd --reload",
		}},
		{NFTables, false, []string{"nft -f /dev/stdin <<'EOF'\n" + NFTScript(Options{}) + "EOF"}},
	} {
		cmds, err := Commands(tc.b, Options{TailnetOnly: tc.tailnet})
		if err != nil {
			t.Fatal(err)
		}
		if got := shell(cmds); !slices.Equal(got, tc.want) {
			t.Errorf("%s tailnet=%v:\n got %q\nwant %q", tc.b, tc.tailnet, got, tc.want)
		}
	}
	if _, err := Commands("iptables", Options{}); err == nil {
		t.Error("unknown backend accepted")
	}
	if _, err := ParseBackend("iptables"); err == nil {
		t.Error("ParseBackend accepted iptables")
	}
}

// noErr stops the test on a setup step's error, so that a step that failed
// cannot pass for the behaviour under test.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fakeTools puts shell scripts named like the firewall tools on PATH: each
// logs its arguments and does what script says.
func fakeTools(t *testing.T, scripts map[string]string) (logPath string) {
	dir := t.TempDir()
	logPath = filepath.Join(dir, "log")
	for name, body := range scripts {
		s := "#!/bin/sh\necho \"" + name + " $*\" >> " + logPath + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	return logPath
}

func TestDetect(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		scripts map[string]string
		want    Backend
		reason  string
	}{
		{"ufw active", map[string]string{"ufw": `echo "Status: active"; echo; echo "To Action From"`, "firewall-cmd": "echo running"}, UFW, "ufw is active"},
		{"ufw inactive, firewalld running", map[string]string{"ufw": `echo "Status: inactive"`, "firewall-cmd": "echo running"}, Firewalld, "firewalld is running"},
		{"ufw as non-root", map[string]string{"ufw": `echo "ERROR: You need to be root to run this script"; exit 1`}, NFTables, "ufw is installed but not active"},
		{"firewalld stopped", map[string]string{"firewall-cmd": `echo "not running"; exit 252`}, NFTables, "firewalld is installed but not running"},
		{"nothing", map[string]string{}, NFTables, "neither ufw nor firewalld is installed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeTools(t, tc.scripts)
			b, reason := Detect(ctx, ExecRunner{})
			if b != tc.want || reason != tc.reason {
				t.Errorf("got %s (%s), want %s (%s)", b, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestDetectRoot(t *testing.T) {
	root := t.TempDir()
	if b, _ := DetectRoot(root); b != NFTables {
		t.Errorf("empty image: %s", b)
	}
	noErr(t, os.MkdirAll(filepath.Join(root, "etc/systemd/system/multi-user.target.wants"), 0o755))
	noErr(t, os.Symlink("/usr/lib/systemd/system/firewalld.service", filepath.Join(root, "etc/systemd/system/multi-user.target.wants/firewalld.service")))
	if b, _ := DetectRoot(root); b != Firewalld {
		t.Errorf("firewalld image: %s", b)
	}
	noErr(t, os.MkdirAll(filepath.Join(root, "etc/ufw"), 0o755))
	noErr(t, os.WriteFile(filepath.Join(root, "etc/ufw/ufw.conf"), []byte("# comment\nENABLED=yes\nLOGLEVEL=low\n"), 0o644))
	if b, _ := DetectRoot(root); b != UFW {
		t.Errorf("ufw image: %s", b)
	}
}

// Apply runs the exact commands, tolerates firewalld's "already so" exit
// codes, and stops at the first real failure.
func TestApply(t *testing.T) {
	ctx := context.Background()
	log := fakeTools(t, map[string]string{"firewall-cmd": `case "$*" in *new-zone*) echo "Error: NAME_CONFLICT: new_zone(): 'rdctl-tailnet'"; exit 26;; esac; echo success`})
	cmds, _ := Commands(Firewalld, Options{TailnetOnly: true})
	res, err := Apply(ctx, ExecRunner{}, cmds)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 9 || res[4].ExitCode != 26 || !strings.Contains(res[4].Output, "NAME_CONFLICT") {
		t.Errorf("results %+v", res)
	}
	data, _ := os.ReadFile(log)
	want := "firewall-cmd --permanent --new-service=rdctl-rustdesk\n" +
		"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21115-21119/tcp\n" +
		"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21116/udp\n" +
		"firewall-cmd --permanent --service=rdctl-rustdesk --remove-port=21115-21117/tcp\n" +
		"firewall-cmd --permanent --new-zone=rdctl-tailnet\n" +
		"firewall-cmd --permanent --zone=rdctl-tailnet --add-interface=tailscale0\n" +
		"firewall-cmd --permanent --remove-service=rdctl-rustdesk\n" +
		"firewall-cmd --permanent --zone=rdctl-tailnet --add-service=rdctl-rustdesk\n" +
		"firewall-cmd --reload\n"
	if string(data) != want {
		t.Errorf("ran:\n%s\nwant:\n%s", data, want)
	}

	log = fakeTools(t, map[string]string{"ufw": `case "$*" in *udp*) echo "ERROR: Bad port"; exit 1;; esac; echo "Rule added"`})
	cmds, _ = Commands(UFW, Options{})
	res, err = Apply(ctx, ExecRunner{}, append(cmds, Command{Argv: []string{"ufw", "never"}}))
	var ce *CommandError
	if err == nil || !asCommandError(err, &ce) || ce.ExitCode != 1 || !strings.Contains(err.Error(), "Bad port") {
		t.Fatalf("err %v", err)
	}
	if len(res) != 2 {
		t.Errorf("results %+v", res)
	}
	if data, _ := os.ReadFile(log); strings.Contains(string(data), "never") {
		t.Error("a command after the failure ran")
	}
	// a command that cannot run at all
	if _, err := Apply(ctx, ExecRunner{}, []Command{{Argv: []string{"/nonexistent/nft"}}}); err == nil {
		t.Error("missing program not reported")
	}
}

func asCommandError(err error, target **CommandError) bool {
	ce, ok := err.(*CommandError)
	if ok {
		*target = ce
	}
	return ok
}

func TestProxySplit(t *testing.T) {
	cases := []struct {
		o        Options
		open, lo string
	}{
		{Options{}, "tcp 21115-21119, udp 21116", ""},
		{Options{Proxy: true}, "tcp 21115-21117, udp 21116", "tcp 21118-21119"},
		{Options{Proxy: true, TailnetOnly: true}, "tcp 21115-21117, udp 21116", "tcp 21118-21119"},
	}
	str := func(rs []Rule) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Proto+" "+r.span("-"))
		}
		return strings.Join(out, ", ")
	}
	for _, c := range cases {
		open, lo := c.o.Split()
		if str(open) != c.open || str(lo) != c.lo {
			t.Errorf("%+v: open %q lo %q, want %q %q", c.o, str(open), str(lo), c.open, c.lo)
		}
	}
}

func TestProxyCommandsExact(t *testing.T) {
	got := map[Backend][]string{}
	for _, b := range Backends {
		cmds, err := Commands(b, Options{Proxy: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			got[b] = append(got[b], c.String())
		}
	}
	want := map[Backend][]string{
		UFW: {
			"ufw delete allow 21115:21119/tcp",
			"ufw allow 21115:21117/tcp comment 'rdctl: RustDesk server'",
			"ufw allow 21116/udp comment 'rdctl: RustDesk server'",
			"ufw deny 21118:21119/tcp comment 'rdctl: RustDesk server'",
		},
		Firewalld: {
			"firewall-cmd --permanent --new-service=rdctl-rustdesk",
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21115-21117/tcp",
			"firewall-cmd --permanent --service=rdctl-rustdesk --add-port=21116/udp",
			"firewall-cmd --permanent --service=rdctl-rustdesk --remove-port=21115-21119/tcp",
			// a wide port rule (older rdctl, a guide) would admit the
			// WebSocket ports from anywhere
			"firewall-cmd --permanent --remove-port=21115-21119/tcp",
			"firewall-cmd --permanent --add-service=rdctl-rustdesk",
			"firewall-cmd --reload",
		},
		NFTables: {"nft -f /dev/stdin <<'EOF'\n" + NFTScript(Options{Proxy: true}) + "EOF"},
	}
	for _, b := range Backends {
		if strings.Join(got[b], "\n") != strings.Join(want[b], "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", b, strings.Join(got[b], "\n"), strings.Join(want[b], "\n"))
		}
	}
	script := NFTScript(Options{Proxy: true, TailnetOnly: true})
	for _, w := range []string{
		"iifname != \"lo\" tcp dport 21118-21119 drop",
		"iifname != { \"lo\", \"tailscale0\" } tcp dport 21115-21117 drop",
		"tcp dport 21115-21117 accept",
		"udp dport 21116 accept",
	} {
		if !strings.Contains(script, w) {
			t.Errorf("proxy+tailnet script lacks %q:\n%s", w, script)
		}
	}
	if strings.Contains(script, "21118-21119 accept") || strings.Contains(script, "21115-21119") {
		t.Errorf("proxy script admits the WebSocket ports:\n%s", script)
	}
}
