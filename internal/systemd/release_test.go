package systemd

import (
	"archive/zip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var fakeELF = []byte("\x7fELF fake executable")

func writeZip(t *testing.T, files map[string][]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rustdesk-server-linux-amd64.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, data := range files {
		w, _ := zw.Create(name)
		w.Write(data)
	}
	zw.Close()
	f.Close()
	return p
}

func TestLoadBinariesReleaseZip(t *testing.T) {
	p := writeZip(t, map[string][]byte{"amd64/hbbs": fakeELF, "amd64/hbbr": fakeELF, "amd64/rustdesk-utils": fakeELF, "arm64v8/hbbs": []byte("other")})
	b, err := LoadBinaries(p, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if string(b.HBBS) != string(fakeELF) || b.Utils == nil || strings.Join(b.Names(), ",") != "hbbr,hbbs,rustdesk-utils" {
		t.Fatalf("loaded %v", b.Names())
	}
	// the arm64 directory holds no ELF: the architecture matters
	if _, err := LoadBinaries(p, "arm64v8"); err == nil {
		t.Fatal("arm64v8 accepted")
	}
}

func TestLoadBinariesDirFlatAndErrors(t *testing.T) {
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, "hbbs"), fakeELF, 0o755))
	noErr(t, os.WriteFile(filepath.Join(dir, "hbbr"), fakeELF, 0o755))
	b, err := LoadBinaries(dir, "amd64")
	if err != nil || b.Utils != nil {
		t.Fatalf("flat dir: %v", err)
	}
	noErr(t, os.WriteFile(filepath.Join(dir, "hbbr"), []byte("#!/bin/sh\n"), 0o755))
	var be *BinariesError
	if _, err := LoadBinaries(dir, "amd64"); !errors.As(err, &be) || !strings.Contains(err.Error(), "not an ELF") {
		t.Fatalf("script accepted: %v", err)
	}
	if _, err := LoadBinaries(writeZip(t, map[string][]byte{"amd64/hbbs": fakeELF}), "amd64"); err == nil || !strings.Contains(err.Error(), "hbbr") {
		t.Fatalf("zip without hbbr: %v", err)
	}
	if _, err := LoadBinaries(filepath.Join(dir, "missing.zip"), "amd64"); err == nil {
		t.Fatal("missing file accepted")
	}
	notZip := filepath.Join(dir, "x.zip")
	noErr(t, os.WriteFile(notZip, []byte("not a zip"), 0o644))
	if _, err := LoadBinaries(notZip, "amd64"); err == nil || !strings.Contains(err.Error(), "zip") {
		t.Fatalf("non-zip: %v", err)
	}
}

func TestReleaseArch(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64v8", "arm": "armv7", "386": "i386"} {
		if got, ok := ReleaseArch(goarch); !ok || got != want {
			t.Errorf("%s -> %s", goarch, got)
		}
	}
	if _, ok := ReleaseArch("riscv64"); ok {
		t.Error("riscv64 has no release")
	}
}
