package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Engine is a connection to the Docker Engine API. It must be closed.
type Engine struct {
	c *client.Client
}

// ErrNoEngine means the Docker engine could not be reached.
var ErrNoEngine = errors.New("cannot reach the Docker engine")

// EngineError says which engine could not be reached and why.
type EngineError struct {
	Host string
	Err  error
}

func (e *EngineError) Error() string {
	return fmt.Sprintf("%v at %s: %v", ErrNoEngine, e.Host, e.Err)
}
func (e *EngineError) Unwrap() []error { return []error{ErrNoEngine, e.Err} }

// Connect connects to the engine named by the environment (DOCKER_HOST,
// default unix:///var/run/docker.sock) and negotiates the API version: the
// client starts at its newest version (client.MaxAPIVersion) and goes down
// to what the daemon speaks, e.g. 1.41 for Debian 12's Engine 20.10.
// (In moby/moby/client ≥ v0.5 negotiation is the default and
// client.WithAPIVersionNegotiation is a deprecated no-op; the explicit
// negotiating ping here does the same and fails early when nothing
// answers.) DOCKER_API_VERSION, when set, pins the version instead.
func Connect(ctx context.Context) (*Engine, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, &EngineError{Host: "(DOCKER_HOST)", Err: err}
	}
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, &EngineError{Host: c.DaemonHost(), Err: err}
	}
	return &Engine{c: c}, nil
}

// Close releases the connection.
func (e *Engine) Close() error { return e.c.Close() }

// APIVersion is the API version in use after negotiation, e.g. "1.41".
func (e *Engine) APIVersion() string { return e.c.ClientVersion() }

// Host is the daemon's address, e.g. unix:///var/run/docker.sock.
func (e *Engine) Host() string { return e.c.DaemonHost() }

// ServerVersion is the engine's version, e.g. "20.10.24+dfsg1".
func (e *Engine) ServerVersion(ctx context.Context) (string, error) {
	v, err := e.c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", err
	}
	return v.Version, nil
}

// serviceContainers lists the containers of one service of a project
// (one-off `docker compose run` containers excluded), running or not,
// oldest first.
func (e *Engine) serviceContainers(ctx context.Context, project, service string) ([]container.Summary, error) {
	f := client.Filters{}
	f.Add("label", LabelProject+"="+project, LabelService+"="+service)
	res, err := e.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing the containers of %s/%s: %w", project, service, err)
	}
	var out []container.Summary
	for _, c := range res.Items {
		if strings.EqualFold(c.Labels[LabelOneOff], "true") {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return out, nil
}

// inspect returns a container's full state.
func (e *Engine) inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	r, err := e.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, err
	}
	return r.Container, nil
}

// logTail returns the last n lines a container wrote to stdout and stderr.
// It returns "" when they cannot be read (e.g. a logging driver without
// read support): it only decorates errors.
func (e *Engine) logTail(ctx context.Context, id string, n int) string {
	r, err := e.c.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return ""
	}
	defer r.Close()
	var buf bytes.Buffer
	// Containers without a TTY multiplex both streams with 8-byte headers.
	if _, err := stdcopy.StdCopy(&buf, &buf, r); err != nil && buf.Len() == 0 {
		return ""
	}
	return strings.TrimSpace(buf.String())
}

// ImageID returns the ID of the local image ref, or "" when there is none.
func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	r, err := e.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspecting image %s: %w", ref, err)
	}
	return r.ID, nil
}

// ImageWorkdir returns the WORKDIR of the local image ref ("" when the
// image sets none, or is not present).
func (e *Engine) ImageWorkdir(ctx context.Context, ref string) (string, error) {
	r, err := e.c.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if r.Config == nil {
		return "", nil
	}
	return r.Config.WorkingDir, nil
}

// EnsureImage makes sure ref is present locally: it uses a local image as
// it is, and otherwise pulls it (when pull is set) from its registry. It
// returns the image ID and whether it pulled.
func (e *Engine) EnsureImage(ctx context.Context, ref string, pull bool) (id string, pulled bool, err error) {
	if id, err = e.ImageID(ctx, ref); err != nil || id != "" {
		return id, false, err
	}
	if !pull {
		return "", false, &ImageMissingError{Ref: ref}
	}
	resp, err := e.c.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return "", false, &ImageMissingError{Ref: ref, PullErr: err}
	}
	if err := resp.Wait(ctx); err != nil {
		return "", false, &ImageMissingError{Ref: ref, PullErr: err}
	}
	if id, err = e.ImageID(ctx, ref); err != nil {
		return "", true, err
	}
	if id == "" {
		return "", true, &ImageMissingError{Ref: ref, PullErr: errors.New("the pull finished but the image is not there")}
	}
	return id, true, nil
}

// ImageMissingError reports an image that is not present locally and could
// not be pulled.
type ImageMissingError struct {
	Ref     string
	PullErr error // nil when pulling was not allowed
}

func (e *ImageMissingError) Error() string {
	if e.PullErr == nil {
		return fmt.Sprintf("image %s is not present locally", e.Ref)
	}
	return fmt.Sprintf("image %s is not present locally and pulling it failed: %v", e.Ref, e.PullErr)
}
func (e *ImageMissingError) Unwrap() error { return e.PullErr }
