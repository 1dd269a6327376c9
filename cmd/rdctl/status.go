package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/doctor"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rotate"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/systemd"
)

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the server's units, key, ports and backups",
		Description: `Reports, from the deployment record: the units' states (active/sub state, main
PID, restarts, unit file state) or, for a compose stack, its containers'
(state, restarts, image, mounts, from the Docker engine), the key's
fingerprint, the key files' modes and owners and whether id_ed25519.pub
agrees, which of tcp 21115-21119 and udp 21116 are listening (from
/proc/net), the last rotation (newest backup), the number of backups, and
whether a next key is staged. With --root only files are read: unit
files and enablement links instead of systemd, no sockets. Changes nothing;
exits 0 whenever the record can be read, whatever it shows (rdctl doctor judges).

JSON (--json): record, root, backend, origin, id_host, relay, working_dir;
units[] with name, unit_file, unit_file_state, load_state, active_state,
sub_state, main_pid, restarts, result (live only: the last five), units_error;
containers[] (live, compose backend) with service, container, state, running,
restarting, restarts, exit_code, image, working_dir, mounts[] {type, name,
source, destination, rw}, key_dir, and containers_error;
key with dir, present, valid, public_key, fingerprint, pub_file_matches, error,
secret and pub {path, mode, uid, gid, user, group}; ports[] with proto, port,
owner, listening, addresses[] (absent with --root), ports_error; backups with
count, last_rotation, last_rotation_time, newest; staged with present,
public_key, fingerprint, error.

Examples:
  rdctl status
  rdctl --json status
  rdctl --root ./image status`,
		Action: func(ctx context.Context, cmd *cli.Command) error { return runStatus(ctx, e) },
	}
}

type statusJSON struct {
	Record     string           `json:"record"`
	Root       string           `json:"root,omitempty"`
	Backend    string           `json:"backend"`
	Origin     string           `json:"origin"`
	IDHost     string           `json:"id_host"`
	Relay      string           `json:"relay"`
	WorkingDir string           `json:"working_dir"`
	Units      []statusUnitJSON `json:"units"`
	UnitsError string           `json:"units_error,omitempty"`
	// Containers are the compose stack's hbbs and hbbr containers (live,
	// compose backend only); ContainersError says why they are unknown.
	Containers      []statusContainerJSON `json:"containers,omitempty"`
	ContainersError string                `json:"containers_error,omitempty"`
	Key             statusKeyJSON         `json:"key"`
	Ports           []doctor.PortState    `json:"ports,omitempty"`
	PortsError      string                `json:"ports_error,omitempty"`
	Backups         statusBackupsJSON     `json:"backups"`
	Staged          statusStagedJSON      `json:"staged"`
	Tailnet         *statusTailnetJSON    `json:"tailnet,omitempty"`
}

type statusUnitJSON struct {
	Name          string `json:"name"`
	UnitFile      string `json:"unit_file,omitempty"`
	UnitFileState string `json:"unit_file_state"`
	LoadState     string `json:"load_state,omitempty"`
	ActiveState   string `json:"active_state,omitempty"`
	SubState      string `json:"sub_state,omitempty"`
	MainPID       uint32 `json:"main_pid,omitempty"`
	// Restarts is nil where systemd was not asked (--root).
	Restarts *uint32 `json:"restarts,omitempty"`
	Result   string  `json:"result,omitempty"`
}

// statusContainerJSON is one container of a compose service as the engine
// reports it. State is "missing" when the service has no container.
type statusContainerJSON struct {
	Service    string          `json:"service"`
	Container  string          `json:"container,omitempty"`
	State      string          `json:"state"`
	Running    bool            `json:"running"`
	Restarting bool            `json:"restarting"`
	Restarts   int             `json:"restarts"`
	ExitCode   int             `json:"exit_code"`
	Image      string          `json:"image,omitempty"`
	WorkingDir string          `json:"working_dir,omitempty"`
	Mounts     []compose.Mount `json:"mounts"`
	// KeyDir is the host directory mounted over WorkingDir, "" when the
	// keys are in the container layer.
	KeyDir string `json:"key_dir,omitempty"`
}

type statusFileJSON struct {
	Path  string `json:"path"`
	Mode  string `json:"mode"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
}

type statusKeyJSON struct {
	Dir            string          `json:"dir"`
	Present        bool            `json:"present"`
	Valid          bool            `json:"valid"`
	PublicKey      string          `json:"public_key,omitempty"`
	Fingerprint    string          `json:"fingerprint,omitempty"`
	PubFileMatches bool            `json:"pub_file_matches"`
	Error          string          `json:"error,omitempty"`
	Secret         *statusFileJSON `json:"secret,omitempty"`
	Pub            *statusFileJSON `json:"pub,omitempty"`
}

type statusBackupsJSON struct {
	Count            int    `json:"count"`
	LastRotation     string `json:"last_rotation,omitempty"`
	LastRotationTime string `json:"last_rotation_time,omitempty"`
	Newest           string `json:"newest,omitempty"`
	Error            string `json:"error,omitempty"`
}

type statusStagedJSON struct {
	Present     bool   `json:"present"`
	PublicKey   string `json:"public_key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Error       string `json:"error,omitempty"`
}

