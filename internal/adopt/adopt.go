// Package adopt recognises hbbs/hbbr installs rdctl did not make (or whose
// record is lost) from their systemd unit files, reports what is unsafe
// about them, and builds the deployment record that lets rotate, export,
// check and status work on them.
//
// It reads files only (unit files, drop-ins, EnvironmentFile=, the working
// directory's .env and key files), always under a root, and never queries
// systemd: what is on disk is what the next start will run. A secret key
// met on the way (-k, KEY=) is classified, never kept or reported.
package adopt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/serverargs"
)

// Origins a detected install can have.
const (
	// OriginDebian: the rustdesk-server-hbbs/-hbbr packages'
	// rustdesk-hbbs.service and rustdesk-hbbr.service, working directory
	// /var/lib/rustdesk-server, no arguments.
	OriginDebian = deploy.OriginDebian
	// OriginInstallerScript: the common installer scripts'
	// (techahold/dinger1986) rustdesksignal.service and
	// rustdeskrelay.service in /etc/systemd/system, working directory
	// /opt/rustdesk.
	OriginInstallerScript = deploy.OriginInstallerScript
	// OriginRdctl: rdctl's own hbbs.service and hbbr.service.
	OriginRdctl = deploy.OriginRdctl
	// OriginCustom: units named hbbs.service/hbbr.service that rdctl did
	// not write.
	OriginCustom = deploy.OriginCustom
	// OriginCompose: a compose stack (found by internal/compose).
	OriginCompose = deploy.OriginCompose
)

// DebianWorkingDir is the Debian units' working directory. The hbbs
// package's postrm deletes it on purge, keys and database included.
const DebianWorkingDir = "/var/lib/rustdesk-server"

// Candidate is a pair of unit names to look for.
type Candidate struct {
	Origin     string
	HBBS, HBBR string
}

// Candidates are the installs Detect looks for, in this order.
var Candidates = []Candidate{
	{OriginDebian, "rustdesk-hbbs.service", "rustdesk-hbbr.service"},
	{OriginInstallerScript, "rustdesksignal.service", "rustdeskrelay.service"},
	{OriginRdctl, deploy.DefaultHBBSUnit, deploy.DefaultHBBRUnit},
}

// Severity ranks a finding.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Finding is one thing worth telling about an install. Whoever detects
// the problem makes the finding, so callers tell findings apart by ID and
// Severity, never by Message.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Hint names the next step; may be "".
	Hint string `json:"hint,omitempty"`
}

// IDs of findings made in more than one place (units here, compose stacks
// in internal/compose, doctor's checks).
const (
	FindingSplitWorkingDirs = "split-working-dirs"
	// FindingKeysInContainerLayer: no mount covers hbbs's working
	// directory, so a recreated container makes a new key.
	FindingKeysInContainerLayer = "keys-in-container-layer"
	FindingNoSecretKey          = "no-secret-key"
	FindingHBBREnforcesKey      = "hbbr-enforces-key"
	// FindingHBBSEnforcesKey is doctor's check that hbbs enforces the key
	// in id_ed25519 (what hbbs 1.1.16 was measured to make of the file).
	FindingHBBSEnforcesKey = "hbbs-enforces-key"
	// FindingKeyFileUnenforced: id_ed25519 is there but makes hbbs enforce
	// no key at all (halves that disagree, not UTF-8, a directory).
	FindingKeyFileUnenforced = "key-file-unenforced"
	// FindingBindNeeds1117: the units pass -b, which hbbs 1.1.16 refuses
	// (it exits 1); only 1.1.17 and later have it.
	FindingBindNeeds1117 = "bind-needs-1.1.17"
	// FindingCustomPort: hbbs or hbbr listens on another port than
	// 21116 or 21117 (-p, or PORT), which rdctl's firewall rules, proxy
	// sites and doctor's ports-listening do not follow.
	FindingCustomPort = "custom-port"
)

