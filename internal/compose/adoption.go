package compose

import (
	"fmt"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/deploy"
)

// Adoption is what `rdctl adopt` makes of a running stack.
type Adoption struct {
	Stack    *Detected
	Findings []adopt.Finding
	// Record is the validated record to write.
	Record *deploy.Record
	// IDHostSource says where Record.IDHost came from (see adopt.IDHost).
	IDHostSource string
	// Refused is true when a finding with severity error stops the record
	// from being written (Request.Force records it anyway).
	Refused bool
}

// Adopt builds the adoption of d as r asks: its findings, its record with
// r.Relay and the ID server chosen as for units (hostname asked only when
// needed), and whether its findings refuse it. It fails with
// adopt.ErrNoIDHost when no ID server is usable.
func Adopt(d *Detected, r adopt.Request, hostname func() (name, source string)) (*Adoption, error) {
	a := &Adoption{Stack: d, Findings: d.Findings()}
	rec, err := d.Record(r.Relay)
	if err != nil {
		return nil, err
	}
	hp, source, err := adopt.IDHost(r.IDHost, rec.Relay, hostname)
	if err != nil {
		return nil, err
	}
	rec.IDHost = hp.String()
	rec.TailnetHost = r.TailnetHost
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("cannot record compose project %s: %w", d.Project, err)
	}
	a.Record, a.IDHostSource = rec, source
	a.Refused = adopt.HasError(a.Findings) && !r.Force
	return a, nil
}

// RefusedError is a stack not recorded because its keys are not on the
// host. It says what to mount where to fix that.
type RefusedError struct {
	Project string
	// MountTarget is where the image keeps its data: mount the data
	// directory there.
	MountTarget string
	// WorkingDir is where hbbs keeps its keys in the container now.
	WorkingDir string
	// ConfigFiles are the project's compose files.
	ConfigFiles []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("not recording compose project %s: its keys are not on the host, so a recreated container serves a new key", e.Project)
}

// Refusal is the error of a refused adoption, or nil.
func (a *Adoption) Refusal() error {
	if !a.Refused {
		return nil
	}
	d := a.Stack
	return &RefusedError{Project: d.Project, MountTarget: MountTargetFor(d.Image), WorkingDir: d.WorkingDir,
		ConfigFiles: append([]string(nil), d.ConfigFiles...)}
}
