package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// CLI runs the Docker Compose v2 CLI plugin (`docker compose`), which
// creates and recreates the stack's containers from the compose file. The
// zero value runs "docker" from PATH.
type CLI struct {
	// Docker is the docker CLI; "" means "docker" from PATH.
	Docker string
}

// ComposeError reports a failed `docker compose` run with its output.
type ComposeError struct {
	Args   []string
	Output string
	Err    error
}

func (e *ComposeError) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		return fmt.Sprintf("docker %s: %v", strings.Join(e.Args, " "), e.Err)
	}
	return fmt.Sprintf("docker %s: %v:\n%s", strings.Join(e.Args, " "), e.Err, out)
}
func (e *ComposeError) Unwrap() error { return e.Err }

// ErrNoCompose means the docker CLI or its Compose v2 plugin is missing.
var ErrNoCompose = errors.New("docker compose (the Compose v2 plugin) is not available")

func (c CLI) docker() string {
	if c.Docker != "" {
		return c.Docker
	}
	return "docker"
}

// run runs `docker compose -f file -p project args...` and returns its
// combined output.
func (c CLI) run(ctx context.Context, file, project string, args ...string) (string, error) {
	exe, err := exec.LookPath(c.docker())
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCompose, err)
	}
	full := append([]string{"compose", "-f", file, "-p", project}, args...)
	cmd := exec.CommandContext(ctx, exe, full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		s := out.String()
		if strings.Contains(s, "'compose' is not a docker command") || strings.Contains(s, "unknown shorthand flag: 'f'") {
			return s, fmt.Errorf("%w: %s", ErrNoCompose, strings.TrimSpace(s))
		}
		return s, &ComposeError{Args: full, Output: s, Err: err}
	}
	return out.String(), nil
}

// Up runs `docker compose -f file -p project up -d`: it creates missing
// containers, recreates those whose configuration or image changed, and
// starts them. forceRecreate recreates them all (e.g. after a new key was
// written under a running hbbs, which reads its key only at start).
func (c CLI) Up(ctx context.Context, file, project string, forceRecreate bool) (string, error) {
	args := []string{"up", "-d"}
	if forceRecreate {
		args = append(args, "--force-recreate")
	}
	return c.run(ctx, file, project, args...)
}

// Down runs `docker compose -f file -p project down`: it stops and removes
// the containers and the project's networks. Bind-mounted data stays.
func (c CLI) Down(ctx context.Context, file, project string) (string, error) {
	return c.run(ctx, file, project, "down")
}
