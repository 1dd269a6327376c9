package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/golden"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/safefs"
)

var update = golden.Update

// runInProcess runs rdctl in-process, as "rdctl ARGS...", and returns its
// exit code and what it wrote to stdout and stderr.
func runInProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"rdctl"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// outputLogEnv names a file every rdctl run in a script appends its stdout
// and stderr to, so the script's end can check that no secret leaked.
const outputLogEnv = "RDCTL_TEST_OUTPUT_LOG"

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"rdctl": func() {
			installTestFaultHooks()
			stdout, stderr := io.Writer(os.Stdout), io.Writer(os.Stderr)
			if p := os.Getenv(outputLogEnv); p != "" {
				if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
					defer f.Close()
					stdout, stderr = io.MultiWriter(os.Stdout, f), io.MultiWriter(os.Stderr, f)
				}
			}
			code := run(context.Background(), os.Args, stdout, stderr)
			os.Exit(code)
		},
		// rdctl-holdlock ROOT MARKER: take the lock of rdctl --root ROOT,
		// say so by creating MARKER.held, and keep it until MARKER.release
		// appears (at most 30 s).
		"rdctl-holdlock": func() {
			lock, err := safefs.LockPath(os.Args[1])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			path := os.Args[2]
			unlock, err := safefs.Lock(lock, 5*time.Second)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			// The test waits for PATH.held: without it, say why and fail.
			if err := os.WriteFile(path+".held", nil, 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				unlock()
				os.Exit(1)
			}
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if _, err := os.Stat(path + ".release"); err == nil {
					break
				}
			}
			unlock()
			os.Exit(0)
		},
	})
}

func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *update,
		Setup: func(e *testscript.Env) error {
			log := filepath.Join(e.WorkDir, ".rdctl-output.log")
			e.Setenv(outputLogEnv, log)
			e.Defer(func() { checkNoSecretLeak(e.T(), e.WorkDir, log) })
			return nil
		},
		// [root] holds when the scripts run as root; scripts/test runs them
		// once as nobody too, where [!root] lines pin what a non-root user sees.
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"perm":      cmdPerm,
			"waitfile":  cmdWaitFile,
			"exitcode":  cmdExitCode,
			"samebytes": cmdSameBytes,
		},
	})
}

// cmdPerm checks a file's permission bits: perm 0600 FILE.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm MODE FILE")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	ts.Check(err)
	fi, err := os.Lstat(ts.MkAbs(args[1]))
	ts.Check(err)
	got := fi.Mode().Perm()
	if (got == fs.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[1], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdWaitFile waits up to 10 s for a file to appear: waitfile FILE.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
	}
	ts.Fatalf("%s did not appear within 10s", args[0])
}

// cmdExitCode runs rdctl and checks its exact exit code: exitcode N ARGS...
// (testscript's exec only tells zero from non-zero).
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 {
		ts.Fatalf("usage: exitcode N [rdctl args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec("rdctl", args[1:]...)
	got := 0
	if err != nil {
		var ec interface{ ExitCode() int }
		if !asExit(err, &ec) {
			ts.Fatalf("rdctl: %v", err)
		}
		got = ec.ExitCode()
	}
	if got != want {
		ts.Fatalf("rdctl exited %d, want %d", got, want)
	}
}

func asExit(err error, target *interface{ ExitCode() int }) bool {
	for e := err; e != nil; {
		if x, ok := e.(interface{ ExitCode() int }); ok {
			*target = x
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// cmdSameBytes compares two files byte for byte: samebytes A B.
func cmdSameBytes(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: samebytes A B")
	}
	a, b := ts.ReadFile(args[0]), ts.ReadFile(args[1])
	if (a == b) == neg {
		ts.Fatalf("%s and %s: equal=%v, want %v", args[0], args[1], a == b, !neg)
	}
}

// checkNoSecretLeak fails the script if any secret key found anywhere in
// its work directory appears, in any encoding, in anything rdctl printed.
func checkNoSecretLeak(t testscript.T, workDir, logPath string) {
	out, err := os.ReadFile(logPath)
	if err != nil {
		return // rdctl never ran
	}
	for _, s := range secretsUnder(workDir) {
		for _, form := range secretForms(s) {
			if bytes.Contains(out, form) {
				t.Fatal(fmt.Sprintf("secret key material (%d bytes) appeared in rdctl output", len(form)))
			}
		}
	}
}

// secretsUnder finds every parseable secret key file under dir.
func secretsUnder(dir string) []keys.Pair {
	var out []keys.Pair
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasSuffix(p, ".pub") || !strings.Contains(filepath.Base(p), "id_ed25519") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		if pair, err := keys.ParseSecret(data); err == nil {
			out = append(out, pair)
		}
		return nil
	})
	return out
}

// secretForms lists the encodings of a secret (and of its seed, which alone
// is the whole secret) that must never be printed.
func secretForms(p keys.Pair) [][]byte {
	secretB64 := p.SecretFileBytes()
	raw, _ := base64.StdEncoding.DecodeString(string(secretB64))
	seed := raw[:32]
	seedHex := hex.EncodeToString(seed)
	forms := [][]byte{secretB64, raw, seed, []byte(seedHex), []byte(hex.EncodeToString(raw)),
		[]byte(seedHex[:40]), []byte(strings.ToUpper(seedHex[:40]))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		forms = append(forms, []byte(enc.EncodeToString(seed)[:40]))
	}
	return forms
}

// noErr stops the test on a setup step's error, so that a step that failed
// cannot pass for the behaviour under test.
func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
