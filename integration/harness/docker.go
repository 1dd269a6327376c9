//go:build integration

package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// LabelKey marks every image the harness builds; its value is the name of the test that built it.
// An existing image carrying another value, or none, is never overwritten or removed.
const LabelKey = "org.rdctl.it.test"

// ComposeProjectLabel is the label Docker Compose puts on a project's containers, networks and
// volumes; its value is the project name.
const ComposeProjectLabel = "com.docker.compose.project"

// DockerEnv is a reachable Docker engine with the Compose v2 plugin, as found by Docker.
type DockerEnv struct {
	// ServerVersion is the engine's version, e.g. "20.10.24+dfsg1" for Debian 12's docker.io.
	ServerVersion string
	// APIVersion is the newest Engine API version the daemon speaks, e.g. "1.41".
	APIVersion string
	// ComposeVersion is what `docker compose version --short` reports, e.g. "2.26.1-4".
	ComposeVersion string

	docker string // the docker CLI
}

var (
	dockerMu    sync.Mutex
	dockerFound *DockerEnv
)

// Docker returns the host's Docker engine, after checking that `docker info` works and that
// `docker compose version` reports v2. Otherwise it skips the test (fails it under
// RDCTL_IT_STRICT=1) with a message pointing at scripts/setup-integration. Root is not needed
// for this check, only access to the daemon's socket. The result is cached for the process.
func Docker(t testing.TB) *DockerEnv {
	t.Helper()
	dockerMu.Lock()
	defer dockerMu.Unlock()
	if dockerFound != nil {
		return dockerFound
	}
	d := &DockerEnv{docker: lookPath(t, "docker", "docker.io")}
	ctx, cancel := testContext(t, 30*time.Second)
	defer cancel()
	out, stderr, code, err := d.Exec(ctx, "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}")
	if err != nil || code != 0 {
		unavailable(t, "the Docker engine does not answer (`docker version`: %s); %s", failure(code, err, stderr), setupHint)
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		t.Fatalf("harness: unexpected `docker version` output %q", out)
	}
	d.ServerVersion, d.APIVersion = f[0], f[1]
	if _, stderr, code, err := d.Exec(ctx, "info"); err != nil || code != 0 {
		unavailable(t, "`docker info` fails (%s); %s", failure(code, err, stderr), setupHint)
	}
	out, stderr, code, err = d.Exec(ctx, "compose", "version", "--short")
	v := strings.TrimPrefix(strings.TrimSpace(out), "v")
	if err != nil || code != 0 || !strings.HasPrefix(v, "2.") {
		unavailable(t, "Docker Compose v2 is missing (`docker compose version` says %q; %s); %s", strings.TrimSpace(out), failure(code, err, stderr), setupHint)
	}
	d.ComposeVersion = v
	dockerFound = d
	return d
}

// Command prepares `docker args...`.
func (d *DockerEnv) Command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, d.docker, args...)
}

// Exec runs `docker args...`, with the same result convention as Run.
func (d *DockerEnv) Exec(ctx context.Context, args ...string) (stdout, stderr string, exitCode int, err error) {
	return Run(d.Command(ctx, args...))
}

// MustExec runs `docker args...` with a 5-minute bound and fails t unless it exits 0.
// It returns stdout.
func (d *DockerEnv) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := testContext(t, 5*time.Minute)
	defer cancel()
	return mustRun(t, d.Command(ctx, args...))
}

// ImageFile is a host file to put into an image.
type ImageFile struct {
	Host  string      // path on the host
	Image string      // absolute path in the image
	Mode  os.FileMode // permission bits in the image; 0 means 0755
}

// ScratchImage describes an image built FROM scratch by BuildScratchImage.
type ScratchImage struct {
	// Tag names the image, e.g. "rustdesk/rustdesk-server:1.1.16". Required.
	Tag string
	// Files are copied in, e.g. a static stand-in as /usr/bin/hbbs and /usr/bin/hbbr.
	Files []ImageFile
	// Workdir becomes WORKDIR (created empty), e.g. "/root" as in the classic rustdesk image.
	Workdir string
	// Env becomes ENV lines ("K=V"). PATH defaults to the usual Linux PATH when not given.
	Env []string
	// Entrypoint and Cmd, in exec form; nil leaves them unset.
	Entrypoint []string
	Cmd        []string
	// Volumes become VOLUME declarations.
	Volumes []string
	// Extra are raw Dockerfile lines appended at the end.
	Extra []string
}

var tagRE = regexp.MustCompile(`^[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$`)

