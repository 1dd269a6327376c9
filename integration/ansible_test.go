//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdctl/rdctl/integration/harness"
	"github.com/rdctl/rdctl/internal/keys"
)

// sshRootfs is the cached rootfs with openssh-server and python3 (scripts/setup-integration).
const sshRootfs = "/var/cache/rdctl-it/rootfs-ssh"

// needProgram finds a host program or skips (fails under RDCTL_IT_STRICT=1).
func needProgram(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s not found (Debian package %s); run scripts/setup-integration as root first", name, pkg)
		if os.Getenv("RDCTL_IT_STRICT") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// fleetHost is one managed host: a machine with sshd, linked to the controller's namespace.
type fleetHost struct {
	name string // inventory name
	m    *harness.Machine
	addr string // its address on the link to the controller
}

// fleet is the controller side: a network namespace, an SSH key, an inventory, Ansible's
// environment, and everything ansible-playbook printed (for the leak guard).
type fleet struct {
	t        *testing.T
	ctl      *harness.Netns
	hosts    []*fleetHost
	dir      string
	env      []string
	rdctl    string
	inv      string
	vars     string
	clients  string
	mu       sync.Mutex
	outputs  bytes.Buffer
	playbook string
}

func newFleet(t *testing.T, n int) *fleet {
	needProgram(t, "ssh", "openssh-client")
	sshKeygen := needProgram(t, "ssh-keygen", "openssh-client")
	f := &fleet{t: t, dir: t.TempDir()}
	f.playbook = needProgram(t, "ansible-playbook", "ansible-core")
	if _, err := os.Stat(filepath.Join(sshRootfs, ".rdctl-it-rootfs")); err != nil {
		msg := "no rootfs with sshd at " + sshRootfs + "; run scripts/setup-integration as root first"
		if os.Getenv("RDCTL_IT_STRICT") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	rdctl, standin := binaries(t)
	f.rdctl = rdctl
	f.ctl = harness.NewNetns(t, "ctl")

	// Boot the machines in parallel; a boot that fails leaves its slot nil.
	machines := make([]*harness.Machine, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			machines[i] = harness.BootSystemd(t, harness.WithPrivateNetwork(), harness.WithRootfs(sshRootfs))
		}()
	}
	wg.Wait()
	for _, m := range machines {
		if m == nil {
			t.FailNow()
		}
	}
	t.Logf("%d machines booted in %v (in parallel)", n, time.Since(start).Round(time.Millisecond))

	// The controller's SSH key, made by the test.
	key := filepath.Join(f.dir, "id_ed25519")
	if out, err := exec.Command(sshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", "rdctl-it-controller", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	noErrT(t, err)

	var known strings.Builder
	for i, m := range machines {
		_, remote := f.ctl.LinkMachine(t, m)
		h := &fleetHost{name: fmt.Sprintf("rd%d", i+1), m: m, addr: remote.String()}
		f.hosts = append(f.hosts, h)
		noErrT(t, m.WriteFile("/root/.ssh/authorized_keys", pub, 0o600))
		m.MustExec(t, "chmod", "0700", "/root/.ssh")
		// ssh.service makes the host keys at boot; wait until it runs.
		m.MustExec(t, "sh", "-c", "for i in $(seq 200); do systemctl is-active -q ssh.service && exit 0; sleep 0.05; done; systemctl status ssh.service; exit 1")
		hk, err := m.ReadFile("/etc/ssh/ssh_host_ed25519_key.pub")
		noErrT(t, err)
		fields := strings.Fields(string(hk))
		if len(fields) < 2 {
			t.Fatalf("host key of %s: %q", m.Name(), hk)
		}
		fmt.Fprintf(&known, "%s %s %s\n", h.addr, fields[0], fields[1])
	}
	knownHosts := filepath.Join(f.dir, "known_hosts")
	noErrT(t, os.WriteFile(knownHosts, []byte(known.String()), 0o600))

	// Inventory: IP literals only, strict host key checking against the keys just read.
	var inv strings.Builder
	inv.WriteString("[rustdesk_servers]\n")
	for _, h := range f.hosts {
		fmt.Fprintf(&inv, "%s ansible_host=%s\n", h.name, h.addr)
	}
	fmt.Fprintf(&inv, "\n[rustdesk_servers:vars]\nansible_user=root\nansible_become=false\n"+
		"ansible_python_interpreter=/usr/bin/python3\nansible_ssh_private_key_file=%s\n"+
		"ansible_ssh_common_args=-o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o CheckHostIP=no\n",
		key, knownHosts)
	f.inv = filepath.Join(f.dir, "inventory.ini")
	noErrT(t, os.WriteFile(f.inv, []byte(inv.String()), 0o600))

	// The controller's files: rdctl binaries per architecture and the release zip.
	bins := filepath.Join(f.dir, "bin")
	noErrT(t, os.MkdirAll(bins, 0o755))
	data, err := os.ReadFile(rdctl)
	noErrT(t, err)
	noErrT(t, os.WriteFile(filepath.Join(bins, "rdctl-linux-amd64"), data, 0o755))
	f.clients = filepath.Join(f.dir, "clients")
	vars := map[string]any{
		"rdctl_binaries_dir":    bins,
		"rdctl_server_release":  releaseZip(t, standin),
		"rdctl_export_dest":     f.clients,
		"rdctl_controller_path": rdctl,
		"rdctl_check_timeout":   "3s",
	}
	vb, _ := json.Marshal(vars)
	f.vars = filepath.Join(f.dir, "vars.json")
	noErrT(t, os.WriteFile(f.vars, vb, 0o600))

	// Ansible's state in temp dirs, the collection through a symlink to the repository's ansible/.
	repoAnsible, err := filepath.Abs("../ansible")
	noErrT(t, err)
	coll := filepath.Join(f.dir, "collections", "ansible_collections", "rdctl")
	noErrT(t, os.MkdirAll(coll, 0o755))
	noErrT(t, os.Symlink(repoAnsible, filepath.Join(coll, "rustdesk")))
	cp, err := os.MkdirTemp("", "rdcp") // ssh control sockets need a short path
	noErrT(t, err)
	t.Cleanup(func() { os.RemoveAll(cp) })
	cfg := filepath.Join(f.dir, "ansible.cfg") // no /etc/ansible/ansible.cfg, no ./ansible.cfg
	noErrT(t, os.WriteFile(cfg, []byte("[defaults]\n"), 0o644))
	f.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"HOME=" + filepath.Join(f.dir, "home"),
		"XDG_CACHE_HOME=" + filepath.Join(f.dir, "cache"),
		"ANSIBLE_COLLECTIONS_PATH=" + filepath.Join(f.dir, "collections"),
		"ANSIBLE_HOME=" + filepath.Join(f.dir, "ansible-home"),
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(f.dir, "ansible-tmp"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR=" + cp,
		"ANSIBLE_HOST_KEY_CHECKING=True",
		"ANSIBLE_PIPELINING=True",
		"ANSIBLE_FORKS=10",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_RETRY_FILES_ENABLED=False",
		"ANSIBLE_CONFIG=" + cfg,
	}
	return f
}

func noErrT(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// play runs a playbook of the collection from the controller's namespace, with -vvv, and
// returns its output (stdout and stderr) and exit code. Every output is kept for the leak guard.
func (f *fleet) play(name string, extra ...string) (string, int, time.Duration) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), 4*time.Minute)
	defer cancel()
	args := append([]string{f.playbook, "-vvv", "-i", f.inv, "-e", "@" + f.vars}, extra...)
	args = append(args, "rdctl.rustdesk."+name)
	cmd := f.ctl.Command(ctx, args...)
	cmd.Env = f.env
	cmd.Dir = f.dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			f.t.Fatalf("ansible-playbook %s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	f.mu.Lock()
	f.outputs.Write(out.Bytes())
	f.mu.Unlock()
	return out.String(), code, took
}

func (f *fleet) mustPlay(name string, extra ...string) (string, time.Duration) {
	f.t.Helper()
	out, code, took := f.play(name, extra...)
	if code != 0 {
		f.t.Fatalf("ansible-playbook %s %v: exit %d\n%s", name, extra, code, tail(out, 120))
	}
	return out, took
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var recapLine = regexp.MustCompile(`(?m)^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)`)

type recap struct{ ok, changed, unreachable, failed string }

// recapOf parses the PLAY RECAP of an ansible-playbook run.
func recapOf(out string) map[string]recap {
	r := map[string]recap{}
	i := strings.LastIndex(out, "PLAY RECAP")
	if i < 0 {
		return r
	}
	for _, m := range recapLine.FindAllStringSubmatch(out[i:], -1) {
		r[m[1]] = recap{ok: m[2], changed: m[3], unreachable: m[4], failed: m[5]}
	}
	return r
}

// rdctlOn runs the rdctl the role installed on a host.
func (h *fleetHost) rdctl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, errOut, code, err := h.m.Exec(ctx, append([]string{"/usr/local/bin/rdctl"}, args...)...)
	if err != nil || code != 0 {
		t.Fatalf("%s: rdctl %v: exit %d %v\n%s\n%s", h.name, args, code, err, out, errOut)
	}
	return out
}

func (h *fleetHost) pub(t *testing.T) string {
	var k struct {
		PublicKey string `json:"public_key"`
		Valid     bool   `json:"valid"`
	}
	noErrT(t, json.Unmarshal([]byte(h.rdctl(t, "--json", "key", "show")), &k))
	if !k.Valid {
		t.Fatalf("%s: key not valid", h.name)
	}
	return k.PublicKey
}

// keyStatusFrom asks the host's hbbs, from the controller's namespace, with rdctl check.
func (f *fleet) keyStatusFrom(t *testing.T, h *fleetHost, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, _, _, err := f.ctl.Exec(ctx, f.rdctl, "--json", "check", "--key", key, "--ports", "rendezvous-tcp", h.addr)
	noErrT(t, err)
	var r struct {
		Targets []struct {
			KeyStatus string `json:"key_status"`
		} `json:"targets"`
	}
	if json.Unmarshal([]byte(out), &r) != nil || len(r.Targets) != 1 {
		t.Fatalf("rdctl check %s: %s", h.addr, out)
	}
	return r.Targets[0].KeyStatus
}

// snapshot is every file of the host that the role or rdctl writes: path, mode, owner, sha256.
func (h *fleetHost) snapshot(t *testing.T) string {
	t.Helper()
	return h.m.MustExec(t, "sh", "-c", `find /etc/rdctl /etc/systemd/system /etc/sysusers.d /var/lib/rustdesk /var/lib/rdctl /var/lib/rdctl-export /var/cache/rdctl /usr/local/bin -xdev 2>/dev/null \
		| sort | while read -r p; do printf '%s %s ' "$p" "$(stat -c '%a %U:%G' "$p")"; if [ -f "$p" ]; then sha256sum <"$p" | cut -c1-16; else echo; fi; done; \
		systemctl show -p MainPID --value hbbs.service hbbr.service; nft list ruleset | sha256sum`)
}

// secrets collects every secret key file on every host: the live ones, the backups, staged.
func (f *fleet) secrets(t *testing.T) []keys.Pair {
	var pairs []keys.Pair
	for _, h := range f.hosts {
		list := h.m.MustExec(t, "sh", "-c", "find /var/lib/rustdesk /var/lib/rdctl -name id_ed25519 -type f 2>/dev/null")
		for _, p := range strings.Fields(list) {
			data, err := h.m.ReadFile(p)
			noErrT(t, err)
			pair, err := keys.ParseSecret(data)
			if err != nil {
				t.Fatalf("%s:%s: %v", h.name, p, err)
			}
			pairs = append(pairs, pair)
		}
	}
	return pairs
}

// leakForms are the encodings of a secret (and of its seed, the whole secret on its own) that
// must never appear in Ansible's output or the fetched files.
func leakForms(p keys.Pair) []string {
	raw, _ := base64.StdEncoding.DecodeString(string(p.SecretFileBytes()))
	seed := raw[:32]
	forms := []string{string(p.SecretFileBytes()), hex.EncodeToString(raw), hex.EncodeToString(seed)[:40]}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString(raw)[:60], enc.EncodeToString(seed)[:40])
	}
	return forms
}