// HasError reports whether any finding is an error (adopt records no
// compose stack with one unless forced).
func HasError(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Service is how one of hbbs and hbbr is configured to run.
type Service struct {
	Unit *UnitFile `json:"unit"`
	// Program is the executable ExecStart= runs.
	Program string `json:"program"`
	// User runs the service: "root" when User= is empty or unset.
	User string `json:"user"`
	// WorkingDir is WorkingDirectory= ("/" when unset, as systemd runs it).
	WorkingDir string `json:"working_dir"`
	// Key is what the -k/KEY setting makes the server do.
	Key KeyKind `json:"key"`
	// KeySource is where Key came from: "-k", "Environment=",
	// "EnvironmentFile=", ".env" or "default".
	KeySource string `json:"key_source"`
	// LogFile is where the server's output goes when StandardOutput=
	// sends it to a file (the Debian units' hbbs.log): hbbs and hbbr log
	// everything on stdout, the "Fatal error" line included, so that file
	// and not the journal says why one stopped.
	LogFile string `json:"log_file,omitempty"`

	// args is the command line; its key may be a secret: it is
	// classified, never copied out.
	args serverargs.Args
	env  envVars // Environment= and EnvironmentFile=, process environment
	dot  envVars // the working directory's .env
	// exposed names the places where a secret key given directly can be
	// read by other users.
	exposed []string
	// untrustedEnv are EnvironmentFile= paths rdctl did not read: others
	// than root could write them.
	untrustedEnv []string
}

// Install is a detected hbbs/hbbr install.
type Install struct {
	Origin string   `json:"origin"`
	HBBS   *Service `json:"hbbs"`
	HBBR   *Service `json:"hbbr"`
	// Relay is the first relay hbbs advertises (-r or relay-servers=),
	// with port 21117 added when missing; empty when none is set.
	Relay string `json:"relay,omitempty"`
	// RelaySource is where Relay came from: "-r", "Environment=" or ".env".
	RelaySource string `json:"relay_source,omitempty"`
	Bind        string `json:"bind,omitempty"`
	TailnetOnly bool   `json:"tailnet_only"`

	// SecretPresent, SecretMode, PublicKey and Fingerprint describe
	// id_ed25519 in hbbs's working directory.
	SecretPresent bool   `json:"secret_present"`
	SecretMode    string `json:"secret_mode,omitempty"`
	PublicKey     string `json:"public_key,omitempty"`
	Fingerprint   string `json:"fingerprint,omitempty"`

	Findings []Finding `json:"findings"`
}

func (in *Install) add(id string, sev Severity, format string, a ...any) {
	in.Findings = append(in.Findings, Finding{ID: id, Severity: sev, Message: fmt.Sprintf(format, a...)})
}

// Problems counts the findings that are errors or warnings.
func (in *Install) Problems() int {
	n := 0
	for _, f := range in.Findings {
		if f.Severity != SeverityInfo {
			n++
		}
	}
	return n
}

// Detect looks under root for every install in [Candidates] and inspects
// each one found. A masked hbbs unit (a removed package) does not count.
func Detect(root string) ([]*Install, error) {
	var out []*Install
	for _, c := range Candidates {
		in, err := Inspect(root, c.Origin, c.HBBS, c.HBBR)
		if errors.Is(err, ErrNoUnit) {
			continue
		}
		if err != nil {
			return out, err
		}
		if in.HBBS.Unit.Masked {
			continue
		}
		out = append(out, in)
	}
	return out, nil
}

// Inspect reads the install made of the units hbbsUnit and hbbrUnit under
// root. It fails with ErrNoUnit when there is no hbbs unit; a missing hbbr
// unit is a finding. Origin OriginRdctl becomes OriginCustom when the hbbs
// unit does not carry rdctl's header.
func Inspect(root, origin, hbbsUnit, hbbrUnit string) (*Install, error) {
	in := &Install{Origin: origin}
	hbbs, err := loadService(root, hbbsUnit, false)
	if err != nil {
		return nil, err
	}
	in.HBBS = hbbs
	if hbbs.Unit.Masked {
		in.add("masked", SeverityInfo, "%s is masked (linked to /dev/null): the package was removed", hbbsUnit)
		return in, nil
	}
	if origin == OriginRdctl && !hbbs.Unit.WrittenByRdctl {
		in.Origin = OriginCustom
	}
	if hbbrUnit != "" {
		hbbr, err := loadService(root, hbbrUnit, true)
		switch {
		case errors.Is(err, ErrNoUnit):
			in.add("no-hbbr-unit", SeverityError, "there is no %s: rdctl operates hbbs and hbbr together", hbbrUnit)
		case err != nil:
			return nil, err
		case hbbr.Unit.Masked:
			in.add("no-hbbr-unit", SeverityError, "%s is masked: rdctl operates hbbs and hbbr together", hbbrUnit)
		default:
			in.HBBR = hbbr
		}
	}
	in.analyse(root)
	return in, nil
}

// loadService loads a unit and works out how it runs its server, hbbr's
// when relay is set (the two read their settings differently).
func loadService(root, name string, relay bool) (*Service, error) {
	u, err := LoadUnit(root, name)
	if err != nil {
		return nil, err
	}
	s := &Service{Unit: u, User: "root", WorkingDir: "/"}
	if u.Masked {
		return s, nil
	}
	argv, err := u.Exec()
	if err != nil {
		return nil, fmt.Errorf("%s: ExecStart=: %w", u.Path, err)
	}
	if len(argv) > 0 {
		s.Program = argv[0]
		s.args = serverargs.Parse(argv)
	}
	if v, _ := u.Value("Service", "User"); v != "" && v != "0" {
		s.User = v
	} else if dyn, _ := u.Value("Service", "DynamicUser"); isTrue(dyn) {
		s.User = strings.TrimSuffix(name, ".service") // systemd names the dynamic user after the unit
	}
	if wd, ok := u.Value("Service", "WorkingDirectory"); ok && wd != "" {
		wd = strings.TrimPrefix(wd, "-")
		if wd == "~" {
			wd = homeOf(root, s.User)
		}
		s.WorkingDir = path.Clean(wd)
	}
	s.LogFile = outputFile(u)
	unitEnv := parseEnvironment(u.Values("Service", "Environment")).from("Environment= in " + u.Path)
	if unitEnv.holdsSecret() {
		s.exposed = append(s.exposed, u.Path+" (unit files are world-readable)")
	}
	// systemd applies EnvironmentFile= after Environment=: the last
	// assignment wins.
	s.env = slices.Clone(unitEnv)
	fromFiles := false
	for _, f := range u.Values("Service", "EnvironmentFile") {
		for _, p := range strings.Fields(f) {
			p = strings.TrimPrefix(p, "-")
			data, info, err := readSmall(under(root, p))
			if err != nil {
				continue // systemd refuses to start without a non-optional one; not ours to judge
			}
			// rdctl runs as root: a file the service user (or anyone but
			// root and rdctl's caller) could write must not steer it.
			if why := untrusted(under(root, p), info); why != "" {
				s.untrustedEnv = append(s.untrustedEnv, p+" ("+why+")")
				continue
			}
			vars := parseEnvFile(data).from(p)
			if _, ok := vars.exact("KEY"); ok {
				fromFiles = true
			}
			s.env = append(s.env, vars...)
			if vars.holdsSecret() && info.Mode.Perm()&0o077 != 0 {
				s.exposed = append(s.exposed, fmt.Sprintf("%s (mode %04o)", p, info.Mode.Perm()))
			}
		}
	}
	if data, info, err := readSmall(under(root, path.Join(s.WorkingDir, ".env"))); err == nil {
		s.dot = parseEnvFile(data).from(path.Join(s.WorkingDir, ".env"))
		if s.dot.holdsSecret() && info.Mode.Perm()&0o077 != 0 {
			s.exposed = append(s.exposed, fmt.Sprintf("%s (mode %04o)", path.Join(s.WorkingDir, ".env"), info.Mode.Perm()))
		}
	}
	// Where the key setting comes from (hbbs's init_args, as measured on
	// 1.1.16): the command line wins. hbbs then takes its .env over the
	// process environment (it sets each .env line, name normalised, into its
	// environment) and reads the environment's KEY by that exact name; hbbr
	// reads KEY by its exact name only, from the environment, else from .env
	// (dotenv does not override the environment).
	key, keySet := s.args.Key()
	envKey, inEnv := s.env.exact("KEY")
	dotKey, inDot := s.dot.exact("KEY")
	if !relay {
		dotKey, inDot = s.dot.normalised("KEY")
	}
	switch {
	case keySet:
		s.Key, s.KeySource = classifyKey(key), "-k"
		if s.Key == KeySecret {
			s.exposed = append(s.exposed, "the command line (ExecStart= of "+u.Path+", and ps for every user)")
		}
	case inDot && (!relay || !inEnv):
		s.Key, s.KeySource = classifyKey(dotKey), ".env"
	case inEnv:
		s.Key, s.KeySource = classifyKey(envKey), "Environment="
		if fromFiles {
			s.KeySource = "EnvironmentFile="
		}
	default:
		s.KeySource = "default"
	}
	return s, nil
}

// outputFile is the file StandardOutput= appends or writes to, if any.
func outputFile(u *UnitFile) string {
	v, _ := u.Value("Service", "StandardOutput")
	for _, prefix := range []string{"append:", "file:", "truncate:"} {
		if f, ok := strings.CutPrefix(v, prefix); ok && path.IsAbs(f) {
			return path.Clean(f)
		}
	}
	return ""
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true
	}
	return false
}

