package compose

import (
	"context"
	"path"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
)

// Mount is one mount of a container, as the engine reports it.
type Mount struct {
	Type        string `json:"type"` // bind, volume, tmpfs
	Name        string `json:"name,omitempty"`
	Source      string `json:"source"` // the host path (a volume's _data dir)
	Destination string `json:"destination"`
	RW          bool   `json:"rw"`
}

// ServiceStatus is the state of one container of a compose service.
type ServiceStatus struct {
	Service   string `json:"service"`
	Container string `json:"container,omitempty"`
	ID        string `json:"id,omitempty"`
	// Image is the image as configured; ImageID what the container runs.
	Image   string `json:"image,omitempty"`
	ImageID string `json:"image_id,omitempty"`
	// State is the engine's state (created, running, restarting, exited,
	// paused, dead) or "missing" when the service has no container.
	State      string `json:"state"`
	Running    bool   `json:"running"`
	Restarting bool   `json:"restarting"`
	// Restarts counts restarts by the restart policy since the last start.
	Restarts   int    `json:"restarts"`
	ExitCode   int    `json:"exit_code"`
	StartedAt  string `json:"started_at,omitempty"`
	FinishedAt string `json:"finished_at,omitempty"`
	Health     string `json:"health,omitempty"`
	// NetworkMode is "host", "bridge", "<project>_default", ...
	NetworkMode string `json:"network_mode,omitempty"`
	// WorkingDir is the process's working directory in the container (the
	// image's WORKDIR unless the service overrides it): where hbbs keeps
	// its keys.
	WorkingDir string   `json:"working_dir,omitempty"`
	Command    []string `json:"command,omitempty"`
	Mounts     []Mount  `json:"mounts,omitempty"`
	// KeyDir is the host directory mounted over WorkingDir (the source of
	// the mount covering it), or "" when the working directory is in the
	// container layer.
	KeyDir string `json:"key_dir,omitempty"`
	// KeyMount is the mount KeyDir comes from.
	KeyMount *Mount `json:"key_mount,omitempty"`
	// Published are the container's published ports (bridge networks).
	Published []PublishedPort `json:"published,omitempty"`
}

// PublishedPort is one port the engine publishes for a container.
type PublishedPort struct {
	// Port is the container's port and protocol: "21118/tcp".
	Port string `json:"port"`
	// HostIP is the host address it is published on; "" is every
	// address (0.0.0.0 and ::).
	HostIP   string `json:"host_ip,omitempty"`
	HostPort string `json:"host_port"`
}

// Everywhere reports whether p is published on every host address.
func (p PublishedPort) Everywhere() bool { return p.HostIP == "" }

// StackStatus is what the engine says about a compose project.
type StackStatus struct {
	Project       string `json:"project"`
	EngineVersion string `json:"engine_version,omitempty"`
	APIVersion    string `json:"api_version"`
	// Services holds hbbs, then hbbr (one entry per container; a service
	// without one has a single entry in state "missing").
	Services []ServiceStatus `json:"services"`
}

// Running reports whether every service has a running container.
func (s *StackStatus) Running() bool {
	for _, svc := range s.Services {
		if !svc.Running || svc.Restarting {
			return false
		}
	}
	return len(s.Services) > 0
}

// Service returns the first status of service name.
func (s *StackStatus) Service(name string) (ServiceStatus, bool) {
	for _, svc := range s.Services {
		if svc.Service == name {
			return svc, true
		}
	}
	return ServiceStatus{}, false
}

// Inspect connects to the engine and reports the state of the project's
// hbbs and hbbr containers: state, restarts, image, mounts and where the
// keys are on the host.
func Inspect(ctx context.Context, project string) (*StackStatus, error) {
	e, err := Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Inspect(ctx, project)
}

// Inspect reports the state of the project's hbbs and hbbr containers.
func (e *Engine) Inspect(ctx context.Context, project string) (*StackStatus, error) {
	st := &StackStatus{Project: project, APIVersion: e.APIVersion()}
	if v, err := e.ServerVersion(ctx); err == nil {
		st.EngineVersion = v
	}
	for _, svc := range []string{ServiceHBBS, ServiceHBBR} {
		cs, err := e.serviceContainers(ctx, project, svc)
		if err != nil {
			return nil, err
		}
		if len(cs) == 0 {
			st.Services = append(st.Services, ServiceStatus{Service: svc, State: "missing"})
			continue
		}
		for _, c := range cs {
			ins, err := e.inspect(ctx, c.ID)
			if err != nil {
				return nil, err
			}
			s := statusOf(ins)
			s.Service = svc
			st.Services = append(st.Services, s)
		}
	}
	return st, nil
}

// statusOf turns an inspect response into a ServiceStatus.
func statusOf(c container.InspectResponse) ServiceStatus {
	s := ServiceStatus{Container: strings.TrimPrefix(c.Name, "/"), ID: c.ID, ImageID: c.Image, Restarts: c.RestartCount}
	if c.State != nil {
		s.State, s.Running, s.Restarting = string(c.State.Status), c.State.Running, c.State.Restarting
		s.ExitCode, s.StartedAt, s.FinishedAt = c.State.ExitCode, c.State.StartedAt, c.State.FinishedAt
		if c.State.Health != nil {
			s.Health = string(c.State.Health.Status)
		}
	}
	if c.Config != nil {
		s.Image = c.Config.Image
		s.WorkingDir = c.Config.WorkingDir
		if s.Service == "" {
			s.Service = c.Config.Labels[LabelService]
		}
	}
	if s.WorkingDir == "" {
		s.WorkingDir = "/"
	}
	s.Command = append([]string{c.Path}, c.Args...)
	if c.HostConfig != nil {
		s.NetworkMode = string(c.HostConfig.NetworkMode)
		for port, binds := range c.HostConfig.PortBindings {
			for _, b := range binds {
				p := PublishedPort{Port: port.String(), HostPort: b.HostPort}
				if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
					p.HostIP = b.HostIP.String()
				}
				s.Published = append(s.Published, p)
			}
		}
		sort.Slice(s.Published, func(i, j int) bool {
			a, b := s.Published[i], s.Published[j]
			return a.Port < b.Port || a.Port == b.Port && a.HostIP < b.HostIP
		})
	}
	for _, m := range c.Mounts {
		s.Mounts = append(s.Mounts, Mount{Type: string(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination, RW: m.RW})
	}
	sort.Slice(s.Mounts, func(i, j int) bool { return s.Mounts[i].Destination < s.Mounts[j].Destination })
	if m := mountCovering(s.Mounts, s.WorkingDir); m != nil {
		s.KeyMount = m
		s.KeyDir = path.Join(m.Source, strings.TrimPrefix(s.WorkingDir, m.Destination))
	}
	return s
}

// mountCovering returns the mount whose destination is dir or its nearest
// parent, or nil when dir is in the container layer.
func mountCovering(ms []Mount, dir string) *Mount {
	var best *Mount
	for i := range ms {
		d := path.Clean(ms[i].Destination)
		if d == dir || d == "/" || strings.HasPrefix(dir, d+"/") {
			if best == nil || len(d) > len(path.Clean(best.Destination)) {
				m := ms[i]
				best = &m
			}
		}
	}
	return best
}
