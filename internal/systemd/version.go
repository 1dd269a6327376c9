package systemd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
)

// BindMinVersion is the first hbbs/hbbr with -b/--bind.
var BindMinVersion = deploy.Version{Major: 1, Minor: 1, Patch: 17}

// NoServerBinaryError reports a live install with neither --binaries nor an
// installed hbbs to ask for its version.
type NoServerBinaryError struct{ Path string }

func (e *NoServerBinaryError) Error() string {
	return fmt.Sprintf("no hbbs at %s and no --binaries given", e.Path)
}

// ServerVersion runs `hbbs -V` — from the release about to be installed, or
// the installed exe when bins is nil — and parses "hbbs 1.1.16". The
// release's hbbs runs from a private temporary copy.
func ServerVersion(ctx context.Context, exe string, bins *Binaries) (deploy.Version, error) {
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
		return deploy.Version{}, &NoServerBinaryError{Path: exe}
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

// HashMismatchError reports a release whose SHA-256 is not the pinned one.
type HashMismatchError struct{ Path, Got, Want string }

func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("%s has SHA-256 %s, not the pinned %s", e.Path, e.Got, e.Want)
}

// CheckSHA256 refuses src unless its SHA-256 (the zip file, or hbbs in a
// directory) is want, 64 hex digits. An empty want checks nothing.
func CheckSHA256(src, want string) error {
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
		return &HashMismatchError{Path: p, Got: got, Want: want}
	}
	return nil
}