// homeOf is the home directory of user in root's /etc/passwd ("/root" for
// root, "/" when unknown).
func homeOf(root, user string) string {
	if user == "root" {
		return "/root"
	}
	data, _, err := readSmall(under(root, "/etc/passwd"))
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[0] == user {
				return f[5]
			}
		}
	}
	return "/"
}

// readSmall reads a regular file without following a symlink at its last
// component.
// untrusted says why a file rdctl (as root) read must not be trusted, or
// "": owned by someone other than root and rdctl's own user, writable by
// group or others, or in a directory that is.
func untrusted(p string, info safefs.Info) string {
	me := os.Geteuid()
	if info.UID != 0 && info.UID != me {
		return fmt.Sprintf("owned by uid %d", info.UID)
	}
	if info.Mode.Perm()&0o022 != 0 {
		return fmt.Sprintf("mode %04o: writable by group or others", info.Mode.Perm())
	}
	dir, err := os.Lstat(path.Dir(p))
	if err != nil {
		return "its directory cannot be read"
	}
	if st, ok := dir.Sys().(*syscall.Stat_t); ok && int(st.Uid) != 0 && int(st.Uid) != me {
		return fmt.Sprintf("in a directory owned by uid %d", st.Uid)
	}
	if dir.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("in a directory others can write (mode %04o)", dir.Mode().Perm())
	}
	return ""
}

