// Package fleet is what rdctl check is asked to check: targets parsed from
// arguments, a targets file and the deployment record, bounded in number
// and line length so that reading them costs little whatever the input.
package fleet

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// MaxTargets bounds one check: its results are held in memory until it
// ends. A million-line file took 4.35 GB and three minutes; 100,000
// targets take about 250 MB (scripts/bench-fleet-deadline).
const MaxTargets = 100_000

// MaxLine bounds a line of a targets file (a host name is at most 253
// bytes; the rest is room for a port and a comment), so reading it never
// holds more than that of a line that never ends.
const MaxLine = 4096

// TooManyError is more than MaxTargets targets.
type TooManyError struct{ Max int }

func (e *TooManyError) Error() string { return fmt.Sprintf("more than %d targets", e.Max) }

// TargetError is a target that is not HOST, HOST:P or [IPv6]:P.
type TargetError struct {
	Target string
	Err    error
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("invalid target %s: %v", textsafe.Echo(e.Target), e.Err)
}
func (e *TargetError) Unwrap() error { return e.Err }

// FileError is a problem with the targets file, at Line when it is one
// line's (0 for the file as a whole).
type FileError struct {
	File string
	Line int
	Err  error
}

func (e *FileError) Error() string {
	var pe *fs.PathError
	if e.Line == 0 && errors.As(e.Err, &pe) {
		return fmt.Sprintf("--targets-file: %v", e.Err) // it names the file
	}
	if e.Line == 0 {
		return fmt.Sprintf("--targets-file %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("--targets-file %s:%d: %v", e.File, e.Line, e.Err)
}
func (e *FileError) Unwrap() error { return e.Err }

var (
	errOnePerLine = errors.New("one target per line")
	errLongLine   = fmt.Errorf("line longer than %d bytes", MaxLine)
)

// Parse reads the arguments and the lines of the targets file (blank lines
// and # comments skipped) into targets, dropping exact repeats. The file is
// read a line at a time and reading stops at the first target past
// MaxTargets.
func Parse(args []string, file string) ([]probe.Target, error) {
	seen := map[string]bool{}
	var out []probe.Target
	add := func(s string) error {
		if seen[s] {
			return nil
		}
		seen[s] = true
		if len(out) == MaxTargets {
			return &TooManyError{Max: MaxTargets}
		}
		t, err := ParseTarget(s)
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	}
	for _, s := range args {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	if file == "" {
		return out, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, &FileError{File: file, Err: err}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 512), MaxLine)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) > 1 {
			return nil, &FileError{File: file, Line: line, Err: errOnePerLine}
		}
		for _, s := range fields {
			if err := add(s); err != nil {
				return nil, &FileError{File: file, Line: line, Err: err}
			}
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return nil, &FileError{File: file, Line: line + 1, Err: errLongLine}
	}
	if err := sc.Err(); err != nil {
		return nil, &FileError{File: file, Err: err}
	}
	return out, nil
}

// ParseTarget accepts HOST, HOST:P and [IPv6]:P (P = hbbs's base port),
// and ws://HOST[:PORT] and wss://HOST[:PORT] for a server behind a
// WebSocket reverse proxy (PORT is the proxy's; see proxy.go).
func ParseTarget(s string) (probe.Target, error) {
	if scheme, rest, ok := cutScheme(s); ok {
		return parseProxyTarget(s, scheme, rest)
	} else if scheme != "" {
		return probe.Target{}, &TargetError{Target: s, Err: fmt.Errorf("unknown scheme %s (a target is HOST[:PORT], ws://HOST[:PORT] or wss://HOST[:PORT])", textsafe.Echo(scheme+"://"))}
	}
	hp, err := deploy.ParseHostPort("target", s)
	if err != nil {
		return probe.Target{}, err
	}
	t := probe.Target{Name: s, Host: string(hp.Host), Port: int(hp.Port)}
	if err := t.Validate(); err != nil {
		return probe.Target{}, &TargetError{Target: s, Err: err}
	}
	return t, nil
}

// RecordTarget is the deployment's ID host, with its relay where the
// record names one, or its relays where it names several (hbbs -r a,b).
func RecordTarget(rec *deploy.Record) (probe.Target, error) {
	t, err := ParseTarget(rec.IDHost)
	if err != nil {
		return t, fmt.Errorf("the deployment record's id_host: %w", err)
	}
	if rec.Relay == "" {
		return t, nil
	}
	hps, err := deploy.ParseRelays("relay", rec.Relay)
	if err != nil {
		return t, fmt.Errorf("the deployment record's relay: %w", err)
	}
	if err := WithRelays(&t, hps); err != nil {
		return t, fmt.Errorf("the deployment record's relay %q: %w", rec.Relay, err)
	}
	return t, nil
}

// WithRelays sets t's relays: one relay as RelayHost/RelayPort, several
// as Relays, each probed on its own.
func WithRelays(t *probe.Target, hps []deploy.HostPort) error {
	t.RelayHost, t.RelayPort, t.Relays = "", 0, nil
	if len(hps) == 1 {
		hp := hps[0].WithDefaultPort(deploy.RelayPort)
		if string(hp.Host) != t.Host {
			t.RelayHost = string(hp.Host)
		}
		t.RelayPort = int(hp.Port)
	} else {
		for _, hp := range hps {
			hp = hp.WithDefaultPort(deploy.RelayPort)
			t.Relays = append(t.Relays, probe.Endpoint{Host: string(hp.Host), Port: int(hp.Port)})
		}
	}
	return t.Validate()
}