func runStatus(ctx context.Context, e *env) error {
	rec, err := e.loadRecord()
	if err != nil {
		return err
	}
	wd := e.under(rec.WorkingDir)
	out := statusJSON{Record: e.recordPath(), Root: e.root, Backend: rec.Backend, Origin: rec.Origin,
		IDHost: rec.IDHost, Relay: rec.Relay, WorkingDir: rec.WorkingDir, Units: []statusUnitJSON{}}

	if rec.Backend == deploy.BackendSystemd {
		out.Units, err = e.statusUnits(ctx, rec)
		if err != nil {
			out.UnitsError = err.Error()
		}
	} else {
		out.UnitsError = "the " + rec.Backend + " backend has no systemd units"
	}
	if rec.Backend == deploy.BackendCompose && e.root == "" {
		out.Containers = []statusContainerJSON{}
		st, err := inspectStack(ctx, rec)
		if err != nil {
			out.ContainersError = err.Error()
		} else {
			for _, s := range st.Services {
				c := statusContainerJSON{Service: s.Service, Container: s.Container, State: s.State, Running: s.Running, Restarting: s.Restarting,
					Restarts: s.Restarts, ExitCode: s.ExitCode, Image: s.Image, WorkingDir: s.WorkingDir, Mounts: s.Mounts, KeyDir: s.KeyDir}
				if c.Mounts == nil {
					c.Mounts = []compose.Mount{}
				}
				out.Containers = append(out.Containers, c)
			}
		}
	}
	out.Key = statusKey(e, wd)
	if e.root == "" {
		ls, err := doctor.ReadListeners("/proc")
		if err != nil {
			out.PortsError = err.Error()
		}
		out.Ports = doctor.MatchPorts(doctor.ServerPorts, ls)
		out.Tailnet = statusTailnet(ctx, e.tsSocket, out.Ports)
	}
	out.Backups = statusBackups(wd, e.stateDir(rec))
	if p, err := rotate.Staged(e.stateDir(rec)); err != nil && !errors.Is(err, os.ErrNotExist) {
		out.Staged.Error = err.Error()
	} else if !p.IsZero() {
		out.Staged = statusStagedJSON{Present: true, PublicKey: p.PublicBase64(), Fingerprint: p.Fingerprint()}
	}

	if e.json {
		return writeJSON(e.stdout, out)
	}
	printStatus(e, &out)
	return nil
}