// changedTasks names the tasks that reported a change, for failure messages.
func changedTasks(out string) []string {
	var names []string
	for _, block := range strings.Split(out, "\nTASK [")[1:] {
		if strings.Contains(block, "\nchanged: [") {
			names = append(names, block[:strings.Index(block, "]")])
		}
	}
	return names
}

// taskResults lists the hosts in the order a task's results were printed in the output.
func taskResults(out, task string) []string {
	var hosts []string
	re := regexp.MustCompile(`^(?:ok|changed|fatal|failed): \[([^\]\s]+)`)
	for _, block := range strings.Split(out, "\nTASK [")[1:] {
		if !strings.HasPrefix(block, task) {
			continue
		}
		for _, line := range strings.Split(block, "\n") {
			if m := re.FindStringSubmatch(line); m != nil {
				hosts = append(hosts, m[1])
			}
		}
	}
	return hosts
}

func TestAnsibleFleet(t *testing.T) {
	f := newFleet(t, 3)

	// 1. The role installs rdctl and the servers on all three.
	out, took := f.mustPlay("install")
	t.Logf("install play on 3 hosts: %v", took.Round(time.Millisecond))
	rc := recapOf(out)
	for _, h := range f.hosts {
		if r, ok := rc[h.name]; !ok || r.failed != "0" || r.unreachable != "0" || r.changed == "0" {
			t.Fatalf("recap of %s: %+v\n%s", h.name, r, tail(out, 40))
		}
	}
	if !strings.Contains(out, "servers serve their keys on every port") {
		t.Errorf("the controller's check did not run or pass:\n%s", tail(out, 60))
	}
	pubs := map[string]string{}
	seen := map[string]string{}
	for _, h := range f.hosts {
		p := h.pub(t)
		if other, dup := seen[p]; dup {
			t.Fatalf("%s and %s serve the same key", other, h.name)
		}
		seen[p], pubs[h.name] = h.name, p
		if st := f.keyStatusFrom(t, h, p); st != "match" {
			t.Errorf("%s from the controller: %s", h.name, st)
		}
		toml, err := os.ReadFile(filepath.Join(f.clients, h.name, "linux", "RustDesk2.toml"))
		if err != nil || !strings.Contains(string(toml), "key = '"+p+"'") || !strings.Contains(string(toml), h.addr) {
			t.Errorf("client media of %s on the controller: %v\n%s", h.name, err, toml)
		}
		for _, file := range []string{"config-string.txt", "windows/rustdesk/RustDesk2.toml", "windows/rustdesk/install-config.ps1", "config-qr.png"} {
			if _, err := os.Stat(filepath.Join(f.clients, h.name, file)); err != nil {
				t.Errorf("%s: %v", h.name, err)
			}
		}
		if mode := strings.TrimSpace(h.m.MustExec(t, "stat", "-c", "%a %U", "/usr/local/bin/rdctl")); mode != "755 root" {
			t.Errorf("%s: /usr/local/bin/rdctl %s", h.name, mode)
		}
	}

	// 2. The same play again changes nothing; --check changes nothing either.
	before := map[string]string{}
	for _, h := range f.hosts {
		before[h.name] = h.snapshot(t)
	}
	out, took = f.mustPlay("install")
	t.Logf("install play again: %v", took.Round(time.Millisecond))
	for name, r := range recapOf(out) {
		if r.changed != "0" || r.failed != "0" {
			t.Errorf("second run, %s: %+v; changed tasks: %v", name, r, changedTasks(out))
		}
	}
	if len(recapOf(out)) < 3 {
		t.Errorf("second run recap: %v", recapOf(out))
	}
	out, _ = f.mustPlay("install", "--check", "--diff")
	for name, r := range recapOf(out) {
		if r.changed != "0" || r.failed != "0" {
			t.Errorf("--check run, %s: %+v; changed tasks: %v", name, r, changedTasks(out))
		}
	}
	for _, h := range f.hosts {
		if after := h.snapshot(t); after != before[h.name] {
			t.Errorf("%s changed by the second run or --check:\nbefore:\n%s\nafter:\n%s", h.name, before[h.name], after)
		}
	}

	// 3. The rotation play, one host at a time; each checked from the controller before the next.
	out, took = f.mustPlay("rotate")
	t.Logf("rotation play on 3 hosts: %v", took.Round(time.Millisecond))
	rotated := taskResults(out, "rdctl.rustdesk.rustdesk_server : Rotate | switch")
	checked := taskResults(out, "rdctl.rustdesk.rustdesk_server : Rotate | the controller sees")
	if strings.Join(rotated, ",") != "rd1,rd2,rd3" || strings.Join(checked, ",") != "rd1,rd2,rd3" {
		t.Errorf("rotation order %v, checks %v", rotated, checked)
	}
	// serial: each host's check comes before the next host's rotation
	for i := 1; i < len(f.hosts); i++ {
		chk := strings.Index(out, fmt.Sprintf("[%s -> localhost]", f.hosts[i-1].name))
		next := strings.Index(out, "TASK [rdctl.rustdesk.rustdesk_server : Rotate | switch")
		for j := 0; j < i; j++ {
			next = strings.Index(out[next+1:], "TASK [rdctl.rustdesk.rustdesk_server : Rotate | switch") + next + 1
		}
		if chk < 0 || chk > next {
			t.Errorf("%s's controller check (at %d) is not before %s's rotation (at %d)", f.hosts[i-1].name, chk, f.hosts[i].name, next)
		}
	}
	for _, h := range f.hosts {
		p := h.pub(t)
		if p == pubs[h.name] {
			t.Errorf("%s not rotated", h.name)
		}
		if st := f.keyStatusFrom(t, h, p); st != "match" {
			t.Errorf("%s does not serve its new key: %s", h.name, st)
		}
		if st := f.keyStatusFrom(t, h, pubs[h.name]); st != "mismatch" {
			t.Errorf("%s does not reject its old key: %s", h.name, st)
		}
		toml, _ := os.ReadFile(filepath.Join(f.clients, h.name, "linux", "RustDesk2.toml"))
		if !strings.Contains(string(toml), "key = '"+p+"'") {
			t.Errorf("%s: the controller's client media do not carry the new key:\n%s", h.name, toml)
		}
		pubs[h.name] = p
	}

	// 4. One host's key planted on another: the fleet rule names both.
	rd1, rd2, rd3 := f.hosts[0], f.hosts[1], f.hosts[2]
	sec, err := rd1.m.ReadFile("/var/lib/rustdesk/id_ed25519")
	noErrT(t, err)
	pubf, err := rd1.m.ReadFile("/var/lib/rustdesk/id_ed25519.pub")
	noErrT(t, err)
	noErrT(t, rd2.m.WriteFile("/var/lib/rustdesk/id_ed25519", sec, 0o600))
	noErrT(t, rd2.m.WriteFile("/var/lib/rustdesk/id_ed25519.pub", pubf, 0o644))
	rd2.m.MustExec(t, "chown", "rustdesk:rustdesk", "/var/lib/rustdesk/id_ed25519", "/var/lib/rustdesk/id_ed25519.pub")
	rd2.m.MustExec(t, "systemctl", "restart", "hbbs.service", "hbbr.service")
	out, code, _ := f.play("check")
	if code == 0 || !strings.Contains(out, "hosts serve the same key: rd1 and rd2") {
		t.Errorf("duplicate key not caught: exit %d\n%s", code, tail(out, 40))
	}
	// rd2 gets a key of its own again (rdctl rotate on the host)
	rd2.rdctl(t, "rotate")
	pubs["rd2"] = rd2.pub(t)
	f.mustPlay("check")

	// 5. hbbs refuses the new key on rd2: rdctl rolls rd2 back, the play stops, rd3 is untouched.
	staged := map[string]string{}
	for _, h := range f.hosts {
		var s struct {
			New string `json:"new_public_key"`
			Pub string `json:"public_key"`
		}
		noErrT(t, json.Unmarshal([]byte(h.rdctl(t, "--json", "rotate", "--stage")), &s))
		staged[h.name] = s.New + s.Pub
	}
	noErrT(t, rd2.m.WriteFile("/etc/systemd/system/hbbs.service.d/refuse.conf",
		[]byte("[Service]\nEnvironment=STANDIN_REFUSE_KEY="+staged["rd2"]+"\n"), 0o644))
	rd2.m.MustExec(t, "systemctl", "daemon-reload")
	out, code, _ = f.play("rotate", "-e", "rdctl_rotate_action=commit")
	if code == 0 {
		t.Fatalf("rotation with a refusing hbbs succeeded:\n%s", tail(out, 60))
	}
	if r := recapOf(out)["rd2"]; r.failed != "1" {
		t.Errorf("rd2 recap %+v", r)
	}
	if got := taskResults(out, "rdctl.rustdesk.rustdesk_server : Rotate | switch"); strings.Join(got, ",") != "rd1,rd2" {
		t.Errorf("rotation reached %v, want rd1,rd2 (and stop)", got)
	}
	if p := rd1.pub(t); p != staged["rd1"] {
		t.Errorf("rd1 not switched to its staged key")
	}
	if p := rd2.pub(t); p != pubs["rd2"] {
		t.Errorf("rd2 not rolled back: serves %s, want %s", p, pubs["rd2"])
	}
	if st := f.keyStatusFrom(t, rd2, pubs["rd2"]); st != "match" {
		t.Errorf("rd2 after the rollback: %s", st)
	}
	if p := rd3.pub(t); p != pubs["rd3"] {
		t.Errorf("rd3 was rotated after rd2 failed")
	}
	if !strings.Contains(out, "back in place") {
		t.Errorf("rotation output does not say the key is back in place:\n%s", tail(out, 30))
	}

	// Leak guard: no form of any secret key that ever was on any host (live, backups, staged) in
	// any ansible-playbook -vvv output or any file fetched to the controller.
	var corpus bytes.Buffer
	f.mu.Lock()
	corpus.Write(f.outputs.Bytes())
	f.mu.Unlock()
	nfiles := 0
	filepath.WalkDir(f.clients, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			data, _ := os.ReadFile(p)
			corpus.Write(data)
			nfiles++
		}
		return nil
	})
	pairs := f.secrets(t)
	if len(pairs) < 9 || nfiles < 27 {
		t.Fatalf("leak guard over too little: %d secrets, %d fetched files", len(pairs), nfiles)
	}
	for _, p := range pairs {
		for _, form := range leakForms(p) {
			if bytes.Contains(corpus.Bytes(), []byte(form)) {
				sum := sha256.Sum256([]byte(form))
				t.Errorf("a secret key form (sha256 %x) appears in Ansible's output or the fetched files", sum[:6])
			}
		}
	}
	t.Logf("leak guard: %d secrets x %d forms over %d bytes of -vvv output and %d fetched files",
		len(pairs), len(leakForms(pairs[0])), f.outputs.Len(), nfiles)
}

