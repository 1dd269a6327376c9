package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/safefs"
)

func keyCommand(e *env) *cli.Command {
	dirFlag := &cli.StringFlag{Name: "dir", Usage: "the server's working `DIR` (default: from the deployment record)"}
	return &cli.Command{
		Name:  "key",
		Usage: "show, generate or verify the server's key pair",
		Description: `Works on hbbs's key files, id_ed25519 and id_ed25519.pub, in the server's
working directory. --dir works without a deployment record.

Examples:
  rdctl key show
  rdctl key show --dir /var/lib/rustdesk-server --json
  rdctl key gen --dir ./image/var/lib/rustdesk
  rdctl key verify --dir /var/lib/rustdesk`,
		Action: groupAction,
		Commands: []*cli.Command{
			{
				Name:  "show",
				Usage: "print the public key and its fingerprint",
				Description: `Prints the public key clients must be given (derived from id_ed25519, as hbbs
derives it), its fingerprint, and whether id_ed25519.pub agrees. Never prints the
secret. Exits 1 if there is no valid key.

JSON (--json): public_key, fingerprint, valid, pub_file_matches, secret_mode,
plus dir and error when there is one.

Examples:
  rdctl key show --dir /var/lib/rustdesk
  rdctl --json key show`,
				Flags:  []cli.Flag{dirFlag},
				Action: func(ctx context.Context, cmd *cli.Command) error { return runKeyShow(e, cmd.String("dir")) },
			},
			{
				Name:  "gen",
				Usage: "generate a key pair where there is none",
				Description: `Generates a key pair in hbbs's exact format (public key without '/' or ':'),
secret 0600, public 0644. Refuses when a secret key exists: replacing a live key
is a rotation (rdctl rotate), which backs the old one up first.

Examples:
  rdctl key gen --dir ./image/var/lib/rustdesk
  rdctl --dry-run key gen --dir /srv/rustdesk`,
				Flags:  []cli.Flag{dirFlag},
				Action: func(ctx context.Context, cmd *cli.Command) error { return runKeyGen(e, cmd.String("dir")) },
			},
			{
				Name:  "verify",
				Usage: "check the key pair like hbbs and rustdesk-utils would",
				Description: `Checks that id_ed25519 decodes to 64 bytes, that its public half is what the
seed derives, that it signs and verifies, that id_ed25519.pub agrees, and that
the secret is not readable by group or others. Exits 1 on any failure.

Examples:
  rdctl key verify --dir /var/lib/rustdesk
  rdctl --json key verify`,
				Flags:  []cli.Flag{dirFlag},
				Action: func(ctx context.Context, cmd *cli.Command) error { return runKeyVerify(e, cmd.String("dir")) },
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

func inspectDir(dir string) (keys.State, error) {
	d, err := safefs.OpenDir(dir)
	if err != nil {
		return keys.State{}, err
	}
	defer d.Close()
	return keys.Inspect(d)
}

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
		out.Error = withConsequence(st)
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
	if st, err := inspectDir(dir); err == nil && st.SecretPresent {
		return withHints(fmt.Errorf("%q already holds a secret key; rdctl never replaces a key without a backup", dir),
			"to replace it, rotate: rdctl rotate", "to see it: rdctl key show --dir "+dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var p plan.Plan
	p.Add(&plan.Func{Verb: "create directory", Object: dir,
		Check: func() (bool, error) {
			_, err := os.Lstat(dir)
			return errors.Is(err, fs.ErrNotExist), nil
		},
		Do: func() (bool, error) {
			_, err := os.Lstat(dir)
			if !errors.Is(err, fs.ErrNotExist) {
				return false, nil
			}
			d, err := safefs.MkdirAll(dir, 0o700)
			if err == nil {
				d.Close()
			}
			return true, err
		}})
	// A directory named with --dir is the caller's: no lock, no root. The
	// record's working directory is the server's: both.
	step := &keys.EnsurePair{Dir: dir, Owner: currentOwner()}
	p.Add(step)
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

type verifyItem struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

func runKeyVerify(e *env, dir string) error {
	dir, st, err := e.inspectKeyDir(dir)
	if err != nil {
		return err
	}
	detail := func(err error) string {
		if err != nil {
			return err.Error()
		}
		return ""
	}
	items := []verifyItem{
		{Name: "secret key present", OK: st.SecretPresent},
		{Name: "secret key decodes, halves agree, signs and verifies", OK: st.Valid, Detail: detail(st.SecretErr)},
		{Name: "public key file agrees with the secret", OK: st.PubMatches, Detail: detail(st.PubErr)},
		{Name: "secret key not readable by group or others", OK: st.SecretPresent && st.SecretInfo.Mode.Perm()&0o077 == 0,
			Detail: fmt.Sprintf("mode %04o", st.SecretInfo.Mode.Perm())},
	}
	ok := true
	for _, it := range items {
		ok = ok && it.OK
	}
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
