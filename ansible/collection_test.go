// Package ansible holds the rdctl.rustdesk Ansible collection (Python modules, a role,
// playbooks). Its Go tests check the collection without a managed host: the modules compile,
// their documentation renders with ansible-doc, the role's argument specs list every default,
// and nothing in the collection reads or templates a secret key. The integration test
// (integration/ansible_test.go) drives it against real hosts.
package ansible

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// modules are the collection's modules; every one must be here and on disk.
var modules = []string{"rdctl_install", "rdctl_rotate", "rdctl_export", "rdctl_facts", "rdctl_firewall", "rdctl_check"}

func python(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	return p
}

func TestModulesListed(t *testing.T) {
	files, err := filepath.Glob("plugins/modules/*.py")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, strings.TrimSuffix(filepath.Base(f), ".py"))
	}
	if strings.Join(got, " ") != strings.Join(slices.Sorted(slices.Values(modules)), " ") {
		t.Errorf("modules on disk %v, listed %v", got, modules)
	}
}

// TestPythonCompiles byte-compiles every Python file of the collection (python3 -m py_compile),
// with the caches outside the repository.
func TestPythonCompiles(t *testing.T) {
	py := python(t)
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".py") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < len(modules)+1 {
		t.Fatalf("found only %v", files)
	}
	cmd := exec.Command(py, append([]string{"-m", "py_compile"}, files...)...)
	cmd.Env = append(os.Environ(), "PYTHONPYCACHEPREFIX="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("py_compile: %v\n%s", err, out)
	}
}

// TestModuleUtilsUnit runs the Python unit tests of the shared module code.
func TestModuleUtilsUnit(t *testing.T) {
	py := python(t)
	cmd := exec.Command(py, "tests/unit/test_module_utils.py")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestArgumentSpecsMatchDefaults: meta/argument_specs.yml declares every variable of
// defaults/main.yml with the same default, for each entry point.
func TestArgumentSpecsMatchDefaults(t *testing.T) {
	py := python(t)
	const script = `
import sys, yaml
d = yaml.safe_load(open('roles/rustdesk_server/defaults/main.yml'))
s = yaml.safe_load(open('roles/rustdesk_server/meta/argument_specs.yml'))['argument_specs']
bad = []
for ep, spec in s.items():
    opts = spec['options']
    for k, v in d.items():
        if k not in opts: bad.append('%s: %s missing' % (ep, k))
        elif opts[k].get('default') != v: bad.append('%s: %s default %r != %r' % (ep, k, opts[k].get('default'), v))
        elif not opts[k].get('description'): bad.append('%s: %s has no description' % (ep, k))
    for k in opts:
        if k not in d: bad.append('%s: %s is not in defaults/main.yml' % (ep, k))
if set(s) != {'main', 'rotate'}: bad.append('entry points %s' % sorted(s))
print('\n'.join(bad)); sys.exit(1 if bad else 0)
`
	cmd := exec.Command(py, "-c", script)
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "No module named 'yaml'") {
		t.Skip("python3-yaml not installed")
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestAnsibleDocRendersEveryModule runs ansible-doc on every module (skipped without
// ansible-core), with Ansible's state in temp dirs.
func TestAnsibleDocRendersEveryModule(t *testing.T) {
	doc, err := exec.LookPath("ansible-doc")
	if err != nil {
		t.Skip("ansible-doc not installed (Debian package ansible-core)")
	}
	env := CollectionEnv(t)
	for _, m := range modules {
		cmd := exec.Command(doc, "rdctl.rustdesk."+m)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		s := string(out)
		if err != nil || strings.Contains(s, "ERROR") || !strings.Contains(s, "RDCTL.RUSTDESK."+strings.ToUpper(m)) ||
			!strings.Contains(s, "EXAMPLES:") || !strings.Contains(s, "RETURN VALUES:") {
			t.Errorf("ansible-doc rdctl.rustdesk.%s: %v\n%s", m, err, s)
		}
	}
}

// CollectionEnv is the environment for Ansible commands that use this collection: a temp
// ansible_collections/rdctl/rustdesk symlink to this directory as the collections path, and
// every Ansible state directory in temp dirs (no ~/.ansible).
func CollectionEnv(t testing.TB) []string {
	t.Helper()
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	ns := filepath.Join(tmp, "collections", "ansible_collections", "rdctl")
	if err := os.MkdirAll(ns, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(here, filepath.Join(ns, "rustdesk")); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(),
		"ANSIBLE_COLLECTIONS_PATH="+filepath.Join(tmp, "collections"),
		"ANSIBLE_HOME="+filepath.Join(tmp, "home"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(tmp, "tmp"),
		"ANSIBLE_NOCOLOR=1",
		"HOME="+filepath.Join(tmp, "home"),
		"XDG_CACHE_HOME="+filepath.Join(tmp, "cache"),
	)
}

// TestNoSecretMaterialPaths: nothing in the collection reads, copies, fetches or templates the
// key files, and the modules open no file at all (rdctl on the host does the key work).
func TestNoSecretMaterialPaths(t *testing.T) {
	forbidden := regexp.MustCompile(`id_ed25519|ansible\.builtin\.(slurp|template)|\bslurp\b|lookup\(.file`)
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") || strings.HasPrefix(p, "docs/") ||
			p == "README.md" || p == "CHANGELOG.md" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if loc := forbidden.FindIndex(data); loc != nil {
			t.Errorf("%s mentions %q", p, data[loc[0]:loc[1]])
		}
		if strings.HasPrefix(p, "plugins/") && regexp.MustCompile(`\bopen\(`).Match(data) {
			t.Errorf("%s opens a file; the modules only run rdctl", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
