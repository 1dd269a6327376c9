package status

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/doctor"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/systemd"
)

// Options say which deployment to report on and how to reach the live
// sources. The function fields are seams: nil means the real source.
type Options struct {
	// Record is the deployment record; required.
	Record *deploy.Record
	// RecordPath is where Record was read from, as the report names it.
	RecordPath string
	// Root is the image tree every path is resolved under; "" means the
	// live system. Under a root nothing live is asked.
	Root string

	// ProcDir is where listening sockets are read from (live); "" means
	// /proc.
	ProcDir string
	// Units asks systemd about the units (live); nil means [LiveUnits].
	Units func(ctx context.Context, names []string) ([]systemd.UnitState, error)
	// Stack asks the engine about a compose record's containers (live);
	// nil means [InspectStack].
	Stack func(ctx context.Context, rec *deploy.Record) (*compose.StackStatus, error)
	// Tailnet asks tailscaled about this host (live). A nil func, or a
	// nil TailnetSelf with a nil error (no tailscaled), leaves the
	// report's Tailnet nil: the tailnet is optional.
	Tailnet func(ctx context.Context) (*TailnetSelf, error)
}

// TailnetSelf is this host as tailscaled sees it; the caller converts its
// tailscale client's answer into it.
type TailnetSelf struct {
	HostName string
	DNSName  string // trailing dot allowed
	IPs      []netip.Addr
	Mode     string // "tun", or "userspace" when tailscaled hands tailnet traffic to 127.0.0.1
}

// ErrNoRecord is returned by Gather without a record.
var ErrNoRecord = errors.New("status: no deployment record given")

// ErrNoComposeProject means a compose record names no project to inspect.
var ErrNoComposeProject = errors.New("the record names no compose project")

// Gather reads the deployment's state. Only a missing record is an error;
// a source that cannot be read is reported in the Report's *Error fields.
func Gather(ctx context.Context, o Options) (*Report, error) {
	rec := o.Record
	if rec == nil {
		return nil, ErrNoRecord
	}
	live := o.Root == ""
	wd := under(o.Root, rec.WorkingDir)
	r := &Report{Record: o.RecordPath, Root: o.Root, Backend: rec.Backend, Origin: rec.Origin,
		IDHost: rec.IDHost, Relay: rec.Relay, Relays: []string{}, WorkingDir: rec.WorkingDir, Units: []Unit{}, Proxy: rec.Proxy}
	for _, hp := range rec.RelayList() {
		r.Relays = append(r.Relays, hp.String())
	}

	if rec.Backend == deploy.BackendSystemd {
		var err error
		if r.Units, err = o.units(ctx, rec); err != nil {
			r.UnitsError = err.Error()
		}
	} else {
		r.UnitsError = "the " + rec.Backend + " backend has no systemd units"
	}
	if rec.Backend == deploy.BackendCompose && live {
		r.Containers, r.ContainersError = o.containers(ctx, rec)
	}
	r.Key = gatherKey(o.Root, wd)
	if live {
		proc := o.ProcDir
		if proc == "" {
			proc = "/proc"
		}
		ls, err := doctor.ReadListeners(proc)
		if err != nil {
			r.PortsError = err.Error()
		}
		r.Ports = doctor.MatchPorts(doctor.ServerPorts, ls)
		if o.Tailnet != nil {
			self, err := o.Tailnet(ctx)
			r.Tailnet = gatherTailnet(self, err, r.Ports)
		}
	}
	sd := under(o.Root, deploy.StateDirFor(rec.WorkingDir))
	r.Backups = gatherBackups(wd, sd)
	if p, err := rotate.Staged(sd); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.Staged.Error = err.Error()
	} else if !p.IsZero() {
		r.Staged = Staged{Present: true, PublicKey: p.PublicBase64(), Fingerprint: p.Fingerprint()}
	}
	return r, nil
}

// under resolves an absolute system path under root.
func under(root, p string) string {
	if root == "" {
		return p
	}
	return filepath.Join(root, p)
}

// units asks systemd (live) or reads the unit files and enablement links
// (image root) for both units. It never returns a nil slice: the JSON
// contract has units[].
func (o *Options) units(ctx context.Context, rec *deploy.Record) ([]Unit, error) {
	names := []string{rec.HBBSUnit, rec.HBBRUnit}
	out := []Unit{}
	if o.Root != "" {
		for _, n := range names {
			u := Unit{Name: n, UnitFileState: "not-found"}
			if f, err := adopt.LoadUnit(o.Root, n); err == nil {
				u.UnitFile = f.Path
				u.UnitFileState = "disabled"
				switch {
				case f.Masked:
					u.UnitFileState = "masked"
				case unitLinked(o.Root, n):
					u.UnitFileState = "enabled"
				}
			}
			out = append(out, u)
		}
		return out, nil
	}
	ask := o.Units
	if ask == nil {
		ask = LiveUnits
	}
	states, err := ask(ctx, names)
	for _, st := range states {
		restarts := st.NRestarts
		u := Unit{Name: st.Name, UnitFileState: st.UnitFileState, LoadState: st.LoadState,
			ActiveState: st.ActiveState, SubState: st.SubState, MainPID: st.MainPID, Restarts: &restarts, Result: st.Result}
		// systemd knows the state, the file is read for its path.
		if uf, err := adopt.LoadUnit("", u.Name); err == nil {
			u.UnitFile = uf.Path
		}
		out = append(out, u)
	}
	return out, err
}

// wantsDirs are where an install (or an admin's systemctl enable) links a
// unit to enable it at boot.
var wantsDirs = []string{systemd.WantsDir, "/etc/systemd/system/default.target.wants", "/etc/systemd/system/graphical.target.wants"}

