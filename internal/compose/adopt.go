package compose

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/serverargs"
)

// Findings are what `rdctl adopt` reports about the stack: its Warnings,
// and hbbr checking no key (a warning, as for units). A finding with
// severity error (keys in the container layer) stops adoption unless
// forced; see [adopt.HasError].
func (d *Detected) Findings() []adopt.Finding {
	out := append([]adopt.Finding{}, d.Warnings...)
	hasHBBR := false
	for _, s := range d.Services {
		hasHBBR = hasHBBR || s.Service == ServiceHBBR || (len(s.Command) > 0 && path.Base(s.Command[0]) == "hbbr")
	}
	if hasHBBR && d.HBBRKey == "" {
		out = append(out, adopt.Finding{ID: adopt.FindingHBBREnforcesKey, Severity: adopt.SeverityWarning,
			Message: "hbbr checks no key (no -k): anyone can relay through it; rdctl install compose runs it with -k _"})
	}
	return out
}

// Record is the deployment record of the stack, relay (when set) replacing
// the one hbbs advertises. Its working directory is the host directory
// mounted over hbbs's working directory; when there is none (keys in the
// container layer, recorded only when forced) it is the source of hbbs's
// first mount, the directory the stack meant to keep its data in. IDHost
// is left for the caller (see [adopt.IDHost]), so the record is not
// validated yet.
func (d *Detected) Record(relay string) (*deploy.Record, error) {
	wd, target := d.DataDir, d.MountTarget
	if wd == "" {
		for _, s := range d.Services {
			if len(s.Mounts) > 0 && (s.Service == ServiceHBBS || target == "") {
				wd, target = s.Mounts[0].Source, s.Mounts[0].Destination
			}
		}
	}
	if wd == "" {
		return nil, fmt.Errorf("compose project %s mounts no host directory: its keys live only in the container layer; rdctl has nothing to record", d.Project)
	}
	if d.ProjectDir == "" {
		return nil, fmt.Errorf("compose project %s has no %s label: its directory is unknown", d.Project, LabelWorkingDir)
	}
	// rdctl's record knows host and bridge networking; a project network
	// ("<project>_default") is a bridge network.
	network := NetworkBridge
	if d.Network == NetworkHost {
		network = NetworkHost
	}
	if relay == "" && d.Relay != "" {
		// As hbbs splits -r: empty entries skipped; each gets its port.
		var hps []deploy.HostPort
		for _, entry := range serverargs.SplitRelays(d.Relay) {
			hp, err := deploy.ParseHostPort("relay", entry)
			if err != nil {
				return nil, fmt.Errorf("compose project %s: hbbs advertises %w", d.Project, err)
			}
			hps = append(hps, hp.WithDefaultPort(deploy.RelayPort))
		}
		relay = deploy.JoinRelays(hps)
	} else if relay != "" {
		hps, err := deploy.ParseRelays("--relay", relay)
		if err != nil {
			return nil, err
		}
		relay = deploy.JoinRelays(hps)
	}
	return &deploy.Record{
		Format: 1, Backend: deploy.BackendCompose, Origin: adopt.OriginCompose,
		Relay: relay, WorkingDir: wd, HBBREnforcesKey: d.HBBRKey != "",
		Compose: &deploy.ComposeRecord{Dir: d.ProjectDir, Image: d.Image, Network: network, Project: d.Project, MountTarget: target},
	}, nil
}

// ErrNoStack means no running compose project (of the name asked for)
// uses a RustDesk server image or runs hbbs/hbbr.
var ErrNoStack = errors.New("found no running compose project that uses a rustdesk image or runs hbbs/hbbr")

// SeveralStacksError means several such projects run and none was named.
type SeveralStacksError struct {
	Stacks []Detected
}

func (e *SeveralStacksError) Error() string {
	var names []string
	for _, d := range e.Stacks {
		dir := d.ProjectDir
		if dir == "" {
			dir = "none"
		}
		names = append(names, fmt.Sprintf("%s (%s)", d.Project, dir))
	}
	return fmt.Sprintf("found %d compose projects running RustDesk: %s", len(e.Stacks), strings.Join(names, ", "))
}

// FindStack asks the engine for the stack to adopt: the running project
// named project, or the only one running when project is empty. It fails
// with ErrNoEngine (wrapped) when the engine cannot be reached, ErrNoStack
// or a *SeveralStacksError.
func FindStack(ctx context.Context, project string) (*Detected, error) {
	eng, err := Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	stacks, err := eng.Detect(ctx)
	if err != nil {
		return nil, err
	}
	stacks = SelectProject(stacks, project)
	switch len(stacks) {
	case 0:
		return nil, ErrNoStack
	case 1:
		return &stacks[0], nil
	}
	return nil, &SeveralStacksError{Stacks: stacks}
}

// SelectProject keeps the stacks of the named project; an empty name keeps
// them all.
func SelectProject(stacks []Detected, project string) []Detected {
	if project == "" {
		return stacks
	}
	var keep []Detected
	for _, d := range stacks {
		if d.Project == project {
			keep = append(keep, d)
		}
	}
	return keep
}
