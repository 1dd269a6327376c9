package proxyconf

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
)

// maxCert bounds how much of a certificate file is read.
const maxCert = 1 << 20

// CheckCertFiles checks the certificate and key files a site names: the
// certificate is a readable PEM file whose first certificate is parsed,
// and the key is a readable regular file. The key file is opened and
// closed, never read: its bytes cannot reach any output. Problems a proxy
// would still load (a certificate for another name, an expired one) are
// returned as warnings; the rest are *deploy.InputError.
func CheckCertFiles(cert, key string, domain deploy.Domain, now time.Time) (warnings []string, err error) {
	f, err := os.Open(cert)
	if err != nil {
		return nil, &deploy.InputError{Field: "--cert", Value: cert, Reason: "cannot be read: " + errText(err)}
	}
	data, rerr := readAtMost(f, maxCert)
	f.Close()
	if rerr != nil {
		return nil, &deploy.InputError{Field: "--cert", Value: cert, Reason: rerr.Error()}
	}
	block, _ := pem.Decode(data)
	for block != nil && block.Type != "CERTIFICATE" {
		block, _ = pem.Decode(nil)
	}
	if block == nil {
		return nil, &deploy.InputError{Field: "--cert", Value: cert, Reason: "holds no PEM certificate (BEGIN CERTIFICATE)"}
	}
	leaf, perr := x509.ParseCertificate(block.Bytes)
	if perr != nil {
		return nil, &deploy.InputError{Field: "--cert", Value: cert, Reason: "its first certificate does not parse: " + perr.Error()}
	}
	if err := leaf.VerifyHostname(string(domain)); err != nil {
		warnings = append(warnings, fmt.Sprintf("the certificate in %s is not for %s (it names %s): clients will refuse it", cert, domain, strings.Join(leaf.DNSNames, ", ")))
	}
	if now.After(leaf.NotAfter) {
		warnings = append(warnings, fmt.Sprintf("the certificate in %s expired on %s: clients will refuse it", cert, leaf.NotAfter.UTC().Format(time.DateOnly)))
	}
	k, err := os.Open(key)
	if err != nil {
		return warnings, &deploy.InputError{Field: "--cert-key", Value: key, Reason: "cannot be read: " + errText(err)}
	}
	defer k.Close()
	fi, err := k.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return warnings, &deploy.InputError{Field: "--cert-key", Value: key, Reason: "is not a regular file"}
	}
	return warnings, nil
}

func readAtMost(f *os.File, max int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("is not a regular file")
	}
	var b bytes.Buffer
	n, err := b.ReadFrom(&limited{f: f, n: max + 1})
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, fmt.Errorf("is larger than %d bytes", max)
	}
	return b.Bytes(), nil
}

type limited struct {
	f *os.File
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct {
	// Env, when set, is the commands' environment.
	Env []string
	// Prefix goes before every command (nsenter --net=PATH --).
	Prefix []string
}

func (ExecRunner) LookPath(name string) (string, error) { return exec.LookPath(name) }

func (r ExecRunner) Run(ctx context.Context, argv []string) (string, int, error) {
	full := append(append([]string{}, r.Prefix...), argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = r.Env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), 0, nil
}

// Program is the proxy's executable, looked up to validate.
func (k Kind) Program() string { return string(k) }

// SiteCheck is what [ValidateSite] found.
type SiteCheck struct {
	// Checked: the program is installed and ran.
	Checked bool
	// Command is what ran, in short ("nginx -t", "caddy validate");
	// Output what it said.
	Command string
	Output  string
	OK      bool
}

// ValidateSite checks a site configuration on its own with the proxy's
// checker, in the scratch directory dir: nginx -t with a minimal main
// configuration that includes the site in its http block (pid, error log
// and temp paths in dir), or caddy validate on the site as a Caddyfile
// (Caddy's data and config dirs in dir). A program that is not installed
// gives Checked false and no error.
func ValidateSite(ctx context.Context, r Runner, kind Kind, data []byte, dir string) (SiteCheck, error) {
	if _, err := r.LookPath(kind.Program()); err != nil {
		return SiteCheck{}, nil
	}
	var argv []string
	switch kind {
	case Nginx:
		site := filepath.Join(dir, "site.conf")
		main := filepath.Join(dir, "nginx.conf")
		conf := fmt.Sprintf("pid %s;\nerror_log stderr;\nevents {}\nhttp {\n    client_body_temp_path %s;\n    proxy_temp_path %s;\n    fastcgi_temp_path %s;\n    uwsgi_temp_path %s;\n    scgi_temp_path %s;\n    access_log off;\n    include %s;\n}\n",
			filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "body"), filepath.Join(dir, "proxy"), filepath.Join(dir, "fastcgi"),
			filepath.Join(dir, "uwsgi"), filepath.Join(dir, "scgi"), site)
		if err := os.WriteFile(site, data, 0o600); err != nil {
			return SiteCheck{}, err
		}
		if err := os.WriteFile(main, []byte(conf), 0o600); err != nil {
			return SiteCheck{}, err
		}
		argv = []string{"nginx", "-t", "-q", "-e", "stderr", "-p", dir, "-c", main}
	case Caddy:
		site := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(site, data, 0o600); err != nil {
			return SiteCheck{}, err
		}
		argv = []string{"caddy", "validate", "--config", site, "--adapter", "caddyfile"}
	default:
		return SiteCheck{}, fmt.Errorf("unknown proxy %q", kind)
	}
	out, code, err := r.Run(ctx, argv)
	if err != nil {
		return SiteCheck{}, err
	}
	return SiteCheck{Checked: true, Command: strings.Join(argv[:2], " "), Output: strings.TrimSpace(out), OK: code == 0}, nil
}