// unitLinked reports whether a *.wants/ link enables the unit in the tree.
func unitLinked(root, unit string) bool {
	for _, dir := range wantsDirs {
		if _, err := os.Lstat(under(root, path.Join(dir, unit))); err == nil {
			return true
		}
	}
	return false
}

// LiveUnits reads the units' states over D-Bus, within 5 s. On an error
// it returns the states read before it.
func LiveUnits(ctx context.Context, names []string) ([]systemd.UnitState, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := systemd.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	var out []systemd.UnitState
	for _, n := range names {
		st, err := m.State(ctx, n)
		if err != nil {
			return out, fmt.Errorf("%s: %w", n, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// InspectStack asks the Docker engine (within 10 s) about a compose
// record's hbbs and hbbr containers.
func InspectStack(ctx context.Context, rec *deploy.Record) (*compose.StackStatus, error) {
	if rec.Compose == nil || rec.Compose.Project == "" {
		return nil, ErrNoComposeProject
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return compose.Inspect(ctx, rec.Compose.Project)
}

// containers reports the stack's containers, never nil: a live compose
// report always has containers[], empty when the engine did not answer.
func (o *Options) containers(ctx context.Context, rec *deploy.Record) ([]Container, string) {
	ask := o.Stack
	if ask == nil {
		ask = InspectStack
	}
	out := []Container{}
	st, err := ask(ctx, rec)
	if err != nil {
		return out, err.Error()
	}
	for _, s := range st.Services {
		c := Container{Service: s.Service, Container: s.Container, State: s.State, Running: s.Running, Restarting: s.Restarting,
			Restarts: s.Restarts, ExitCode: s.ExitCode, Image: s.Image, WorkingDir: s.WorkingDir, Mounts: s.Mounts, KeyDir: s.KeyDir,
			Published: s.Published}
		if c.Mounts == nil {
			c.Mounts = []compose.Mount{}
		}
		out = append(out, c)
	}
	return out, ""
}

// gatherKey reads the key files in wd: validity, fingerprint, and each
// file's mode and owner with names from the tree's (or host's) accounts.
func gatherKey(root, wd string) Key {
	k := Key{Dir: wd}
	st, err := inspectDir(wd)
	if err != nil {
		k.Error = err.Error()
		return k
	}
	k.Present, k.Valid, k.PubFileMatches = st.SecretPresent, st.Valid, st.PubMatches
	if !st.Pair.IsZero() {
		k.PublicKey, k.Fingerprint = st.Pair.PublicBase64(), st.Pair.Fingerprint()
	}
	switch {
	case !st.SecretPresent:
		k.Error = "no " + keys.SecretFile
	case st.SecretErr != nil:
		k.Error = st.SecretProblem()
	}
	acc := doctor.Accounts{Root: root}
	file := func(name string, info safefs.Info) *File {
		return &File{Path: path.Join(wd, name), Mode: fmt.Sprintf("%04o", info.Mode.Perm()), UID: info.UID, GID: info.GID,
			User: acc.UserName(info.UID), Group: acc.GroupName(info.GID)}
	}
	if st.SecretPresent && st.SecretInfo.IsRegular() {
		k.Secret = file(keys.SecretFile, st.SecretInfo)
	}
	if st.PubPresent && st.PubInfo.IsRegular() {
		k.Pub = file(keys.PublicFile, st.PubInfo)
	}
	return k
}

func inspectDir(dir string) (keys.State, error) {
	d, err := safefs.OpenDir(dir)
	if err != nil {
		return keys.State{}, err
	}
	defer d.Close()
	return keys.Inspect(d)
}

// stampTime is the layout of the UTC time a backup's stamp starts with.
const stampTime = "20060102T150405Z"

func gatherBackups(wd, sd string) Backups {
	var b Backups
	all, err := rotate.ListBackups(wd, sd)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.Error = err.Error()
		}
		return b
	}
	b.Count = len(all)
	if len(all) > 0 {
		newest := all[len(all)-1]
		b.LastRotation, b.Newest = newest.Stamp, newest.Path
		// Labels (-uninstall) and collision counters follow the time.
		if len(newest.Stamp) >= len(stampTime) {
			if t, err := time.Parse(stampTime, newest.Stamp[:len(stampTime)]); err == nil {
				b.LastRotationTime = t.UTC().Format(time.RFC3339)
			}
		}
	}
	return b
}

// gatherTailnet turns the seam's answer into the report's Tailnet (nil
// without tailscaled, the error alone when it failed) and says, per server
// port, whether hbbs/hbbr listen where tailnet traffic arrives: on a
// tailnet address or the wildcard, and under userspace networking
// (tailscaled hands the traffic to 127.0.0.1) on loopback.
func gatherTailnet(self *TailnetSelf, err error, ports []doctor.PortState) *Tailnet {
	if err != nil {
		return &Tailnet{Error: err.Error()}
	}
	if self == nil {
		return nil
	}
	t := &Tailnet{Name: self.HostName, DNSName: strings.TrimSuffix(self.DNSName, "."), Mode: self.Mode, IPs: []string{}}
	for _, ip := range self.IPs {
		t.IPs = append(t.IPs, ip.String())
	}
	for _, p := range ports {
		r := TailnetPort{Proto: p.Port.Proto, Port: int(p.Port.Port)}
		for _, a := range p.Addresses {
			ap, err := netip.ParseAddrPort(a)
			if err != nil {
				continue
			}
			ip := ap.Addr().Unmap()
			switch {
			case ip.IsUnspecified(), t.Mode == "userspace" && ip.IsLoopback():
				r.Reachable = true
			default:
				for _, tip := range self.IPs {
					r.Reachable = r.Reachable || tip == ip
				}
			}
		}
		t.Ports = append(t.Ports, r)
	}
	return t
}
