// Package doctor is rdctl's troubleshooting table made executable: each
// check looks at one thing that breaks or weakens a RustDesk server (key
// file modes and owners, a .pub that disagrees, stray key copies, readable
// backups, hbbr not enforcing the key, a relay that does not resolve, units
// failing, ports closed), says what it found, and where the repair is safe
// carries a Fix that makes it through safefs.
//
// Under an image root only files are read: no unit state, no sockets, no
// DNS (relay names are checked for syntax only).
package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/systemd"
)

// Severity ranks a failed check: errors break the server or expose its key,
// warnings weaken it, info is for the record.
type Severity = adopt.Severity

const (
	SeverityError   = adopt.SeverityError
	SeverityWarning = adopt.SeverityWarning
	SeverityInfo    = adopt.SeverityInfo
)

// Check is one row of the table.
type Check struct {
	ID       string   `json:"id"`
	OK       bool     `json:"ok"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Fixable is true when the check failed and Fix can repair it.
	Fixable bool `json:"fixable"`
	// Skipped is true when the check could not run here (an image root,
	// an unknown user); it then counts as OK.
	Skipped bool `json:"skipped,omitempty"`
	// Hint names the next step for a failed check; may be "".
	Hint string `json:"hint,omitempty"`
	// Fix repairs the problem through safefs and says what it changed. It
	// is nil unless Fixable. It runs as a step of FixPlan, under rdctl's
	// lock.
	Fix func() (change string, err error) `json:"-"`
}

// Problem reports whether the check failed with an error or a warning.
func (c Check) Problem() bool { return !c.OK && c.Severity != SeverityInfo }

// Resolver looks up host names; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Input is what the checks look at.
type Input struct {
	// Root is the image tree; "" is the live system.
	Root string
	// Record is the deployment record.
	Record *deploy.Record
	// Accounts resolves the service user (an image's own /etc/passwd
	// under Root).
	Accounts Accounts
	// BackupOwner should own backups/ and staged/ in rdctl's state
	// directory: root on a live host, so the service user cannot read old
	// keys.
	BackupOwner keys.Owner

	// Live only (ignored under Root):
	// Units are the units' states as systemd reports them; UnitsErr is
	// why they could not be read.
	Units    []systemd.UnitState
	UnitsErr error
	// Containers is the compose stack's state as the Docker engine reports
	// it (compose backend); ContainersErr is why it could not be read.
	Containers    *compose.StackStatus
	ContainersErr error
	// Listeners are the listening sockets; ListenersErr why they could not
	// be read.
	Listeners    []Listener
	ListenersErr error
	// Resolver resolves the relay host; nil means net.DefaultResolver.
	Resolver Resolver
	// RelayProber probes each relay; nil means rdctl check's relay probe.
	RelayProber RelayProber
	// ResolveTimeout bounds the lookup; zero means 2 s.
	ResolveTimeout time.Duration

	// logs says where to read why a unit stopped (set by unitChecks).
	logs string
}

// KeyDirs are the places a hbbs key is commonly found: the Docker images'
// working directories (/root classic, /data s6), the Debian package's,
// the installer scripts' and rdctl's. A key in one of them that is not the
// working directory is a stray copy or a second server.
var KeyDirs = []string{"/root", "/data", adopt.DebianWorkingDir, "/opt/rustdesk", deploy.DefaultWorkingDir, "/opt/rustdesk-server/data"}

func (in *Input) under(p string) string {
	if in.Root == "" {
		return p
	}
	return filepath.Join(in.Root, p)
}

func (in *Input) live() bool { return in.Root == "" }

type checks []Check

func (cs *checks) ok(id, format string, a ...any) {
	*cs = append(*cs, Check{ID: id, OK: true, Severity: SeverityInfo, Message: fmt.Sprintf(format, a...)})
}

func (cs *checks) fail(id string, sev Severity, format string, a ...any) *Check {
	*cs = append(*cs, Check{ID: id, Severity: sev, Message: fmt.Sprintf(format, a...)})
	return &(*cs)[len(*cs)-1]
}

func (cs *checks) skip(id, format string, a ...any) {
	*cs = append(*cs, Check{ID: id, OK: true, Skipped: true, Severity: SeverityInfo, Message: fmt.Sprintf(format, a...)})
}

func (c *Check) fix(f func() (string, error)) {
	c.Fixable, c.Fix = true, f
}

// Run runs every check and returns them in a stable order. It changes
// nothing.
func Run(ctx context.Context, in Input) []Check {
	cs := in.fileChecks()
	in.duplicateKeys(&cs)
	in.logs = in.unitChecks(&cs)
	if in.Record.Backend == deploy.BackendCompose {
		in.composeSettingsChecks(&cs)
	}
	in.relayCheck(ctx, &cs)
	in.proxyChecks(&cs)
	if in.live() {
		in.liveChecks(&cs)
		in.relayReachable(ctx, &cs)
	} else {
		cs.skip("units-running", "not checked in an image tree (--root)")
		cs.skip("ports-listening", "not checked in an image tree (--root)")
	}
	return cs
}

// fileChecks are the checks of the working directory's files: the key
// files' validity, modes and owners, the directory's mode, backups/ and
// staged/. Every fixable check is one of them, and they read files only,
// so a fix step runs them again to see whether its problem is still there.
func (in *Input) fileChecks() checks {
	var cs checks
	wd := in.under(in.Record.WorkingDir)
	owner, ownerKnown := serviceOwner(in)
	in.keyChecks(&cs, wd, owner, ownerKnown)
	in.dirChecks(&cs, wd, owner)
	return cs
}

// serviceOwner is who should own the key files: the service user, or root
// when the service runs as root (an adopted Debian install, the compose
// images).
func serviceOwner(in *Input) (keys.Owner, bool) {
	return in.Accounts.LookupUser(serviceUserName(in.Record))
}

// serviceUserName is the record's service user; unset, it is rdctl's
// default on systemd (as the units are rendered) and root in the compose
// images, which run hbbs and hbbr as root.
func serviceUserName(rec *deploy.Record) string {
	switch {
	case rec.ServiceUser != "":
		return rec.ServiceUser
	case rec.Backend == deploy.BackendCompose:
		return "root"
	default:
		return deploy.DefaultServiceUser
	}
}

func (in *Input) keyChecks(cs *checks, wd string, owner keys.Owner, ownerKnown bool) {
	user := serviceUserName(in.Record)
	d, err := safefs.OpenDir(wd)
	if err != nil {
		cs.fail("working-dir", SeverityError, "cannot open the working directory %s: %v", wd, err)
		return
	}
	d.Close()
	cs.ok("working-dir", "the working directory %s exists", wd)
	st, err := inspect(wd)
	if err != nil {
		cs.fail("secret-key", SeverityError, "cannot read the key files in %s: %v", wd, err)
		return
	}
	switch {
	case !st.SecretPresent:
		cs.fail("secret-key", SeverityError, "there is no %s in %s: hbbs will generate a new pair, and clients configured with the old key will see \"Key mismatch\"", keys.SecretFile, wd)
	case !st.Valid && st.Verdict == keys.VerdictFatal:
		cs.fail("secret-key", SeverityError, "%s in %s is unusable: hbbs exits on it (\"Fatal error: malformed private key\", on its stdout): %v", keys.SecretFile, wd, st.SecretErr)
	case !st.Valid && st.Verdict == keys.VerdictUnenforced:
		cs.fail("secret-key", SeverityError, "%s in %s is not a valid key pair: hbbs starts with it but enforces no key (see %s): %v", keys.SecretFile, wd, adopt.FindingHBBSEnforcesKey, st.SecretErr)
	case !st.Valid:
		cs.fail("secret-key", SeverityError, "%s in %s is unusable: %v", keys.SecretFile, wd, st.SecretErr)
	default:
		cs.ok("secret-key", "%s is a valid key pair, fingerprint %s", keys.SecretFile, st.Pair.Fingerprint())
	}
	// What hbbs makes of the file (measured on 1.1.16): a secret whose halves
	// disagree, content that is not UTF-8 or a directory at id_ed25519 let
	// it start and check no key at all, which looks like a working server.
	switch st.Verdict {
	case keys.VerdictUnenforced:
		cs.fail(adopt.FindingHBBSEnforcesKey, SeverityError, "hbbs starts with what is at %s but enforces no key at all: it serves clients whatever key they were given; put a backup back (rdctl backups list, rdctl rotate --restore STAMP)",
			filepath.Join(wd, keys.SecretFile))
	case keys.VerdictUnknown:
		cs.skip(adopt.FindingHBBSEnforcesKey, "cannot tell what hbbs makes of %s (%v)", filepath.Join(wd, keys.SecretFile), st.SecretErr)
	case keys.VerdictFatal:
		cs.ok(adopt.FindingHBBSEnforcesKey, "hbbs does not start with this %s (see secret-key), so it serves no client unchecked", keys.SecretFile)
	case keys.VerdictAbsent:
		cs.ok(adopt.FindingHBBSEnforcesKey, "hbbs generates a key pair and enforces it (see secret-key)")
	default:
		cs.ok(adopt.FindingHBBSEnforcesKey, "hbbs enforces the key in %s", keys.SecretFile)
	}
	if !st.SecretPresent || !st.SecretInfo.IsRegular() {
		return
	}
	secretPath := filepath.Join(wd, keys.SecretFile)
	if m := st.SecretInfo.Mode.Perm(); m != keys.SecretMode {
		c := cs.fail("secret-mode", SeverityError, "%s has mode %04o, not 0600", secretPath, m)
		if m&0o077 != 0 {
			c.Message += ": other local users can read the server's secret key"
		}
		c.fix(func() (string, error) {
			return fixOwnerMode(wd, keys.SecretFile, keys.SecretMode, safefs.KeepOwner, safefs.KeepOwner)
		})
	} else {
		cs.ok("secret-mode", "%s has mode 0600", secretPath)
	}
	// In an image, rdctl's install leaves the state directory to root and
	// systemd's StateDirectory= hands it to the service user at first start.
	rootUntilBoot := !in.live() && in.Record.Origin == adopt.OriginRdctl && stateDirManaged(in.Record.WorkingDir) &&
		st.SecretInfo.UID == 0 && st.SecretInfo.GID == 0
	switch {
	case rootUntilBoot:
		cs.ok("secret-owner", "%s is owned by root; systemd's StateDirectory= hands it to %s at first start", secretPath, user)
		ownerKnown, owner = true, keys.Owner{UID: 0, GID: 0}
	case !ownerKnown:
		cs.skip("secret-owner", "the service user %s does not exist%s; owners not checked", user, map[bool]string{true: "", false: " in the image's /etc/passwd"}[in.live()])
	case st.SecretInfo.UID != owner.UID || st.SecretInfo.GID != owner.GID:
		c := cs.fail("secret-owner", SeverityError, "%s is owned by %d:%d, not by the service user %s (%d:%d)", secretPath,
			st.SecretInfo.UID, st.SecretInfo.GID, user, owner.UID, owner.GID)
		c.fix(func() (string, error) {
			return fixOwnerMode(wd, keys.SecretFile, keys.SecretMode, owner.UID, owner.GID)
		})
	default:
		cs.ok("secret-owner", "%s is owned by the service user %s", secretPath, user)
	}
	if !st.Valid {
		return
	}
	pubPath := filepath.Join(wd, keys.PublicFile)
	pair := st.Pair
	pubOwner := owner
	if !ownerKnown {
		pubOwner = keys.Owner{UID: st.SecretInfo.UID, GID: st.SecretInfo.GID}
	}
	rewrite := func() (string, error) {
		d, err := safefs.OpenDir(wd)
		if err != nil {
			return "", err
		}
		defer d.Close()
		changed, err := d.WriteFile(keys.PublicFile, pair.PublicFileBytes(), safefs.FileOptions{Mode: keys.PublicMode, UID: pubOwner.UID, GID: pubOwner.GID})
		if err != nil || !changed {
			return "", err
		}
		return fmt.Sprintf("rewrote %s from the secret key (%s)", pubPath, pair.Fingerprint()), nil
	}
	switch {
	case !st.PubPresent:
		cs.fail("public-key-file", SeverityWarning, "there is no %s: people and scripts that read it get nothing", pubPath).fix(rewrite)
	case st.PubErr != nil:
		cs.fail("public-key-file", SeverityWarning, "%s is unusable: %v", pubPath, st.PubErr).fix(rewrite)
	case !st.PubMatches:
		cs.fail("public-key-file", SeverityError, "%s holds %s, but hbbs serves %s (derived from the secret): clients configured from the file see \"Key mismatch\"",
			pubPath, st.PubKey, pair.PublicBase64()).fix(rewrite)
	case st.PubInfo.Mode.Perm() != keys.PublicMode || (ownerKnown && (st.PubInfo.UID != owner.UID || st.PubInfo.GID != owner.GID)):
		cs.fail("public-key-file", SeverityWarning, "%s has mode %04o and owner %d:%d, not 0644 and the service user's",
			pubPath, st.PubInfo.Mode.Perm(), st.PubInfo.UID, st.PubInfo.GID).fix(func() (string, error) {
			return fixOwnerMode(wd, keys.PublicFile, keys.PublicMode, pubOwner.UID, pubOwner.GID)
		})
	default:
		cs.ok("public-key-file", "%s agrees with the secret key", pubPath)
	}
}

// stateDirManaged reports whether rdctl's units manage wd with
// StateDirectory= (a directory directly under /var/lib), as
// internal/systemd renders them.
func stateDirManaged(wd string) bool {
	rel, ok := strings.CutPrefix(path.Clean(wd), "/var/lib/")
	return ok && rel != "" && !strings.Contains(rel, "/")
}

func inspect(dir string) (keys.State, error) {
	d, err := safefs.OpenDir(dir)
	if err != nil {
		return keys.State{}, err
	}
	defer d.Close()
	return keys.Inspect(d)
}

// fixOwnerMode sets a file's mode and owner on its descriptor (never
// following a symlink) and describes the change.
func fixOwnerMode(dir, name string, mode fs.FileMode, uid, gid int) (string, error) {
	d, err := safefs.OpenDir(dir)
	if err != nil {
		return "", err
	}
	defer d.Close()
	before, err := d.Lstat(name)
	if err != nil {
		return "", err
	}
	changed, err := d.FixOwnerMode(name, safefs.FileOptions{Mode: mode, UID: uid, GID: gid})
	if err != nil || !changed {
		return "", err
	}
	after, err := d.Lstat(name)
	if err != nil {
		return "", err
	}
	return describeChange(d.Join(name), before, after), nil
}

func describeChange(p string, before, after safefs.Info) string {
	var parts []string
	if before.Mode.Perm() != after.Mode.Perm() {
		parts = append(parts, fmt.Sprintf("mode %04o -> %04o", before.Mode.Perm(), after.Mode.Perm()))
	}
	if before.UID != after.UID || before.GID != after.GID {
		parts = append(parts, fmt.Sprintf("owner %d:%d -> %d:%d", before.UID, before.GID, after.UID, after.GID))
	}
	return fmt.Sprintf("%s: %s", p, strings.Join(parts, ", "))
}

// dirChecks: the working directory must not be writable by others (they
// could swap the key), and backups/ and staged/ in rdctl's state directory
// (deploy.StateDirFor) must keep old and next keys from the service user.
func (in *Input) dirChecks(cs *checks, wd string, owner keys.Owner) {
	d, err := safefs.OpenDir(wd)
	if err != nil {
		return
	}
	defer d.Close()
	if info, err := d.Stat(); err == nil {
		if m := info.Mode.Perm(); m&0o022 != 0 {
			c := cs.fail("working-dir-mode", SeverityError, "the working directory %s has mode %04o: others can replace the key files in it", wd, m)
			c.fix(func() (string, error) {
				d, err := safefs.OpenDir(wd)
				if err != nil {
					return "", err
				}
				defer d.Close()
				if err := d.Chmod(m &^ 0o022); err != nil {
					return "", err
				}
				return fmt.Sprintf("%s: mode %04o -> %04o", wd, m, m&^0o022), nil
			})
		} else {
			cs.ok("working-dir-mode", "only its owner can write to %s", wd)
		}
	}
	serviceIsBackupOwner := owner == in.BackupOwner
	sdPath := in.under(deploy.StateDirFor(in.Record.WorkingDir))
	sd, sdErr := safefs.OpenDir(sdPath)
	if sdErr == nil {
		defer sd.Close()
	}
	for _, sub := range []string{"backups", "staged"} {
		id := sub + "-private"
		if errors.Is(sdErr, fs.ErrNotExist) {
			cs.ok(id, "there is no %s directory", sub)
			continue
		}
		if sdErr != nil {
			cs.fail(id, SeverityError, "rdctl's state directory %s cannot be read: %v", sdPath, sdErr)
			continue
		}
		info, err := sd.Lstat(sub)
		if errors.Is(err, fs.ErrNotExist) {
			cs.ok(id, "there is no %s directory", sub)
			continue
		}
		p := filepath.Join(sdPath, sub)
		if err != nil || !info.Mode.IsDir() {
			cs.fail(id, SeverityError, "%s is not a directory (%v)", p, err)
			continue
		}
		wrongOwner := info.UID != in.BackupOwner.UID || info.GID != in.BackupOwner.GID
		badMode := info.Mode.Perm() != 0o700
		if !wrongOwner && !badMode {
			cs.ok(id, "%s is 0700 and owned by %d:%d", p, info.UID, info.GID)
			continue
		}
		what := map[string]string{"backups": "old keys", "staged": "the next key"}[sub]
		c := cs.fail(id, SeverityWarning, "%s has mode %04o and owner %d:%d, not 0700 and %d:%d: ", p, info.Mode.Perm(), info.UID, info.GID,
			in.BackupOwner.UID, in.BackupOwner.GID)
		switch {
		case serviceIsBackupOwner:
			c.Message += "others may read " + what
		case info.UID == owner.UID:
			c.Message += "the service user can read " + what
		default:
			c.Message += "others may read " + what
		}
		bo := in.BackupOwner
		c.fix(func() (string, error) {
			d, err := safefs.OpenDir(sdPath)
			if err != nil {
				return "", err
			}
			defer d.Close()
			s, err := d.Sub(sub)
			if err != nil {
				return "", err
			}
			defer s.Close()
			before, err := s.Stat()
			if err != nil {
				return "", err
			}
			if before.UID != bo.UID || before.GID != bo.GID {
				if err := s.Chown(bo.UID, bo.GID); err != nil {
					return "", err
				}
			}
			if err := s.Chmod(0o700); err != nil {
				return "", err
			}
			after, err := s.Stat()
			if err != nil {
				return "", err
			}
			return describeChange(p, before, after), nil
		})
	}
	if ok, _ := rotate.InFlight(sdPath); ok {
		cs.fail("rotation-journal", SeverityError, "an interrupted rotation left %s: finish or roll it back with rdctl rotate --resume", filepath.Join(sdPath, rotate.JournalFile))
	} else if ok, _ := d.Exists(rotate.LegacyJournalFile); ok {
		cs.fail("rotation-journal", SeverityWarning, "an older rdctl left %s in the working directory: the next mutating rdctl command (e.g. rdctl rotate --resume) removes it, without resuming it", filepath.Join(wd, rotate.LegacyJournalFile))
	} else {
		cs.ok("rotation-journal", "no interrupted rotation")
	}
}

// duplicateKeys looks for key files in the usual places besides the
// working directory: a different key there is a second identity (the
// "two id_ed25519.pub" confusion), the same key a stray copy.
func (in *Input) duplicateKeys(cs *checks) {
	served, _ := inspect(in.under(in.Record.WorkingDir))
	var diff, same []string
	for _, dir := range KeyDirs {
		if path.Clean(dir) == path.Clean(in.Record.WorkingDir) {
			continue
		}
		st, err := inspect(in.under(dir))
		if err != nil || !st.SecretPresent {
			continue
		}
		switch {
		case served.Valid && st.Valid && st.Pair.Equal(served.Pair):
			same = append(same, dir)
		case st.Valid:
			diff = append(diff, fmt.Sprintf("%s (%s)", dir, st.Pair.Fingerprint()))
		default:
			diff = append(diff, dir+" (unusable)")
		}
	}
	servedFP := "no valid key"
	if served.Valid {
		servedFP = served.Pair.Fingerprint()
	}
	switch {
	case len(diff) > 0:
		cs.fail("duplicate-keys", SeverityWarning, "other key pairs exist in %s; the served one is in %s (%s): clients configured from another see \"Key mismatch\"",
			strings.Join(diff, ", "), in.Record.WorkingDir, servedFP)
	case len(same) > 0:
		cs.fail("duplicate-keys", SeverityWarning, "copies of the served secret key lie in %s: remove them once you have a backup (rdctl backups list)",
			strings.Join(same, ", "))
	default:
		cs.ok("duplicate-keys", "no other key pairs in %s", strings.Join(KeyDirs, ", "))
	}
}

// unitChecks reads the record's units the way adopt does. It returns where
// to read why a unit stopped.
func (in *Input) unitChecks(cs *checks) (logs string) {
	rec := in.Record
	logs = fmt.Sprintf("journalctl -u %s -u %s", rec.HBBSUnit, rec.HBBRUnit)
	if rec.Backend != deploy.BackendSystemd {
		cs.skip("units-installed", "the %s backend has no unit files", rec.Backend)
		return logs
	}
	inst, err := adopt.Inspect(in.Root, rec.Origin, rec.HBBSUnit, rec.HBBRUnit)
	if err != nil {
		cs.fail("units-installed", SeverityError, "cannot read %s: %v", rec.HBBSUnit, err)
		return logs
	}
	// hbbs and hbbr log everything on stdout, "Fatal error" included
	// (measured on 1.1.16): where StandardOutput= names a file (the Debian
	// units' hbbs.log), the journal does not have it.
	var files []string
	for _, s := range []*adopt.Service{inst.HBBS, inst.HBBR} {
		if s != nil && s.LogFile != "" {
			files = append(files, s.LogFile)
		}
	}
	if len(files) > 0 {
		logs = "the servers' output (the \"Fatal error\" line too) in " + strings.Join(files, " and ") + ", and " + logs
	}
	if inst.HBBR == nil {
		cs.fail("units-installed", SeverityError, "%s exists but %s does not", inst.HBBS.Unit.Path, rec.HBBRUnit)
		return logs
	}
	cs.ok("units-installed", "%s and %s are installed", inst.HBBS.Unit.Path, inst.HBBR.Unit.Path)

	if rec.Origin == adopt.OriginRdctl {
		in.unitsAsWritten(cs, inst)
	}
	if wd := inst.HBBS.WorkingDir; path.Clean(wd) != path.Clean(rec.WorkingDir) {
		cs.fail("record-matches-units", SeverityError, "the record says the working directory is %s, but %s runs in %s: rotate would change a key hbbs does not serve; re-record with: rdctl adopt --force",
			rec.WorkingDir, rec.HBBSUnit, wd)
	} else {
		cs.ok("record-matches-units", "hbbs runs in the recorded working directory %s", wd)
	}

	var root []string
	for _, s := range []*adopt.Service{inst.HBBS, inst.HBBR} {
		if s.User == "root" {
			root = append(root, s.Unit.Name)
		}
	}
	if len(root) > 0 {
		cs.fail("service-user", SeverityWarning, "%s run%s as root (User= is empty or unset): a flaw in hbbs or hbbr would own the host; rdctl install runs them as an unprivileged user",
			strings.Join(root, " and "), map[bool]string{true: "s", false: ""}[len(root) == 1])
	} else {
		cs.ok("service-user", "hbbs runs as %s, hbbr as %s", inst.HBBS.User, inst.HBBR.User)
	}

	switch {
	case !inst.HBBR.Key.Enforced():
		cs.fail("hbbr-enforces-key", SeverityWarning, "hbbr checks no key (%s has no -k and no KEY): anyone can relay through it; rdctl install runs it with -k _", inst.HBBR.Unit.Name)
	default:
		cs.ok("hbbr-enforces-key", "hbbr enforces a key (%s)", inst.HBBR.KeySource)
	}
	for _, id := range []string{"key-not-from-file", "secret-exposed", "split-working-dirs", "hbbs-key-unenforced", "hbbs-key-no-signing", "purge-deletes-keys", "no-working-dir"} {
		for _, f := range inst.Findings {
			if f.ID == id {
				cs.fail(id, f.Severity, "%s", f.Message)
			}
		}
	}
	in.settingsChecks(cs, inst.HBBS.Settings(), inst.HBBR.Settings(), "the units")
	return logs
}

// settingLints are the IDs of adopt.LintSettings, each reported once as ok
// when it finds nothing.
var settingLints = []string{adopt.FindingSettingBandwidth, adopt.FindingSettingRustLog, adopt.FindingSettingAlwaysUseRelay,
	adopt.FindingSettingRelayAddress, adopt.FindingEnvFileUntrusted}

// settingsChecks lints what hbbs and hbbr are started with (where, for
// messages): values the servers misread or ignore.
func (in *Input) settingsChecks(cs *checks, hbbs, hbbr adopt.Settings, where string) {
	fired := map[string]bool{}
	for _, f := range adopt.LintSettings(hbbs, hbbr, in.Record.RelayList(), in.Record.TailnetOnly) {
		fired[f.ID] = true
		cs.fail(f.ID, f.Severity, "%s", f.Message).Hint = f.Hint
	}
	for _, id := range settingLints {
		if !fired[id] {
			cs.ok(id, "nothing misread in %s and the working directory's .env", where)
		}
	}
}

// composeSettingsChecks lints a compose stack's settings: the services'
// environment: in the recorded compose file and the .env in the working
// directory (the data directory hbbs and hbbr run in).
func (in *Input) composeSettingsChecks(cs *checks) {
	rec := in.Record
	if rec.Compose == nil {
		return
	}
	file := in.under(path.Join(rec.Compose.Dir, compose.FileName))
	data, err := readBounded(file)
	if err != nil {
		cs.skip("settings", "cannot read %s: %v; settings not checked", file, err)
		return
	}
	envs, err := compose.ServiceEnvironments(data)
	if err != nil {
		cs.skip("settings", "%s does not parse: %v; settings not checked", file, err)
		return
	}
	dotPath := path.Join(rec.WorkingDir, ".env")
	dot, _ := readBounded(in.under(dotPath))
	env := func(name string) []string { return envs[name] }
	where := func(name string) string { return "environment: of " + name + " in " + file }
	in.settingsChecks(cs, adopt.ComposeSettings(env(compose.ServiceHBBS), where(compose.ServiceHBBS), dot, dotPath),
		adopt.ComposeSettings(env(compose.ServiceHBBR), where(compose.ServiceHBBR), dot, dotPath), file)
}

// readBounded reads a small file without following a symlink; a missing
// file is nil, nil.
func readBounded(p string) ([]byte, error) {
	d, err := safefs.OpenDir(filepath.Dir(p))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer d.Close()
	data, _, err := d.ReadFile(filepath.Base(p), 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// unitsAsWritten compares rdctl's own unit files with what rdctl install
// writes for the record: a hand edit is reported (install rewrites it).
func (in *Input) unitsAsWritten(cs *checks, inst *adopt.Install) {
	spec := systemd.SpecFromRecord(in.Record)
	var edited []string
	for _, u := range []struct {
		name string
		want []byte
	}{{in.Record.HBBSUnit, systemd.HBBS(spec)}, {in.Record.HBBRUnit, systemd.HBBR(spec)}} {
		d, err := safefs.OpenDir(in.under(systemd.UnitDir))
		if err != nil {
			continue
		}
		data, _, err := d.ReadFile(u.name, 1<<20)
		d.Close()
		if err != nil || !bytes.Equal(data, u.want) {
			edited = append(edited, path.Join(systemd.UnitDir, u.name))
		}
	}
	if len(inst.HBBS.Unit.DropIns)+len(inst.HBBR.Unit.DropIns) > 0 {
		edited = append(edited, slices.Concat(inst.HBBS.Unit.DropIns, inst.HBBR.Unit.DropIns)...)
	}
	if len(edited) > 0 {
		cs.fail("units-as-written", SeverityWarning, "%s differ%s from what rdctl install writes for the record; rdctl install puts them back",
			strings.Join(edited, ", "), map[bool]string{true: "s", false: ""}[len(edited) == 1])
	} else {
		cs.ok("units-as-written", "the units are as rdctl install wrote them")
	}
}

// relayCheck: hbbs drops a relay it cannot resolve at startup, silently
// but for an "Invalid relay-servers" line in its log. One check per relay.
func (in *Input) relayCheck(ctx context.Context, cs *checks) {
	rec := in.Record
	if rec.Relay == "" {
		cs.fail("relay-resolves", SeverityInfo, "no relay is recorded: clients use their own relay setting, then the ID server's port+1")
		return
	}
	relays, err := deploy.ParseRelays("relay", rec.Relay)
	if err != nil {
		cs.fail("relay-resolves", SeverityError, "the recorded relay %q is invalid: %v", rec.Relay, err)
		return
	}
	dropped := "clients get no relay"
	if len(relays) > 1 {
		dropped = "the other relays are handed out in its place"
	}
	for _, hp := range relays {
		if hp.Host.IsIP() {
			cs.ok("relay-resolves", "the relay %s is an IP address", hp)
			continue
		}
		if !in.live() {
			cs.skip("relay-resolves", "the relay %s is a valid host name; not resolved in an image tree (--root)", hp.Host)
			continue
		}
		r := in.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		timeout := in.ResolveTimeout
		if timeout == 0 {
			timeout = 2 * time.Second
		}
		lctx, cancel := context.WithTimeout(ctx, timeout)
		addrs, err := r.LookupHost(lctx, string(hp.Host))
		cancel()
		if err != nil || len(addrs) == 0 {
			c := cs.fail("relay-resolves", SeverityError, "the relay host %s does not resolve (%v): hbbs drops it when it starts, with only an \"Invalid relay-servers\" line in its log, and %s", hp.Host, err, dropped)
			c.Hint = "publish its DNS record, or take it out of the relay list (rdctl install … --relay LIST), then restart hbbs: it resolves relays only when it starts"
			continue
		}
		cs.ok("relay-resolves", "the relay host %s resolves to %s", hp.Host, strings.Join(addrs, ", "))
	}
}

// RelayProber proves that hbbr answers at relay: the relay probe of rdctl
// check (a pairing of two connections on its TCP port), presenting key.
type RelayProber func(ctx context.Context, relay deploy.HostPort, key string) error

// relayReachable probes every recorded relay (live only): hbbs hands them
// out in turn without checking them, so a dead one breaks every relayed
// session it is given.
func (in *Input) relayReachable(ctx context.Context, cs *checks) {
	relays := in.Record.RelayList()
	if len(relays) == 0 {
		return
	}
	prober := in.RelayProber
	if prober == nil {
		prober = in.probeRelay
	}
	key := ""
	if st, err := inspect(in.under(in.Record.WorkingDir)); err == nil && st.Valid {
		key = st.Pair.PublicBase64()
	}
	share := ""
	if len(relays) > 1 {
		share = fmt.Sprintf(": hbbs hands it out to 1 relayed session in %d, with no health check", len(relays))
	}
	for _, hp := range relays {
		if err := prober(ctx, hp, key); err != nil {
			c := cs.fail("relay-reachable", SeverityError, "the relay %s does not answer (%v)%s", hp, err, share)
			c.Hint = "start hbbr there and check it from outside (rdctl check --relay " + hp.String() + "), or take it out of the relay list"
			continue
		}
		cs.ok("relay-reachable", "the relay %s relays (a probe pairing crossed it)", hp)
	}
}

// probeRelay is rdctl check's relay probe against one relay.
func (in *Input) probeRelay(ctx context.Context, hp deploy.HostPort, key string) error {
	t := probe.Target{Host: string(hp.Host), RelayPort: int(hp.Port)}
	o := probe.Options{Key: key, Probes: []probe.Name{probe.Relay}, FirstAddress: true, Timeout: in.ResolveTimeout}
	if r, ok := in.Resolver.(probe.Resolver); ok {
		o.Resolver = r
	}
	rs, err := probe.Check(ctx, []probe.Target{t}, o)
	if err != nil {
		return err
	}
	if p := rs[0].Probes[0]; !p.OK {
		return errors.New(p.Error)
	}
	return nil
}

// liveChecks look at systemd's view of the units and the open sockets.
func (in *Input) liveChecks(cs *checks) {
	logs := in.logs
	if logs == "" {
		logs = fmt.Sprintf("journalctl -u %s -u %s", in.Record.HBBSUnit, in.Record.HBBRUnit)
	}
	switch {
	case in.Record.Backend == deploy.BackendCompose:
		in.containerChecks(cs)
	case in.UnitsErr != nil:
		cs.fail("units-running", SeverityError, "cannot ask systemd about the units: %v", in.UnitsErr)
	case in.Record.Backend != deploy.BackendSystemd:
		cs.skip("units-running", "the %s backend has no systemd units", in.Record.Backend)
	default:
		var down, restarting []string
		for _, u := range in.Units {
			if u.ActiveState != "active" || u.SubState != "running" {
				s := fmt.Sprintf("%s is %s/%s", u.Name, u.ActiveState, u.SubState)
				if u.Result != "" && u.Result != "success" {
					s += " (" + u.Result + ")"
				}
				down = append(down, s)
			}
			if u.NRestarts > 0 {
				restarting = append(restarting, fmt.Sprintf("%s restarted %d times", u.Name, u.NRestarts))
			}
		}
		if len(down) > 0 {
			cs.fail("units-running", SeverityError, "%s; see why in: %s", strings.Join(down, ", "), logs)
		} else {
			cs.ok("units-running", "both units are active and running")
		}
		if len(restarting) > 0 {
			cs.fail("units-restarting", SeverityWarning, "%s: it is crashing; see why in: %s", strings.Join(restarting, ", "), logs)
		} else {
			cs.ok("units-restarting", "no restarts")
		}
	}
	if in.ListenersErr != nil {
		cs.fail("ports-listening", SeverityError, "cannot read the listening sockets: %v", in.ListenersErr)
		return
	}
	var closed []string
	for _, p := range MatchPorts(ServerPorts, in.Listeners) {
		if !p.Listening {
			closed = append(closed, fmt.Sprintf("%s %d (%s)", p.Proto, p.Port.Port, p.Owner))
		}
	}
	if len(closed) > 0 {
		cs.fail("ports-listening", SeverityError, "nothing listens on %s", strings.Join(closed, ", "))
	} else {
		cs.ok("ports-listening", "tcp 21115-21119 and udp 21116 are listening")
	}
}

// Problems counts the checks that failed with an error or a warning.
func Problems(cs []Check) int {
	n := 0
	for _, c := range cs {
		if c.Problem() {
			n++
		}
	}
	return n
}
