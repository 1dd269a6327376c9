package adopt

import (
	"fmt"

	"github.com/rdctl/rdctl/internal/deploy"
)

// Request is what the user asked adopt for, from its flags.
type Request struct {
	// IDHost is the ID server clients are given (--id-host), if set.
	IDHost deploy.HostPort
	// Relay replaces the relay hbbs advertises, if set.
	Relay string
	// TailnetHost is the ID server tailnet clients are given
	// (--tailnet-host), recorded as tailnet_host; "" for none.
	TailnetHost string
	// Origin chooses among systemd installs (see SelectOrigin).
	Origin string
	// Backend is "" (systemd units, then compose stacks), systemd or compose.
	Backend string
	// Project names the compose project to adopt; it implies compose.
	Project string
	// Force replaces a record and records a stack whose keys are not on
	// the host.
	Force bool
	// Live is true on the live host, false in an image tree.
	Live bool
}

// FlagConflictError is two settings of a Request that contradict each other.
type FlagConflictError struct {
	Flag, Other, Reason string
}

func (e *FlagConflictError) Error() string {
	return fmt.Sprintf("%s %s; it cannot be used with %s", e.Flag, e.Reason, e.Other)
}

// Check validates r and returns it completed (a Project means compose):
// a *deploy.InputError for an unknown origin or backend, a
// *FlagConflictError for settings that contradict each other.
func (r Request) Check() (Request, error) {
	switch r.Origin {
	case "", OriginDebian, OriginInstallerScript, OriginRdctl:
	default:
		return r, &deploy.InputError{Field: "--origin", Value: r.Origin, Reason: "not debian, installer-script or rdctl"}
	}
	switch r.Backend {
	case "", deploy.BackendSystemd, deploy.BackendCompose:
	default:
		return r, &deploy.InputError{Field: "--backend", Value: r.Backend, Reason: "not systemd or compose"}
	}
	if r.Project != "" {
		if r.Backend == deploy.BackendSystemd {
			return r, &FlagConflictError{Flag: "--project", Reason: "names a compose project", Other: "--backend systemd"}
		}
		r.Backend = deploy.BackendCompose
	}
	if r.Backend == deploy.BackendCompose && r.Origin != "" {
		return r, &FlagConflictError{Flag: "--origin", Reason: "chooses among systemd installs", Other: "--backend compose"}
	}
	if r.Backend == deploy.BackendCompose && !r.Live {
		return r, &FlagConflictError{Flag: "--backend compose", Reason: "asks the live Docker engine", Other: "--root"}
	}
	return r, nil
}

// ComposeFallback reports whether, finding no systemd units, adopt looks
// for a compose stack: on a live host, when neither a backend nor an
// origin was asked for. A compose stack is the other kind of install the
// guides describe.
func (r Request) ComposeFallback() bool {
	return r.Live && r.Backend == "" && r.Origin == ""
}

// NotFoundError is [ErrNoInstall] with where adopt looked.
type NotFoundError struct {
	// Root is the image tree looked in, "" for this host.
	Root string
	// Compose is true when running compose projects were looked for too.
	Compose bool
}

func (e *NotFoundError) Error() string {
	where, looked := "this host", "rustdesk-hbbs.service, rustdesksignal.service and hbbs.service"
	if e.Root != "" {
		where = e.Root
	}
	if e.Compose {
		looked += ", and compose projects running a rustdesk image"
	}
	return fmt.Sprintf("%v in %s (looked for %s)", ErrNoInstall, where, looked)
}

func (e *NotFoundError) Unwrap() error { return ErrNoInstall }

// Adopt builds the record of the install as r asks: the ID server from
// r.IDHost, else the relay's host (r.Relay, else the one the units
// advertise), else hostname, asked only then (see IDHost). idHostSource
// says which. It fails with ErrNoIDHost when none is usable.
func (in *Install) Adopt(r Request, hostname func() (name, source string)) (rec *deploy.Record, idHostSource string, err error) {
	relay := r.Relay
	if relay == "" {
		relay = in.Relay
	}
	idHost, source, err := IDHost(r.IDHost, relay, hostname)
	if err != nil {
		return nil, "", err
	}
	rec, err = in.Record(RecordOptions{IDHost: idHost.String(), Relay: r.Relay})
	if err != nil {
		return nil, "", err
	}
	rec.TailnetHost = r.TailnetHost
	if err := rec.Validate(); err != nil {
		return nil, "", err
	}
	if in.Findings == nil {
		in.Findings = []Finding{} // JSON: [] rather than null
	}
	return rec, source, nil
}

// LookupUnit is LoadUnit for uninstall (systemd.UnitLookup): the path of
// the file systemd loads for the unit, and whether rdctl wrote it.
func LookupUnit(root, name string) (sysPath string, writtenByRdctl bool, err error) {
	u, err := LoadUnit(root, name)
	if err != nil {
		return "", false, err
	}
	return u.Path, u.WrittenByRdctl, nil
}
