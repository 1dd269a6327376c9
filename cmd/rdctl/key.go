package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
)

func keyCommand(e *env) *cli.Command {
	dirFlag := &cli.StringFlag{Name: "dir", Usage: "the server's working `DIR` (default: from the deployment record)"}
	return &cli.Command{
		Name:        "key",
		Usage:       "show, generate or verify the server's key pair",
		Description: helpText("key"),
		Action:      groupAction,
		Commands: []*cli.Command{
			{
				Name:        "show",
				Usage:       "print the public key and its fingerprint",
				Description: helpText("key-show"),
				Flags:       []cli.Flag{dirFlag},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if err := refuseKeyPath("--dir", cmd.String("dir")); err != nil {
						return err
					}
					return runKeyShow(e, cmd.String("dir"))
				},
			},
			{
				Name:        "gen",
				Usage:       "generate a key pair where there is none",
				Description: helpText("key-gen"),
				Flags:       []cli.Flag{dirFlag},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if err := refuseKeyPath("--dir", cmd.String("dir")); err != nil {
						return err
					}
					return runKeyGen(e, cmd.String("dir"))
				},
			},
			{
				Name:        "verify",
				Usage:       "check the key pair like hbbs and rustdesk-utils would",
				Description: helpText("key-verify"),
				Flags:       []cli.Flag{dirFlag},
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if err := refuseKeyPath("--dir", cmd.String("dir")); err != nil {
						return err
					}
					return runKeyVerify(e, cmd.String("dir"))
				},
			},
		},
	}
}

// keyDir is --dir as given, else the record's working directory under --root.
func (e *env) keyDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	r, err := e.loadRecord()
	if err != nil {
		return "", withHints(err, "or name the directory: rdctl key show --dir DIR")
	}
	return e.under(r.WorkingDir), nil
}

// inspectKeyDir resolves the key directory (see keyDir) and reads it.
func (e *env) inspectKeyDir(dir string) (string, keys.State, error) {
	dir, err := e.keyDir(dir)
	if err != nil {
		return "", keys.State{}, err
	}
	st, err := inspectDir(dir)
	return dir, st, err
}

// publicKeyIn returns the public key and fingerprint of the valid pair in
// dir, or empty strings.
func publicKeyIn(dir string) (pub, fingerprint string) {
	if st, err := inspectDir(dir); err == nil && st.Valid {
		return st.Pair.PublicBase64(), st.Pair.Fingerprint()
	}
	return "", ""
}

// inspectDir is keys.InspectDir, by its old name for the commands that use it.
func inspectDir(dir string) (keys.State, error) { return keys.InspectDir(dir) }

type keyShowJSON struct {
	Dir            string `json:"dir"`
	PublicKey      string `json:"public_key"`
	Fingerprint    string `json:"fingerprint"`
	Valid          bool   `json:"valid"`
	PubFileMatches bool   `json:"pub_file_matches"`
	SecretMode     string `json:"secret_mode"`
	Error          string `json:"error,omitempty"`
}

func runKeyShow(e *env, dir string) error {
	dir, st, err := e.inspectKeyDir(dir)
	if err != nil {
		return err
	}
	out := keyShowJSON{Dir: dir, Valid: st.Valid, PubFileMatches: st.PubMatches}
	if st.SecretInfo.Mode.IsRegular() {
		out.SecretMode = fmt.Sprintf("%04o", st.SecretInfo.Mode.Perm())
	}
	if !st.Pair.IsZero() {
		out.PublicKey, out.Fingerprint = st.Pair.PublicBase64(), st.Pair.Fingerprint()
	}
	switch {
	case !st.SecretPresent:
		out.Error = fmt.Sprintf("no %s in %q", keys.SecretFile, dir)
	case st.SecretErr != nil:
		out.Error = st.SecretProblem()
	}
	if e.json {
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else if out.PublicKey != "" {
		e.printf("public key:  %s\nfingerprint: %s\n", out.PublicKey, out.Fingerprint)
	}
	if !st.Valid {
		if e.json {
			return &checkFailedError{}
		}
		return withHints(errors.New(out.Error), "rdctl key verify --dir "+dir)
	}
	if !st.PubMatches {
		e.warnf("%s does not agree with %s; hbbs serves the key above, derived from the secret", keys.PublicFile, keys.SecretFile)
		e.hintf("repair it with: rdctl doctor --fix")
	}
	if st.SecretInfo.Mode.Perm()&0o077 != 0 {
		e.warnf("%s is readable by group or others (mode %04o)", keys.SecretFile, st.SecretInfo.Mode.Perm())
	}
	return nil
}

type keyGenJSON struct {
	plan.Report
	*keyShowJSON
}

func runKeyGen(e *env, dir string) error {
	named := dir != ""
	dir, err := e.keyDir(dir)
	if err != nil {
		return err
	}
	steps, step, err := keys.GenSteps(dir, currentOwner())
	var exists *keys.SecretExistsError
	if errors.As(err, &exists) {
		return withHints(err, "to replace it, rotate: rdctl rotate", "to see it: rdctl key show --dir "+dir)
	} else if err != nil {
		return err
	}
	var p plan.Plan
	p.Add(steps...)
	// A directory named with --dir is the caller's: no lock, no root. The
	// record's working directory is the server's: both.
	execute := e.execute
	if named {
		execute = e.executeLocal
	}
	rep, err := execute(&p)
	if err != nil {
		return err
	}
	out := keyGenJSON{Report: rep}
	if !e.dryRun {
		st, err := inspectDir(dir)
		if err != nil {
			return err
		}
		if !step.Generated {
			return fmt.Errorf("a secret key appeared in %q while generating; left it alone", dir)
		}
		out.keyShowJSON = &keyShowJSON{Dir: dir, PublicKey: st.Pair.PublicBase64(), Fingerprint: st.Pair.Fingerprint(),
			Valid: st.Valid, PubFileMatches: st.PubMatches, SecretMode: fmt.Sprintf("%04o", st.SecretInfo.Mode.Perm())}
	}
	if e.json {
		return writeJSON(e.stdout, out)
	}
	if e.dryRun {
		e.printReport(rep)
		return nil
	}
	e.printf("generated a key pair in %s\npublic key:  %s\nfingerprint: %s\n", dir, out.PublicKey, out.Fingerprint)
	return nil
}

func runKeyVerify(e *env, dir string) error {
	dir, st, err := e.inspectKeyDir(dir)
	if err != nil {
		return err
	}
	items := keys.Verify(st)
	ok := keys.AllOK(items)
	if e.json {
		if err := writeJSON(e.stdout, map[string]any{"dir": dir, "ok": ok, "checks": items}); err != nil {
			return err
		}
	} else {
		for _, it := range items {
			mark := "ok  "
			if !it.OK {
				mark = "FAIL"
			}
			line := fmt.Sprintf("%s  %s", mark, it.Name)
			if !it.OK && it.Detail != "" {
				line += ": " + it.Detail
			}
			e.printf("%s\n", line)
		}
	}
	if !ok {
		if !e.json {
			fmt.Fprintf(e.stderr, "rdctl: error: the key pair in %q failed verification\n", dir)
			e.hintf("rdctl doctor --fix repairs modes, owners and a disagreeing .pub")
		}
		return &checkFailedError{}
	}
	return nil
}