func readSmall(p string) ([]byte, safefs.Info, error) {
	d, err := safefs.OpenDir(path.Dir(p))
	if err != nil {
		return nil, safefs.Info{}, err
	}
	defer d.Close()
	return d.ReadFile(path.Base(p), maxUnitSize)
}

// customPort is the port s listens on when it is not its default, and
// where that comes from: -p first; then, for hbbs, PORT from its .env
// (which it loads over the environment) or the environment; for hbbr,
// PORT + 1 from the environment, else from .env (as measured on 1.1.16: a
// .env shared with hbbs, PORT=21116, gives hbbr 21117).
func (s *Service) customPort(relay bool) (port int, where string, ok bool) {
	def, v, src := 21116, "", ""
	envPort, inEnv := s.env.exact("PORT")
	dotPort, inDot := s.dot.normalised("PORT")
	if relay {
		def = 21117
		dotPort, inDot = s.dot.exact("PORT")
	}
	plus := 0
	switch p, set := s.args.Port(); {
	case set:
		v, src = p, "-p"
	case !relay && inDot:
		v, src = dotPort, "PORT in .env"
	case inEnv:
		v, src = envPort, "PORT in its environment"
	case inDot:
		v, src = dotPort, "PORT in .env"
	default:
		return 0, "", false
	}
	if relay && src != "-p" {
		plus, src = 1, src+", plus 1"
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n+plus == def {
		return 0, "", false
	}
	return n + plus, src, true
}

// analyse fills in the relay, the key files' state and the findings.
func (in *Install) analyse(root string) {
	hbbs, hbbr := in.HBBS, in.HBBR
	if hbbs.Key == "" {
		hbbs.Key = KeyDefault
	}
	if hbbr != nil && hbbr.Key == "" {
		hbbr.Key = KeyNone
	}
	in.findRelay()
	if bind, ok := hbbs.args.Bind(); ok {
		in.Bind = bind
		// Files do not say which hbbs runs; the flag is only fine on 1.1.17+.
		in.add(FindingBindNeeds1117, SeverityInfo, "%s passes -b %s, which hbbs 1.1.16 does not have (it exits 1 on it): this needs hbbs and hbbr 1.1.17 or later", hbbs.Unit.Name, bind)
	}
	for _, s := range []*Service{hbbs, hbbr} {
		if s == nil {
			continue
		}
		if port, where, ok := s.customPort(s == hbbr); ok {
			in.add(FindingCustomPort, SeverityWarning, "%s listens on port %d (%s), not on %d: rdctl's firewall rules, proxy sites and doctor's ports-listening assume the default ports 21115-21119; run it on them, with a port forward for clients that are given other ports",
				s.Unit.Name, port, where, map[bool]int{false: 21116, true: 21117}[s == hbbr])
		}
	}
	deny, _ := hbbs.Unit.Value("Service", "IPAddressDeny")
	allow, _ := hbbs.Unit.Value("Service", "IPAddressAllow")
	in.TailnetOnly = deny == "any" && strings.Contains(allow, "100.64.0.0/10")

	for _, s := range []*Service{hbbs, hbbr} {
		if s != nil && s.User == "root" {
			in.add("runs-as-root", SeverityWarning, "%s runs as root (User= is empty or unset): a flaw in it would own the host", s.Unit.Name)
		}
	}
	if !hbbs.Unit.hasSetting("Service", "WorkingDirectory") {
		in.add("no-working-dir", SeverityWarning, "%s sets no WorkingDirectory=: hbbs keeps its key and database in /", hbbs.Unit.Name)
	}
	if hbbs.WorkingDir == DebianWorkingDir {
		in.add("purge-deletes-keys", SeverityWarning, "the keys are in %s, which `apt purge rustdesk-server-hbbs` deletes with everything in it; back them up (rdctl rotate keeps backups) and never purge the package",
			DebianWorkingDir)
	}

	// The key hbbs serves.
	switch hbbs.Key {
	case KeyEmpty:
		in.add("hbbs-key-unenforced", SeverityWarning, "hbbs is given an empty key (%s): it accepts clients with any key", hbbs.KeySource)
	case KeyPublic, KeyLiteral:
		in.add("hbbs-key-no-signing", SeverityWarning, "hbbs is given a key string that is not a secret key (%s): it enforces it but signs nothing, so clients fall back to unencrypted handshakes; use -k _", hbbs.KeySource)
	case KeySecret:
		in.add("key-not-from-file", SeverityError, "hbbs takes its secret key from %s, not from %s: rotating the file would not change the key it serves", hbbs.KeySource, keys.SecretFile)
	}
	for _, s := range []*Service{hbbs, hbbr} {
		if s != nil {
			for _, where := range s.exposed {
				in.add("secret-exposed", SeverityError, "the secret key given to %s can be read by other users in %s", s.Unit.Name, where)
			}
		}
	}
	if hbbr != nil {
		switch {
		case !hbbr.Key.Enforced():
			in.add("hbbr-key-unenforced", SeverityWarning, "hbbr checks no key (no -k and no KEY in its environment or .env): anyone can use the relay")
		case hbbr.Key.UsesFile() && hbbr.WorkingDir != hbbs.WorkingDir:
			in.add(FindingSplitWorkingDirs, SeverityError, "hbbr loads its key from %s but hbbs from %s: hbbr generates a pair of its own there and rejects hbbs's clients",
				hbbr.WorkingDir, hbbs.WorkingDir)
		}
	}

	// The key files.
	if d, err := safefs.OpenDir(under(root, hbbs.WorkingDir)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			in.add("no-key-yet", SeverityInfo, "%s does not exist yet: hbbs creates it and a key pair at first start", hbbs.WorkingDir)
		} else {
			in.add("key-unreadable", SeverityError, "cannot read %s: %v", hbbs.WorkingDir, err)
		}
	} else {
		st, _ := keys.Inspect(d)
		d.Close()
		in.SecretPresent = st.SecretPresent
		switch {
		case !st.SecretPresent:
			in.add("no-key-yet", SeverityInfo, "no %s in %s yet: hbbs creates a pair at first start", keys.SecretFile, hbbs.WorkingDir)
		case !st.Valid && st.Verdict == keys.VerdictUnenforced:
			in.add(FindingKeyFileUnenforced, SeverityError, "%s in %s is not a valid key pair, and hbbs starts with it but enforces no key at all: %v", keys.SecretFile, hbbs.WorkingDir, st.SecretErr)
		case !st.Valid && st.Verdict == keys.VerdictFatal:
			in.add("key-invalid", SeverityError, "%s in %s is unusable: hbbs exits on it (\"Fatal error: malformed private key\"): %v", keys.SecretFile, hbbs.WorkingDir, st.SecretErr)
		case !st.Valid:
			in.add("key-invalid", SeverityError, "%s in %s is unusable: %v", keys.SecretFile, hbbs.WorkingDir, st.SecretErr)
		default:
			in.PublicKey, in.Fingerprint = st.Pair.PublicBase64(), st.Pair.Fingerprint()
			if st.PubPresent && !st.PubMatches {
				in.add("pub-mismatch", SeverityWarning, "%s does not agree with %s; hbbs serves the key derived from the secret (rdctl doctor --fix rewrites it)", keys.PublicFile, keys.SecretFile)
			}
		}
		if st.SecretPresent && st.SecretInfo.Mode.IsRegular() {
			in.SecretMode = fmt.Sprintf("%04o", st.SecretInfo.Mode.Perm())
			if st.SecretInfo.Mode.Perm()&0o077 != 0 {
				in.add("secret-readable", SeverityError, "%s is readable by group or others (mode %04o): any local user can impersonate the server",
					path.Join(hbbs.WorkingDir, keys.SecretFile), st.SecretInfo.Mode.Perm())
			}
		}
	}
}