// inspectStack asks the Docker engine (within 10 s) about a compose
// record's hbbs and hbbr containers.
func inspectStack(ctx context.Context, rec *deploy.Record) (*compose.StackStatus, error) {
	if rec.Compose == nil || rec.Compose.Project == "" {
		return nil, errors.New("the record names no compose project")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return compose.Inspect(ctx, rec.Compose.Project)
}

// statusUnits asks systemd (live) or reads the unit files and enablement
// links (--root) for both units.
func (e *env) statusUnits(ctx context.Context, rec *deploy.Record) ([]statusUnitJSON, error) {
	names := []string{rec.HBBSUnit, rec.HBBRUnit}
	var out []statusUnitJSON
	if e.root != "" {
		for _, n := range names {
			u := statusUnitJSON{Name: n, UnitFileState: "not-found"}
			if f, err := adopt.LoadUnit(e.root, n); err == nil {
				u.UnitFile = f.Path
				u.UnitFileState = "disabled"
				switch {
				case f.Masked:
					u.UnitFileState = "masked"
				case unitLinked(e, n):
					u.UnitFileState = "enabled"
				}
			}
			out = append(out, u)
		}
		return out, nil
	}
	states, err := liveUnitStates(ctx, names)
	for _, st := range states {
		restarts := st.NRestarts
		out = append(out, statusUnitJSON{Name: st.Name, UnitFileState: st.UnitFileState, LoadState: st.LoadState,
			ActiveState: st.ActiveState, SubState: st.SubState, MainPID: st.MainPID, Restarts: &restarts, Result: st.Result})
	}
	for i := range out {
		if uf, err := adopt.LoadUnit("", out[i].Name); err == nil {
			out[i].UnitFile = uf.Path
		}
	}
	return out, err
}

// liveUnitStates reads the units' states over D-Bus, within 5 s.
func liveUnitStates(ctx context.Context, names []string) ([]systemd.UnitState, error) {
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

// unitLinked reports whether a *.wants/ link enables the unit in the tree.
func unitLinked(e *env, unit string) bool {
	for _, dir := range []string{systemd.WantsDir, "/etc/systemd/system/default.target.wants", "/etc/systemd/system/graphical.target.wants"} {
		if _, err := os.Lstat(e.under(path.Join(dir, unit))); err == nil {
			return true
		}
	}
	return false
}

func statusKey(e *env, wd string) statusKeyJSON {
	k := statusKeyJSON{Dir: wd}
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
		k.Error = st.SecretErr.Error()
	}
	acc := doctor.Accounts{Root: e.root}
	file := func(name string, info safefs.Info) *statusFileJSON {
		return &statusFileJSON{Path: path.Join(wd, name), Mode: fmt.Sprintf("%04o", info.Mode.Perm()), UID: info.UID, GID: info.GID,
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

func statusBackups(wd, sd string) statusBackupsJSON {
	var b statusBackupsJSON
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
		// The stamp starts with the UTC time; labels (-uninstall) and
		// collision counters follow it.
		if len(newest.Stamp) >= len("20060102T150405Z") {
			if t, err := time.Parse("20060102T150405Z", newest.Stamp[:len("20060102T150405Z")]); err == nil {
				b.LastRotationTime = t.UTC().Format(time.RFC3339)
			}
		}
	}
	return b
}

func printStatus(e *env, s *statusJSON) {
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	if e.quiet {
		return
	}
	fmt.Fprintf(tw, "server:\t%s backend, origin %s, record %s\n", s.Backend, s.Origin, s.Record)
	fmt.Fprintf(tw, "clients:\tID server %s, relay %s\n", s.IDHost, orNone(s.Relay))
	if s.Containers == nil {
		fmt.Fprintf(tw, "units:\t%s\n", map[bool]string{true: "(image tree: unit files only)", false: ""}[e.root != ""])
	} else {
		fmt.Fprintf(tw, "containers:\t\n")
		for _, c := range s.Containers {
			var ms []string
			for _, m := range c.Mounts {
				ms = append(ms, m.Source+":"+m.Destination)
			}
			fmt.Fprintf(tw, "  %s\t%s\trestarts %d\t%s\t%s\n", c.Service, c.State, c.Restarts, orNone(c.Image), orNone(strings.Join(ms, " ")))
		}
		if s.ContainersError != "" {
			fmt.Fprintf(tw, "  (%s)\n", s.ContainersError)
		}
	}
	for _, u := range s.Units {
		switch {
		case u.Restarts == nil:
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", u.Name, u.UnitFileState, orNone(u.UnitFile))
		default:
			fmt.Fprintf(tw, "  %s\t%s/%s\tpid %d\trestarts %d\t%s\n", u.Name, u.ActiveState, u.SubState, u.MainPID, *u.Restarts, u.UnitFileState)
		}
	}
	if s.UnitsError != "" && s.Containers == nil {
		fmt.Fprintf(tw, "  (%s)\n", s.UnitsError)
	}
	if t := s.Tailnet; t != nil {
		if t.Error != "" {
			fmt.Fprintf(tw, "tailnet:\t%s\n", t.Error)
		} else {
			var open []string
			for _, p := range t.Ports {
				if p.Reachable {
					open = append(open, fmt.Sprintf("%s/%d", p.Proto, p.Port))
				}
			}
			fmt.Fprintf(tw, "tailnet:\t%s %s (%s mode); hbbs/hbbr reachable there on %s\n", orNone(t.DNSName), strings.Join(t.IPs, " "), t.Mode, orNone(strings.Join(open, " ")))
		}
	}
	k := s.Key
	fmt.Fprintf(tw, "key:\t%s\n", k.Dir)
	if k.PublicKey != "" {
		fmt.Fprintf(tw, "  public key:\t%s\n  fingerprint:\t%s\n", k.PublicKey, k.Fingerprint)
	}
	if k.Error != "" {
		fmt.Fprintf(tw, "  problem:\t%s\n", k.Error)
	}
	for _, f := range []*statusFileJSON{k.Secret, k.Pub} {
		if f == nil {
			continue
		}
		note := ""
		if f == k.Pub {
			note = map[bool]string{true: "agrees with the secret", false: "DISAGREES with the secret"}[k.PubFileMatches]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s:%s (%d:%d)\t%s\n", path.Base(f.Path), f.Mode, orNum(f.User, f.UID), orNum(f.Group, f.GID), f.UID, f.GID, note)
	}
	if e.root == "" {
		fmt.Fprintf(tw, "ports:\t\n")
		for _, p := range s.Ports {
			state := "listening"
			if !p.Listening {
				state = "CLOSED"
			}
			fmt.Fprintf(tw, "  %s %d\t%s\t%s\t%s\n", p.Proto, p.Port.Port, state, shortList(p.Addresses, 3), p.Owner)
		}
		if s.PortsError != "" {
			fmt.Fprintf(tw, "  (%s)\n", s.PortsError)
		}
	}
	switch {
	case s.Backups.Count == 0:
		fmt.Fprintf(tw, "backups:\tnone\n")
	default:
		fmt.Fprintf(tw, "backups:\t%d, newest %s (%s)\n", s.Backups.Count, s.Backups.LastRotation, s.Backups.LastRotationTime)
	}
	if s.Staged.Present {
		fmt.Fprintf(tw, "staged key:\t%s (switch to it: rdctl rotate --commit)\n", s.Staged.Fingerprint)
	} else {
		fmt.Fprintf(tw, "staged key:\tnone\n")
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func orNum(name string, id int) string {
	if name == "" {
		return fmt.Sprint(id)
	}
	return name
}

// shortList joins at most n items and says how many more there are.
func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, " ")
	}
	return fmt.Sprintf("%s (+%d more)", strings.Join(items[:n], " "), len(items)-n)
}
