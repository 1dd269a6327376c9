package main

import (
	"context"
	"fmt"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/status"
	"github.com/rdctl/rdctl/internal/systemd"
	"github.com/rdctl/rdctl/internal/textsafe"
)

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "status",
		Usage:       "show the server's units, key, ports and backups",
		Description: helpText("status"),
		Action:      func(ctx context.Context, cmd *cli.Command) error { return runStatus(ctx, e) },
	}
}

func runStatus(ctx context.Context, e *env) error {
	rec, err := e.loadRecord()
	if err != nil {
		return err
	}
	// Gather asks tailscaled (live only) through the seam, so that
	// internal/status links no tailscale client.
	r, err := status.Gather(ctx, status.Options{Record: rec, RecordPath: e.recordPath(), Root: e.root,
		Tailnet: tailnetStatusSelf(e.tsSocket)})
	if err != nil {
		return err
	}
	if e.json {
		return writeJSON(e.stdout, r)
	}
	printStatus(e, r)
	return nil
}

// liveUnitStates and inspectStack are status's live sources under the
// names doctor calls them by.
func liveUnitStates(ctx context.Context, names []string) ([]systemd.UnitState, error) {
	return status.LiveUnits(ctx, names)
}

func inspectStack(ctx context.Context, rec *deploy.Record) (*compose.StackStatus, error) {
	return status.InspectStack(ctx, rec)
}

// printStatus prints the report for a terminal. Every string in it came
// from disk, from systemd, Docker or tailscaled: each goes through
// textsafe.Escape, so that none can move the cursor, recolour or reorder
// what the operator reads.
func printStatus(e *env, s *status.Report) {
	esc := textsafe.Escape
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	if e.quiet {
		return
	}
	fmt.Fprintf(tw, "server:\t%s backend, origin %s, record %s\n", esc(s.Backend), esc(s.Origin), esc(s.Record))
	if len(s.Relays) > 1 {
		fmt.Fprintf(tw, "clients:\tID server %s, %d relays handed out in turn (no health check):\n", esc(s.IDHost), len(s.Relays))
		for _, r := range s.Relays {
			fmt.Fprintf(tw, "  relay\t%s\n", esc(r))
		}
	} else {
		fmt.Fprintf(tw, "clients:\tID server %s, relay %s\n", esc(s.IDHost), esc(orNone(s.Relay)))
	}
	if p := s.Proxy; p != nil {
		fmt.Fprintf(tw, "proxy:\t%s for wss://%s/ws/id and /ws/relay (tls %s), %s\n", esc(p.Kind), esc(p.Domain), esc(p.TLS), esc(p.Config))
	}
	if s.Containers == nil {
		fmt.Fprintf(tw, "units:\t%s\n", map[bool]string{true: "(image tree: unit files only)", false: ""}[s.Root != ""])
	} else {
		fmt.Fprintf(tw, "containers:\t\n")
		for _, c := range s.Containers {
			var ms []string
			for _, m := range c.Mounts {
				ms = append(ms, m.Source+":"+m.Destination)
			}
			fmt.Fprintf(tw, "  %s\t%s\trestarts %d\t%s\t%s\n", esc(c.Service), esc(c.State), c.Restarts, esc(orNone(c.Image)), esc(orNone(strings.Join(ms, " "))))
		}
		if s.ContainersError != "" {
			fmt.Fprintf(tw, "  (%s)\n", esc(s.ContainersError))
		}
	}
	for _, u := range s.Units {
		switch {
		case u.Restarts == nil:
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", esc(u.Name), esc(u.UnitFileState), esc(orNone(u.UnitFile)))
		default:
			fmt.Fprintf(tw, "  %s\t%s/%s\tpid %d\trestarts %d\t%s\n", esc(u.Name), esc(u.ActiveState), esc(u.SubState), u.MainPID, *u.Restarts, esc(u.UnitFileState))
		}
	}
	if s.UnitsError != "" && s.Containers == nil {
		fmt.Fprintf(tw, "  (%s)\n", esc(s.UnitsError))
	}
	if t := s.Tailnet; t != nil {
		if t.Error != "" {
			fmt.Fprintf(tw, "tailnet:\t%s\n", esc(t.Error))
		} else {
			var open []string
			for _, p := range t.Ports {
				if p.Reachable {
					open = append(open, fmt.Sprintf("%s/%d", p.Proto, p.Port))
				}
			}
			fmt.Fprintf(tw, "tailnet:\t%s %s (%s mode); hbbs/hbbr reachable there on %s\n", esc(orNone(t.DNSName)), esc(strings.Join(t.IPs, " ")), esc(t.Mode), esc(orNone(strings.Join(open, " "))))
		}
	}
	k := s.Key
	fmt.Fprintf(tw, "key:\t%s\n", esc(k.Dir))
	if k.PublicKey != "" {
		fmt.Fprintf(tw, "  public key:\t%s\n  fingerprint:\t%s\n", esc(k.PublicKey), esc(k.Fingerprint))
	}
	if k.Error != "" {
		fmt.Fprintf(tw, "  problem:\t%s\n", esc(k.Error))
	}
	for _, f := range []*status.File{k.Secret, k.Pub} {
		if f == nil {
			continue
		}
		note := ""
		if f == k.Pub {
			note = map[bool]string{true: "agrees with the secret", false: "DISAGREES with the secret"}[k.PubFileMatches]
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s:%s (%d:%d)\t%s\n", esc(path.Base(f.Path)), f.Mode, esc(orNum(f.User, f.UID)), esc(orNum(f.Group, f.GID)), f.UID, f.GID, note)
	}
	if s.Root == "" {
		fmt.Fprintf(tw, "ports:\t\n")
		for _, p := range s.Ports {
			state := "listening"
			if !p.Listening {
				state = "CLOSED"
			}
			fmt.Fprintf(tw, "  %s %d\t%s\t%s\t%s\n", esc(p.Proto), p.Port.Port, state, esc(shortList(p.Addresses, 3)), esc(p.Owner))
		}
		if s.PortsError != "" {
			fmt.Fprintf(tw, "  (%s)\n", esc(s.PortsError))
		}
	}
	switch {
	case s.Backups.Count == 0:
		fmt.Fprintf(tw, "backups:\tnone\n")
	default:
		fmt.Fprintf(tw, "backups:\t%d, newest %s (%s)\n", s.Backups.Count, esc(s.Backups.LastRotation), s.Backups.LastRotationTime)
	}
	if s.Staged.Present {
		fmt.Fprintf(tw, "staged key:\t%s (switch to it: rdctl rotate --commit)\n", esc(s.Staged.Fingerprint))
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
