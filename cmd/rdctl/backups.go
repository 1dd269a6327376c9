package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/rotate"
)

func backupsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "backups",
		Usage:       "list or prune the key backups rotations keep",
		Description: helpText("backups"),
		Action:      groupAction,
		Commands: []*cli.Command{
			{
				Name:        "list",
				Usage:       "list backups, oldest first",
				Description: helpText("backups-list"),
				Action: func(ctx context.Context, cmd *cli.Command) error {
					rec, err := e.loadRecord()
					if err != nil {
						return err
					}
					all, err := rotate.ListBackups(e.under(rec.WorkingDir), e.stateDir(rec))
					if err != nil {
						return err
					}
					if e.json {
						if all == nil {
							all = []rotate.Backup{}
						}
						return writeJSON(e.stdout, map[string]any{"backups": all})
					}
					if len(all) == 0 {
						e.printf("no backups in %s/backups\n", e.stateDir(rec))
						return nil
					}
					tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "STAMP\tFINGERPRINT\tPUBLIC KEY\tNOTE")
					for _, b := range all {
						note := ""
						switch {
						case b.Error != "":
							note = "unusable: " + b.Error
						case b.Live:
							note = "the live key"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Stamp, b.Fingerprint, b.PublicKey, note)
					}
					return tw.Flush()
				},
			},
			{
				Name:        "prune",
				Usage:       "delete all but the newest N backups",
				Description: helpText("backups-prune"),
				Flags:       []cli.Flag{&cli.IntFlag{Name: "keep", Usage: "how many of the newest backups to keep", Required: true}},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					keep := cmd.Int("keep")
					if keep < 1 {
						return usageErrorf("--keep must be at least 1: rdctl keeps at least the newest backup")
					}
					rec, err := e.loadRecord()
					if err != nil {
						return err
					}
					if err := e.requireRoot(); err != nil {
						return err
					}
					dir := e.stateDir(rec)
					all, err := rotate.ListBackups(e.under(rec.WorkingDir), dir)
					if err != nil {
						return err
					}
					// The first step finishes or rolls back an interrupted
					// rotation, which may still need its backup, before
					// anything is pruned.
					p := e.newPlan(ctx, rec)
					for i := 0; i < len(all)-int(keep); i++ {
						stamp, target := all[i].Stamp, all[i].Path
						p.Add(&plan.Func{Verb: "remove", Object: target, From: all[i].Fingerprint,
							Do: func() (bool, error) { return rotate.RemoveBackup(dir, stamp) }})
					}
					rep, err := e.execute(p)
					if e.json && err == nil {
						return writeJSON(e.stdout, rep)
					}
					e.printReport(rep)
					if err != nil {
						return err
					}
					if !rep.Changed && !e.dryRun {
						e.printf("unchanged: %d or fewer backups\n", keep)
					}
					if e.dryRun {
						return nil
					}
					e.warnf("on SSDs and copy-on-write filesystems the overwrite before unlinking is not a guarantee that the old key bytes are gone")
					return nil
				},
			},
		},
	}
}
