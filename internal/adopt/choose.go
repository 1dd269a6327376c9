package adopt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
)

// Where the ID server clients are given came from (IDHost's source).
const (
	IDHostFromFlag  = "--id-host"
	IDHostFromRelay = "relay"
)

// ErrNoIDHost means no ID server could be chosen: none was given, hbbs
// advertises no relay and the host's name is unusable.
var ErrNoIDHost = errors.New("cannot tell which host clients should use: hbbs advertises no relay and this host's name is unusable")

// IDHost picks the ID server clients are given: given (--id-host) when
// set, else the relay's host (clients reach both on the same machine in
// every layout adopt recognises), else this host's name from hostname,
// which is asked only then. "localhost" is never chosen: clients
// elsewhere cannot use it. source says which, for the user.
func IDHost(given deploy.HostPort, relay string, hostname func() (name, source string)) (deploy.HostPort, string, error) {
	switch {
	case given.Host != "":
		return given, IDHostFromFlag, nil
	case relay != "":
		// The first relay's host, when hbbs advertises several.
		first, _, _ := strings.Cut(relay, ",")
		if hp, err := deploy.ParseHostPort("relay", first); err == nil {
			return deploy.HostPort{Host: hp.Host}, IDHostFromRelay, nil
		}
	default:
		name, source := hostname()
		if hp, err := deploy.ParseHostPort("hostname", name); err == nil && name != "localhost" {
			return hp, source, nil
		}
	}
	return deploy.HostPort{}, "", ErrNoIDHost
}

// Hostname is this host's name and where it came from: `hostname -f` on
// the live system (os.Hostname when that fails), root's /etc/hostname in
// an image tree, where nothing live is asked.
func Hostname(ctx context.Context, root string) (name, source string) {
	if root != "" {
		data, err := os.ReadFile(filepath.Join(root, "etc/hostname"))
		if err != nil {
			return "", ""
		}
		return strings.TrimSpace(string(data)), "/etc/hostname"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "hostname", "-f").Output(); err == nil {
		return strings.TrimSpace(string(out)), "hostname -f"
	}
	n, _ := os.Hostname()
	return n, "hostname"
}

// SelectOrigin keeps the installs of one origin; an empty origin keeps
// them all. OriginRdctl also keeps OriginCustom: both are hbbs.service and
// hbbr.service, told apart only by rdctl's header.
func SelectOrigin(found []*Install, origin string) []*Install {
	if origin == "" {
		return found
	}
	var keep []*Install
	for _, in := range found {
		if in.Origin == origin || (origin == OriginRdctl && in.Origin == OriginCustom) {
			keep = append(keep, in)
		}
	}
	return keep
}

// ErrNoInstall means Find found no install (of the origin asked for).
var ErrNoInstall = errors.New("found no hbbs/hbbr install")

// SeveralInstallsError means several installs were found and no origin
// chose one.
type SeveralInstallsError struct {
	Installs []*Install
}

func (e *SeveralInstallsError) Error() string {
	var names []string
	for _, in := range e.Installs {
		names = append(names, fmt.Sprintf("%s (%s)", in.Origin, in.HBBS.Unit.Path))
	}
	return fmt.Sprintf("found %d installs: %s", len(e.Installs), strings.Join(names, ", "))
}

// Find is the install to adopt under root: the one of origin (see
// SelectOrigin), or the only one when origin is empty. It fails with
// ErrNoInstall or a *SeveralInstallsError.
func Find(root, origin string) (*Install, error) {
	found, err := Detect(root)
	if err != nil {
		return nil, err
	}
	found = SelectOrigin(found, origin)
	switch len(found) {
	case 0:
		return nil, ErrNoInstall
	case 1:
		return found[0], nil
	}
	return nil, &SeveralInstallsError{Installs: found}
}
