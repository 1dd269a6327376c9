// Command release builds rdctl's release artifacts into a directory:
//
//	rdctl_<version>_<arch>.deb            Debian package (nfpm as a library)
//	rdctl_<version>_linux_<arch>.tar.gz   binary, man pages, completions, README
//	SHA256SUMS
//
// for linux/amd64 and linux/arm64 (-arch), with CGO_ENABLED=0, -trimpath,
// -buildvcs=false and the version, commit and build date linked in. Every
// timestamp in every artifact is SOURCE_DATE_EPOCH (default: the commit's
// time), owners are root, entries are sorted and gzip headers carry no name
// or time, so two runs from one commit give identical bytes.
//
// It lives in its own module (tools/go.mod) so nfpm and its dependencies
// never enter rdctl's module graph. Run it through scripts/release.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
)

const (
	maintainer  = "rdctl maintainers <rdctl@users.noreply.github.com>"
	summary     = "install and operate a self-hosted RustDesk server"
	description = summary + "\n" +
		"rdctl installs RustDesk's hbbs and hbbr as hardened systemd units or a\n" +
		"Docker Compose stack, rotates the server's Ed25519 key as a crash-safe\n" +
		"transaction, exports client configuration and checks reachability,\n" +
		"directly or over a Tailscale tailnet.\n" +
		"Installing this package installs the tool only: it starts, enables and\n" +
		"changes nothing."
)

func main() {
	repo := flag.String("repo", ".", "the rdctl repository")
	out := flag.String("out", "dist", "output directory (emptied first)")
	archs := flag.String("arch", "amd64,arm64", "comma-separated GOARCH list")
	versionFlag := flag.String("version", "", "version (default: the tag, or git describe)")
	flag.Parse()
	if err := run(*repo, *out, strings.Split(*archs, ","), *versionFlag); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// build is what one release is made of.
type build struct {
	repo, out string
	version   string // Debian-compatible: starts with a digit, no '-'
	commit    string
	epoch     time.Time
}

func run(repo, out string, archs []string, version string) error {
	repo, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	b := build{repo: repo}
	if b.out, err = filepath.Abs(out); err != nil {
		return err
	}
	if b.commit, err = git(repo, "rev-parse", "HEAD"); err != nil {
		return err
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git(repo, "log", "-1", "--format=%ct"); err != nil {
			return err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH %q: %v", epoch, err)
	}
	b.epoch = time.Unix(sec, 0).UTC()
	if version == "" {
		described, err := git(repo, "describe", "--tags", "--always", "--dirty")
		if err != nil {
			return err
		}
		version = debVersion(described)
	}
	if !versionRE.MatchString(version) {
		return fmt.Errorf("version %q: a release version starts with a digit and holds only [0-9A-Za-z.+~]", version)
	}
	b.version = version

	if err := os.RemoveAll(b.out); err != nil {
		return err
	}
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "rdctl-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// Man pages and completions come from the binary itself (rdctl man,
	// rdctl completion), built for this machine.
	host := filepath.Join(work, "host", "rdctl")
	if err := b.goBuild(runtime.GOARCH, host); err != nil {
		return err
	}
	docs, err := b.docs(host, filepath.Join(work, "docs"))
	if err != nil {
		return err
	}
	var artifacts []string
	for _, arch := range archs {
		bin := filepath.Join(work, arch, "rdctl")
		if err := b.goBuild(arch, bin); err != nil {
			return err
		}
		deb := fmt.Sprintf("rdctl_%s_%s.deb", b.version, arch)
		if err := b.deb(arch, bin, docs, filepath.Join(b.out, deb)); err != nil {
			return fmt.Errorf("%s: %w", deb, err)
		}
		tgz := fmt.Sprintf("rdctl_%s_linux_%s.tar.gz", b.version, arch)
		if err := b.tarball(strings.TrimSuffix(tgz, ".tar.gz"), bin, docs, filepath.Join(b.out, tgz)); err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		artifacts = append(artifacts, deb, tgz)
	}
	return b.sums(artifacts)
}

var versionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)

// debVersion turns git describe output into a Debian-compatible upstream
// version: v1.2.3 → 1.2.3; v1.2.3-4-gabc → 1.2.3+4.gabc; a bare commit
// (no tag) → 0.0.0+abc; -dirty → +dirty.
func debVersion(described string) string {
	v := strings.TrimPrefix(described, "v")
	dirty := strings.HasSuffix(v, "-dirty")
	v = strings.TrimSuffix(v, "-dirty")
	if m := regexp.MustCompile(`^(.*)-([0-9]+)-(g[0-9a-f]+)$`).FindStringSubmatch(v); m != nil {
		v = m[1] + "+" + m[2] + "." + m[3]
	} else if regexp.MustCompile(`^[0-9a-f]{4,40}$`).MatchString(v) {
		v = "0.0.0+" + v
	}
	v = strings.ReplaceAll(v, "-", "~")
	if dirty {
		v += "+dirty"
	}
	return v
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func (b build) goBuild(arch, out string) error {
	ldflags := fmt.Sprintf("-s -w -X main.Version=%s -X main.Commit=%s -X main.BuildDate=%s",
		b.version, b.commit, b.epoch.Format(time.RFC3339))
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, "./cmd/rdctl")
	cmd.Dir = b.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=-buildvcs=false")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build linux/%s: %v", arch, err)
	}
	return nil
}

// docFile is one generated file: its bytes and where it goes.
type docFile struct {
	debPath, tarPath string
	data             []byte
}

