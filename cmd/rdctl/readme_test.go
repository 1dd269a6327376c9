package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeMainCommand runs the README's first set-up command (rdctl's
// main job on its embedded default) exactly as written, in a temp dir.
func TestReadmeMainCommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?m)^go run ./cmd/rdctl (.*)$").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no `go run ./cmd/rdctl …` set-up command")
	}
	args := append([]string{"rdctl"}, strings.Fields(string(m[1]))...)
	dir := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, errOut.String())
	}
	for _, f := range []string{"image/etc/systemd/system/hbbs.service", "image/etc/systemd/system/hbbr.service",
		"image/var/lib/rustdesk/id_ed25519", "image/etc/rdctl/rdctl.toml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	out.Reset()
	if code := run(context.Background(), args, &out, &errOut); code != 0 || !strings.Contains(out.String(), "unchanged") {
		t.Fatalf("re-run: exit %d, %s", code, out.String())
	}
}