// findRelay reads hbbs's relay setting: -r, else relay-servers in .env,
// else RELAY-SERVERS in the process environment.
func (in *Install) findRelay() {
	s := in.HBBS
	v, relaySet := s.args.Relay()
	// As hbbs 1.1.16 reads it (its init_args): its .env by any spelling,
	// over the environment, which counts only by the dashed name.
	dotRelay, _ := s.dot.normalised("RELAY-SERVERS")
	envRelay, _ := s.env.exact("RELAY-SERVERS")
	switch {
	case relaySet:
		in.RelaySource = "-r"
	case dotRelay != "":
		v, in.RelaySource = dotRelay, ".env"
	case envRelay != "":
		v, in.RelaySource = envRelay, "Environment="
	default:
		in.add("no-relay", SeverityInfo, "hbbs advertises no relay (-r): clients fall back to their own relay setting, then the ID server's port+1")
		return
	}
	var relays []deploy.HostPort
	for _, entry := range serverargs.SplitRelays(v) {
		hp, err := deploy.ParseHostPort("relay", entry)
		if err != nil {
			in.add("relay-invalid", SeverityWarning, "a relay hbbs advertises (%s) is not a valid host[:port], and hbbs drops it at startup: %v", in.RelaySource, err)
			continue
		}
		relays = append(relays, hp.WithDefaultPort(deploy.RelayPort))
	}
	if len(relays) > 1 {
		in.add("relay-list", SeverityInfo, "hbbs advertises %d relays and hands them out in turn, with no health check: rdctl records and checks every one", len(relays))
	}
	list := deploy.JoinRelays(relays)
	if _, err := deploy.ParseRelays("relay", list); err != nil || len(relays) == 0 {
		if err != nil {
			in.add("relay-invalid", SeverityWarning, "the relays hbbs advertises (%s) cannot be recorded: %v", in.RelaySource, err)
		}
		in.RelaySource = ""
		return
	}
	in.Relay = list
}