// BuildScratchImage builds img with `docker build` from a temp context and returns the image ID.
// The image is labelled LabelKey=<test name>; t.Cleanup removes the tag (if it still names this
// image) and then the image, unless another tag still names it. It fails the test if the tag already names an image the harness did not build (a real
// image pulled by someone is never replaced).
func (d *DockerEnv) BuildScratchImage(t testing.TB, img ScratchImage) string {
	t.Helper()
	if !tagRE.MatchString(img.Tag) {
		t.Fatalf("harness: invalid image tag %q", img.Tag)
	}
	ctx, cancel := testContext(t, 5*time.Minute)
	defer cancel()
	if out, _, code, err := d.Exec(ctx, "image", "inspect", "--format", "{{json .Config.Labels}}", img.Tag); err == nil && code == 0 {
		var labels map[string]string
		_ = json.Unmarshal([]byte(out), &labels)
		if _, ours := labels[LabelKey]; !ours {
			t.Fatalf("harness: image %s already exists and was not built by the harness; remove it or use another tag", img.Tag)
		}
	}

	dir := t.TempDir()
	var df strings.Builder
	df.WriteString("FROM scratch\n")
	hasPath := false
	for _, e := range img.Env {
		if strings.HasPrefix(e, "PATH=") {
			hasPath = true
		}
	}
	env := img.Env
	if !hasPath {
		env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	}
	for _, e := range env {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			t.Fatalf("harness: image env %q is not K=V", e)
		}
		fmt.Fprintf(&df, "ENV %s=%s\n", k, strconv.Quote(v))
	}
	for i, f := range img.Files {
		if !filepath.IsAbs(f.Image) {
			t.Fatalf("harness: image path %q is not absolute", f.Image)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		// COPY keeps the permission bits of the context file, so set them there.
		name := "f" + strconv.Itoa(i)
		data, err := os.ReadFile(f.Host)
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode.Perm()); err != nil {
			t.Fatalf("harness: %v", err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode.Perm()); err != nil {
			t.Fatalf("harness: %v", err)
		}
		fmt.Fprintf(&df, "COPY %s %s\n", name, f.Image)
	}
	if img.Workdir != "" {
		fmt.Fprintf(&df, "WORKDIR %s\n", img.Workdir)
	}
	for _, v := range img.Volumes {
		fmt.Fprintf(&df, "VOLUME %s\n", jsonArray([]string{v}))
	}
	if img.Entrypoint != nil {
		fmt.Fprintf(&df, "ENTRYPOINT %s\n", jsonArray(img.Entrypoint))
	}
	if img.Cmd != nil {
		fmt.Fprintf(&df, "CMD %s\n", jsonArray(img.Cmd))
	}
	fmt.Fprintf(&df, "LABEL %s=%s\n", LabelKey, strconv.Quote(t.Name()))
	for _, l := range img.Extra {
		df.WriteString(l + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df.String()), 0o644); err != nil {
		t.Fatalf("harness: %v", err)
	}

	var ids []string
	t.Cleanup(func() { d.removeImages(t, img.Tag, ids) })
	start := time.Now()
	out, stderr, code, err := d.Exec(ctx, "build", "-q", "-t", img.Tag, dir)
	if err != nil || code != 0 {
		t.Fatalf("harness: docker build %s: code %d, %v\n%s\nDockerfile:\n%s", img.Tag, code, err, stderr, df.String())
	}
	// `docker build -q` prints the image ID last (BuildKit may print nothing else; the legacy
	// builder may print a deprecation notice first).
	fields := strings.Fields(out)
	if len(fields) == 0 {
		t.Fatalf("harness: docker build %s printed no image ID\nstderr: %s", img.Tag, stderr)
	}
	id := fields[len(fields)-1]
	ids = append(ids, id)
	t.Logf("harness: built image %s (%s) in %v", img.Tag, shortID(id), time.Since(start).Round(time.Millisecond))
	return id
}