// TestAnsibleLint lints the collection with Debian's ansible-lint at the production profile
// (the profile is set in ansible/.ansible-lint): no violation, not even a warning.
func TestAnsibleLint(t *testing.T) {
	lint := needProgram(t, "ansible-lint", "ansible-lint")
	dir := t.TempDir()
	repoAnsible, err := filepath.Abs("../ansible")
	noErrT(t, err)
	coll := filepath.Join(dir, "collections", "ansible_collections", "rdctl")
	noErrT(t, os.MkdirAll(coll, 0o755))
	noErrT(t, os.Symlink(repoAnsible, filepath.Join(coll, "rustdesk")))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, lint, "--nocolor", "--profile", "production", "--strict")
	cmd.Dir = filepath.Join(coll, "rustdesk")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8",
		"HOME=" + filepath.Join(dir, "home"), "XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"ANSIBLE_COLLECTIONS_PATH=" + filepath.Join(dir, "collections"),
		"ANSIBLE_HOME=" + filepath.Join(dir, "ansible-home"), "ANSIBLE_LOCAL_TEMP=" + filepath.Join(dir, "tmp"),
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Passed with production profile: 0 failure(s), 0 warning(s)") {
		t.Fatalf("ansible-lint: %v\n%s", err, out)
	}
	t.Logf("%s", lastLine(string(out)))
	// ansible-lint must not have written into the repository (a .cache dir in the collection).
	if _, err := os.Stat(filepath.Join(repoAnsible, ".cache")); err == nil {
		t.Errorf("ansible-lint left %s/.cache", repoAnsible)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestAnsibleImageTree runs the host modules with root: on the controller itself (connection
// local): an image tree is installed, its key rotated, its media exported and its facts read,
// and a second install changes nothing. No live system is touched.
func TestAnsibleImageTree(t *testing.T) {
	playbook := needProgram(t, "ansible-playbook", "ansible-core")
	rdctl, _ := binaries(t)
	dir := t.TempDir()
	repoAnsible, err := filepath.Abs("../ansible")
	noErrT(t, err)
	coll := filepath.Join(dir, "collections", "ansible_collections", "rdctl")
	noErrT(t, os.MkdirAll(coll, 0o755))
	noErrT(t, os.Symlink(repoAnsible, filepath.Join(coll, "rustdesk")))
	img, media := filepath.Join(dir, "img"), filepath.Join(dir, "media")
	play := fmt.Sprintf(`---
- name: Image tree
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - {name: install, rdctl.rustdesk.rdctl_install: {root: %[1]q, rdctl_path: %[2]q, relay: 192.0.2.7}, register: first}
    - {name: install again, rdctl.rustdesk.rdctl_install: {root: %[1]q, rdctl_path: %[2]q, relay: 192.0.2.7}, register: again}
    - {name: facts, rdctl.rustdesk.rdctl_facts: {root: %[1]q, rdctl_path: %[2]q}}
    - {name: rotate, rdctl.rustdesk.rdctl_rotate: {root: %[1]q, rdctl_path: %[2]q}, register: rot}
    - {name: export, rdctl.rustdesk.rdctl_export: {root: %[1]q, rdctl_path: %[2]q, dest: %[3]q}, register: media}
    - name: results
      ansible.builtin.debug:
        msg: "RESULT {{ first.changed }} {{ again.changed }} {{ rdctl_server.public_key == first.public_key }} {{ rot.old_public_key == first.public_key }} {{ rot.new_public_key == media.public_key }} {{ media.files | length }}"
`, img, rdctl, media)
	pb := filepath.Join(dir, "image.yml")
	noErrT(t, os.WriteFile(pb, []byte(play), 0o644))
	cfg := filepath.Join(dir, "ansible.cfg")
	noErrT(t, os.WriteFile(cfg, []byte("[defaults]\n"), 0o644))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, playbook, "-vvv", "-i", "localhost,", "-e", "ansible_python_interpreter=/usr/bin/python3", pb)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "HOME=" + filepath.Join(dir, "home"),
		"ANSIBLE_CONFIG=" + cfg, "ANSIBLE_COLLECTIONS_PATH=" + filepath.Join(dir, "collections"),
		"ANSIBLE_HOME=" + filepath.Join(dir, "ansible-home"), "ANSIBLE_LOCAL_TEMP=" + filepath.Join(dir, "tmp"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCALHOST_WARNING=False"}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"RESULT True False True True True 9"`) {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(img, "etc/systemd/system/hbbs.service")); err != nil {
		t.Error(err)
	}
	sec, err := os.ReadFile(filepath.Join(img, "var/lib/rustdesk/id_ed25519"))
	noErrT(t, err)
	pair, err := keys.ParseSecret(sec)
	noErrT(t, err)
	for _, form := range leakForms(pair) {
		if strings.Contains(string(out), form) {
			t.Error("a secret key form appears in the play's output")
		}
	}
}