func (u *UnitFile) hasSetting(section, name string) bool {
	v, ok := u.Value(section, name)
	return ok && v != ""
}

// RecordOptions complete what the unit files cannot say.
type RecordOptions struct {
	// IDHost is the ID server clients are configured with; required.
	IDHost string
	// Relay overrides the relay found in the units, if set.
	Relay string
}

// Record builds the deployment record for the install. Its values are
// validated as if typed by a user.
func (in *Install) Record(o RecordOptions) (*deploy.Record, error) {
	if in.HBBR == nil {
		return nil, fmt.Errorf("no hbbr unit next to %s: rdctl operates hbbs and hbbr together", in.HBBS.Unit.Name)
	}
	relay := in.Relay
	if o.Relay != "" {
		hps, err := deploy.ParseRelays("--relay", o.Relay)
		if err != nil {
			return nil, err
		}
		relay = deploy.JoinRelays(hps)
	}
	r := &deploy.Record{
		Format: 1, Backend: deploy.BackendSystemd, Origin: in.Origin,
		IDHost: o.IDHost, Relay: relay, Bind: in.Bind, TailnetOnly: in.TailnetOnly,
		WorkingDir: in.HBBS.WorkingDir, ServiceUser: in.HBBS.User,
		HBBSUnit: in.HBBS.Unit.Name, HBBRUnit: in.HBBR.Unit.Name,
		HBBREnforcesKey: in.HBBR.Key.Enforced(),
	}
	if in.HBBS.Program != "" && path.IsAbs(in.HBBS.Program) {
		r.BinDir = path.Dir(in.HBBS.Program)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}
