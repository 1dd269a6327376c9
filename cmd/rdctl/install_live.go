package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/systemd"
)

// bindMinVersion is the first hbbs/hbbr with -b/--bind.
var bindMinVersion = deploy.Version{Major: 1, Minor: 1, Patch: 17}

// liveInstall is what a live install learned before planning.
type liveInstall struct {
	rec   *deploy.Record
	owner keys.Owner
}

// prepareLive checks the binaries' version and makes sure the service user
// exists, so the plan can own the key files to it.
func prepareLive(ctx context.Context, e *env, rec *deploy.Record, bins *systemd.Binaries) (*liveInstall, error) {
	if os.Geteuid() != 0 {
		return nil, withHints(errors.New("a live install changes the system and needs root"),
			"run it with sudo, or build an image tree with --root DIR")
	}
	ver, err := hbbsVersion(ctx, rec, bins)
	if err != nil {
		return nil, err
	}
	rec.HBBSVersion = ver.String()
	if rec.Bind != "" && ver.Less(bindMinVersion) {
		return nil, withHints(&deploy.InputError{Field: "--bind", Value: rec.Bind,
			Reason: fmt.Sprintf("hbbs %s has no -b flag (it came in %s)", ver, bindMinVersion)},
			"drop --bind, or install hbbs 1.1.17 or newer with --binaries")
	}
	owner, err := ensureServiceUser(ctx, e, rec)
	if err != nil {
		return nil, err
	}
	return &liveInstall{rec: rec, owner: owner}, nil
}

// hbbsVersion runs `hbbs -V` from the release (or the installed binary)
// and parses "hbbs 1.1.16".
func hbbsVersion(ctx context.Context, rec *deploy.Record, bins *systemd.Binaries) (deploy.Version, error) {
	exe := path.Join(rec.BinDir, "hbbs")
	if bins != nil {
		dir, err := os.MkdirTemp("", "rdctl-hbbs-")
		if err != nil {
			return deploy.Version{}, err
		}
		defer os.RemoveAll(dir)
		exe = filepath.Join(dir, "hbbs")
		if err := os.WriteFile(exe, bins.HBBS, 0o700); err != nil {
			return deploy.Version{}, err
		}
	} else if _, err := os.Stat(exe); err != nil {
		return deploy.Version{}, withHints(fmt.Errorf("no hbbs at %s and no --binaries given", exe),
			"pass the release: rdctl install systemd --binaries rustdesk-server-linux-amd64.zip --relay HOST")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, exe, "-V").Output()
	if err != nil {
		return deploy.Version{}, fmt.Errorf("%s -V: %w", exe, err)
	}
	fields := strings.Fields(string(out))
	if len(fields) != 2 || fields[0] != "hbbs" {
		return deploy.Version{}, fmt.Errorf("%s -V printed %q, not \"hbbs <version>\"", exe, strings.TrimSpace(string(out)))
	}
	return deploy.ParseVersion(exe+" -V", fields[1])
}

// ensureServiceUser creates the system user with systemd-sysusers (from the
// same sysusers.d entry the plan writes), or useradd where that is absent,
// and returns its ids. In a dry run it only reports.
func ensureServiceUser(ctx context.Context, e *env, rec *deploy.Record) (keys.Owner, error) {
	if o, err := lookupOwner(rec.ServiceUser); err == nil {
		return o, nil
	}
	if e.dryRun {
		e.printf("would create the system user %s\n", rec.ServiceUser)
		return keys.Owner{UID: -2, GID: -2}, nil
	}
	conf := systemd.SysusersConf(rec.ServiceUser, rec.WorkingDir)
	var cmd *exec.Cmd
	if _, err := exec.LookPath("systemd-sysusers"); err == nil {
		if _, err := safefs.MkdirAll(path.Dir(systemd.SysusersPath), 0o755); err != nil {
			return keys.Owner{}, err
		}
		if _, err := safefs.WriteFile(systemd.SysusersPath, conf, safefs.FileOptions{Mode: 0o644}); err != nil {
			return keys.Owner{}, err
		}
		cmd = exec.CommandContext(ctx, "systemd-sysusers", systemd.SysusersPath)
	} else {
		cmd = exec.CommandContext(ctx, "useradd", "--system", "--user-group", "--home-dir", rec.WorkingDir,
			"--no-create-home", "--shell", "/usr/sbin/nologin", "--comment", "RustDesk server (rdctl)", rec.ServiceUser)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return keys.Owner{}, fmt.Errorf("creating user %s: %v: %s", rec.ServiceUser, err, strings.TrimSpace(string(out)))
	}
	e.printf("created the system user %s\n", rec.ServiceUser)
	return lookupOwner(rec.ServiceUser)
}

func lookupOwner(name string) (keys.Owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return keys.Owner{}, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return keys.Owner{UID: uid, GID: gid}, nil
}

// activate reloads systemd, enables the units and (unless noStart) starts
// them — restarting when the install changed something — then waits until
// both are active and hbbs answers.
func (l *liveInstall) activate(ctx context.Context, e *env, noStart, changed bool) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	m, err := systemd.Connect(ctx)
	if err != nil {
		return withHints(err, "is this host booted with systemd? use --root DIR to build an image instead")
	}
	defer m.Close()
	units := []string{l.rec.HBBRUnit, l.rec.HBBSUnit}
	if changed {
		if err := m.Reload(ctx); err != nil {
			return fmt.Errorf("daemon-reload: %w", err)
		}
	}
	if err := m.Enable(ctx, units); err != nil {
		return fmt.Errorf("enabling %s: %w", strings.Join(units, ", "), err)
	}
	if noStart {
		e.printf("enabled %s; not started (--no-start)\n", strings.Join(units, " and "))
		return nil
	}
	rt, err := e.runtime(ctx, l.rec)
	if err != nil {
		return err
	}
	if changed {
		// New units, binaries or keys take effect only on a restart.
		if err := rt.Stop(ctx); err != nil {
			return err
		}
	}
	if err := rt.Start(ctx); err != nil {
		return withHints(err, "see the whole log: journalctl -u "+l.rec.HBBSUnit+" -u "+l.rec.HBBRUnit)
	}
	return nil
}

// checkSHA256 refuses src unless its SHA-256 (the zip file, or hbbs in a
// directory) is want. An empty want checks nothing.
func checkSHA256(src, want string) error {
	if want == "" {
		return nil
	}
	want = strings.ToLower(want)
	if len(want) != 64 || strings.Trim(want, "0123456789abcdef") != "" {
		return &deploy.InputError{Field: "--sha256", Value: want, Reason: "not 64 hex digits"}
	}
	p := src
	if fi, err := os.Stat(src); err == nil && fi.IsDir() {
		p = filepath.Join(src, "hbbs")
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return withHints(fmt.Errorf("%s has SHA-256 %s, not the pinned %s", p, got, want), "check the download; RustDesk publishes no checksums, so pin the hash of a copy you trust")
	}
	return nil
}
