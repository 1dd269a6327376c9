package systemd

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// ReleaseArch maps a Go architecture to the directory name in RustDesk's
// release zips (rustdesk-server-linux-<arch>.zip holds <arch>/hbbs, …).
func ReleaseArch(goarch string) (string, bool) {
	a, ok := map[string]string{"amd64": "amd64", "arm64": "arm64v8", "arm": "armv7", "386": "i386"}[goarch]
	return a, ok
}

// HostReleaseArch is ReleaseArch of the running binary's architecture.
func HostReleaseArch() string {
	a, _ := ReleaseArch(runtime.GOARCH)
	return a
}

// maxBinarySize bounds what is read from a release (the real binaries are a
// few MB each).
const maxBinarySize = 256 << 20

// Binaries are the server programs read from a release zip or directory.
type Binaries struct {
	HBBS, HBBR []byte
	// Utils is rustdesk-utils, when the release has it.
	Utils []byte
}

// BinariesError reports a release that does not hold what rdctl needs.
type BinariesError struct {
	Source string
	Reason string
}

func (e *BinariesError) Error() string { return fmt.Sprintf("binaries %q: %s", e.Source, e.Reason) }

// LoadBinaries reads hbbs and hbbr (and rustdesk-utils if present) from a
// release zip or a directory, in the release layout (<arch>/hbbs) or flat
// (hbbs). Each must be an ELF executable.
func LoadBinaries(src, arch string) (*Binaries, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, &BinariesError{Source: src, Reason: err.Error()}
	}
	read := readFromDir(src)
	if !fi.IsDir() {
		zr, err := zip.OpenReader(src)
		if err != nil {
			return nil, &BinariesError{Source: src, Reason: "not a directory or a zip file: " + err.Error()}
		}
		defer zr.Close()
		read = readFromZip(&zr.Reader)
	}
	var b Binaries
	for _, want := range []struct {
		name     string
		dst      *[]byte
		optional bool
	}{{"hbbs", &b.HBBS, false}, {"hbbr", &b.HBBR, false}, {"rustdesk-utils", &b.Utils, true}} {
		data, err := read(arch + "/" + want.name)
		if errors.Is(err, os.ErrNotExist) {
			data, err = read(want.name)
		}
		if errors.Is(err, os.ErrNotExist) {
			if want.optional {
				continue
			}
			return nil, &BinariesError{Source: src, Reason: fmt.Sprintf("has no %s/%s (nor %s); release zips hold a directory per architecture", arch, want.name, want.name)}
		}
		if err != nil {
			return nil, &BinariesError{Source: src, Reason: err.Error()}
		}
		if !bytes.HasPrefix(data, []byte("\x7fELF")) {
			return nil, &BinariesError{Source: src, Reason: want.name + " is not an ELF executable"}
		}
		*want.dst = data
	}
	return &b, nil
}

func readFromDir(dir string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readCapped(f)
	}
}

func readFromZip(zr *zip.Reader) func(string) ([]byte, error) {
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[strings.TrimPrefix(f.Name, "./")] = f
	}
	return func(name string) ([]byte, error) {
		f, ok := files[name]
		if !ok {
			return nil, os.ErrNotExist
		}
		if f.UncompressedSize64 > maxBinarySize {
			return nil, fmt.Errorf("%s is larger than %d bytes", name, maxBinarySize)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return readCapped(rc)
	}
}

func readCapped(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBinarySize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBinarySize {
		return nil, fmt.Errorf("larger than %d bytes", maxBinarySize)
	}
	return data, nil
}

// Names lists the binaries present, for messages.
func (b *Binaries) Names() []string {
	n := []string{"hbbs", "hbbr"}
	if b.Utils != nil {
		n = append(n, "rustdesk-utils")
	}
	sort.Strings(n)
	return n
}