func (d *DockerEnv) removeImages(t testing.TB, tag string, ids []string) {
	ctx, cancel := cleanupContext(time.Minute)
	defer cancel()
	// Only untag when the tag still names one of our images (a test may have retagged it).
	if cur, _, code, err := d.Exec(ctx, "image", "inspect", "--format", "{{.Id}}", tag); err == nil && code == 0 && slices.Contains(ids, strings.TrimSpace(cur)) {
		if _, stderr, code, err := d.Exec(ctx, "image", "rm", tag); err != nil || code != 0 {
			t.Errorf("harness: docker image rm %s: %v %s", tag, err, stderr)
		}
	}
	for _, id := range ids {
		// Identical builds (same files, same test name) share an image ID; leave an image that
		// another tag still names to whoever made that tag.
		out, _, code, err := d.Exec(ctx, "image", "inspect", "--format", "{{len .RepoTags}}", id)
		if err != nil || code != 0 || strings.TrimSpace(out) != "0" {
			continue
		}
		_, stderr, code, err := d.Exec(ctx, "image", "rm", id)
		if err != nil || (code != 0 && !strings.Contains(stderr, "No such image")) {
			t.Errorf("harness: docker image rm %s: %v %s", shortID(id), err, stderr)
		}
	}
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

func jsonArray(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Project is a Docker Compose project in a temp dir, made by NewProject.
type Project struct {
	Name string // the compose project name, unique: "rdit-" + 8 hex digits
	Dir  string // the project directory, holding compose.yaml
	d    *DockerEnv
}

// NewProject writes composeYAML to <t.TempDir()>/compose.yaml under a unique project name and
// tracks the project (TrackProject), so t.Cleanup removes its containers, networks and volumes.
func (d *DockerEnv) NewProject(t testing.TB, composeYAML string) *Project {
	t.Helper()
	p := &Project{Name: "rdit-" + randomID(4), Dir: t.TempDir(), d: d}
	if err := os.WriteFile(filepath.Join(p.Dir, "compose.yaml"), []byte(composeYAML), 0o644); err != nil {
		t.Fatalf("harness: %v", err)
	}
	d.TrackProject(t, p.Name)
	return p
}

// ComposeCommand prepares `docker compose -p NAME --project-directory DIR -f DIR/compose.yaml args...`.
func (p *Project) ComposeCommand(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{"compose", "-p", p.Name, "--project-directory", p.Dir, "-f", filepath.Join(p.Dir, "compose.yaml")}
	return p.d.Command(ctx, append(base, args...)...)
}

// Compose runs `docker compose ... args...` on the project, with the same result convention as Run.
func (p *Project) Compose(ctx context.Context, args ...string) (stdout, stderr string, exitCode int, err error) {
	return Run(p.ComposeCommand(ctx, args...))
}

// MustCompose runs `docker compose ... args...` with a 5-minute bound and fails t unless it
// exits 0. It returns stdout.
func (p *Project) MustCompose(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := testContext(t, 5*time.Minute)
	defer cancel()
	return mustRun(t, p.ComposeCommand(ctx, args...))
}

// TrackProject makes t.Cleanup remove the containers (with their anonymous volumes), networks
// and volumes labelled com.docker.compose.project=name that did not exist yet when TrackProject
// was called. Use it for projects that rdctl itself creates (e.g. in /opt/rustdesk-server): the
// cleanup works from the labels, so it needs neither the compose file nor the CLI plugin.
// Objects of a project of that name that existed before are never touched.
func (d *DockerEnv) TrackProject(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := testContext(t, time.Minute)
	defer cancel()
	filter := "label=" + ComposeProjectLabel + "=" + name
	before := map[string][]string{}
	for _, kind := range []string{"container", "network", "volume"} {
		ids, err := d.listByFilter(ctx, kind, filter)
		if err != nil {
			t.Fatalf("harness: %v", err)
		}
		before[kind] = ids
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(2 * time.Minute)
		defer cancel()
		for _, kind := range []string{"container", "network", "volume"} {
			ids, err := d.listByFilter(ctx, kind, filter)
			if err != nil {
				t.Errorf("harness: %v", err)
				continue
			}
			var ours []string
			for _, id := range ids {
				if !slices.Contains(before[kind], id) {
					ours = append(ours, id)
				}
			}
			if len(ours) == 0 {
				continue
			}
			args := []string{kind, "rm"}
			if kind == "container" {
				args = append(args, "-f", "-v")
			}
			if _, stderr, code, err := d.Exec(ctx, append(args, ours...)...); err != nil || code != 0 {
				t.Errorf("harness: removing %ss of project %s: %v %s", kind, name, err, stderr)
			}
		}
	})
}

// TrackContainer makes t.Cleanup force-remove the container nameOrID (with its anonymous
// volumes), for containers a test starts with `docker run`.
func (d *DockerEnv) TrackContainer(t testing.TB, nameOrID string) {
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(time.Minute)
		defer cancel()
		_, stderr, code, err := d.Exec(ctx, "rm", "-f", "-v", nameOrID)
		if err != nil || (code != 0 && !strings.Contains(stderr, "No such container")) {
			t.Errorf("harness: docker rm -f %s: %v %s", nameOrID, err, stderr)
		}
	})
}

func (d *DockerEnv) listByFilter(ctx context.Context, kind, filter string) ([]string, error) {
	var args []string
	switch kind {
	case "container":
		args = []string{"ps", "-a", "-q", "--no-trunc", "--filter", filter}
	case "network":
		args = []string{"network", "ls", "-q", "--no-trunc", "--filter", filter}
	case "volume":
		args = []string{"volume", "ls", "-q", "--filter", filter}
	}
	out, stderr, code, err := d.Exec(ctx, args...)
	if err != nil || code != 0 {
		return nil, fmt.Errorf("docker %s: code %d, %v %s", strings.Join(args, " "), code, err, stderr)
	}
	return strings.Fields(out), nil
}