// docs generates the man pages (gzipped) and the completion scripts.
func (b build) docs(bin, dir string) ([]docFile, error) {
	list, err := exec.Command(bin, "man", "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("rdctl man --list: %v", err)
	}
	var out []docFile
	pages := strings.Fields(string(list))
	slices.Sort(pages)
	for _, p := range pages {
		roff, err := exec.Command(bin, "man", p).Output()
		if err != nil {
			return nil, fmt.Errorf("rdctl man %s: %v", p, err)
		}
		gz, err := gzipBytes(roff)
		if err != nil {
			return nil, err
		}
		out = append(out, docFile{"/usr/share/man/man8/" + p + ".8.gz", "man/man8/" + p + ".8.gz", gz})
	}
	for _, c := range []struct{ shell, deb, tar string }{
		{"bash", "/usr/share/bash-completion/completions/rdctl", "completions/rdctl.bash"},
		{"zsh", "/usr/share/zsh/vendor-completions/_rdctl", "completions/_rdctl"},
		{"fish", "/usr/share/fish/vendor_completions.d/rdctl.fish", "completions/rdctl.fish"},
	} {
		script, err := exec.Command(bin, "completion", c.shell).Output()
		if err != nil {
			return nil, fmt.Errorf("rdctl completion %s: %v", c.shell, err)
		}
		out = append(out, docFile{c.deb, c.tar, script})
	}
	readme, err := os.ReadFile(filepath.Join(b.repo, "README.md"))
	if err != nil {
		return nil, err
	}
	out = append(out, docFile{"/usr/share/doc/rdctl/README.md", "README.md", readme})
	changelog, err := gzipBytes([]byte(fmt.Sprintf("rdctl (%s) unstable; urgency=medium\n\n  * Release %s, built from commit\n    %s.\n\n -- %s  %s\n",
		b.version, b.version, b.commit, maintainer, b.epoch.Format("Mon, 02 Jan 2006 15:04:05 -0700"))))
	if err != nil {
		return nil, err
	}
	out = append(out, docFile{"/usr/share/doc/rdctl/changelog.gz", "", changelog})
	copyright, err := os.ReadFile(filepath.Join(b.repo, "tools", "release", "copyright"))
	if err != nil {
		return nil, err
	}
	out = append(out, docFile{"/usr/share/doc/rdctl/copyright", "", copyright})
	// lintian's statically-linked-binary exempts Go only when it sees the
	// source package's Build-Depends; a binary-only .deb says it here.
	out = append(out, docFile{"/usr/share/lintian/overrides/rdctl", "",
		[]byte("# Go binary built with CGO_ENABLED=0: statically linked by design.\nrdctl: statically-linked-binary [usr/bin/rdctl]\n")})
	for i, f := range out {
		p := filepath.Join(dir, strings.TrimPrefix(f.debPath, "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return nil, err
		}
		out[i].debPath = f.debPath
	}
	return out, nil
}

// gzipBytes compresses like gzip -n -9: no name, no time in the header.
func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (b build) deb(arch, bin string, docs []docFile, out string) error {
	info := &nfpm.Info{
		Name:        "rdctl",
		Arch:        arch,
		Platform:    "linux",
		Version:     b.version,
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  maintainer,
		Description: description,
		MTime:       b.epoch,
		Overridables: nfpm.Overridables{
			Suggests: []string{"nftables", "docker-compose-plugin", "tailscale"},
			// The scripts use deb-systemd-invoke, from init-system-helpers,
			// which is essential: no Depends (lintian).
			Scripts: nfpm.Scripts{PostInstall: filepath.Join(b.repo, "tools/release/debian/postinst"),
				PreRemove: filepath.Join(b.repo, "tools/release/debian/prerm")},
		},
	}
	fi := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: b.epoch}
	}
	info.Contents = append(info.Contents, &files.Content{Source: bin, Destination: "/usr/bin/rdctl", FileInfo: fi(0o755)})
	dir := filepath.Dir(filepath.Dir(bin))
	for _, d := range docs {
		info.Contents = append(info.Contents, &files.Content{
			Source: filepath.Join(dir, "docs", strings.TrimPrefix(d.debPath, "/")), Destination: d.debPath, FileInfo: fi(0o644)})
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return err
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b build) tarball(prefix, bin string, docs []docFile, out string) error {
	type entry struct {
		name string
		mode int64
		data []byte
	}
	binData, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	entries := []entry{{"rdctl", 0o755, binData}}
	for _, d := range docs {
		if d.tarPath != "" {
			entries = append(entries, entry{d.tarPath, 0o644, d.data})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	hdr := func(name string, mode int64, typ byte, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Typeflag: typ, Size: size, ModTime: b.epoch,
			Uname: "root", Gname: "root", Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(prefix+"/", 0o755, tar.TypeDir, 0)); err != nil {
		return err
	}
	for _, e := range entries {
		// Parent directories first, once each, in order.
		parts := strings.Split(e.name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(hdr(prefix+"/"+d+"/", 0o755, tar.TypeDir, 0)); err != nil {
					return err
				}
			}
		}
		if err := tw.WriteHeader(hdr(prefix+"/"+e.name, e.mode, tar.TypeReg, int64(len(e.data)))); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	gz, err := gzipBytes(buf.Bytes())
	if err != nil {
		return err
	}
	return os.WriteFile(out, gz, 0o644)
}

func (b build) sums(artifacts []string) error {
	slices.Sort(artifacts)
	var s strings.Builder
	for _, a := range artifacts {
		data, err := os.ReadFile(filepath.Join(b.out, a))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&s, "%s  %s\n", hex.EncodeToString(sum[:]), a)
	}
	return os.WriteFile(filepath.Join(b.out, "SHA256SUMS"), []byte(s.String()), 0o644)
}
