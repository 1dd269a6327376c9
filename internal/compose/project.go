// Package compose is rdctl's Docker Compose backend: the compose project
// (built with compose-go's types, checked by reading the rendered YAML back;
// the tests also load every rendered file with compose-go's loader and its
// schema, which the binary does not link: compiling that schema cost about
// 30 ms at every start), its install plan, `docker compose up` through the
// Compose v2 CLI plugin, and the containers' lifecycle over the Docker Engine
// API (github.com/moby/moby/client, with API-version negotiation, so that
// Debian's engine speaking API 1.41 works): the compose implementation of
// deploy.Runtime, status, detection of stacks rdctl did not write, and image
// upgrades with rollback.
//
// The layout rdctl writes (docs/ARCHITECTURE.md, "On disk"):
//
//	<dir>/compose.yaml   the project (default dir /opt/rustdesk-server)
//	<dir>/data/          0700, root's: id_ed25519{,.pub}, db_v2.sqlite3 (rdctl's backups are in /var/lib/rdctl)
//
// <dir>/data is bind-mounted at the image's working directory: /root for the
// classic rustdesk/rustdesk-server image (FROM scratch, WORKDIR /root) and
// /data for rustdesk/rustdesk-server-s6 (WORKDIR /data), because hbbs reads
// and writes its key files relative to its working directory.
//
// Like every internal package it never prints and never exits: it returns
// results and typed errors.
package compose

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/rdctl/rdctl/internal/deploy"
)

// Defaults of `rdctl install compose`.
const (
	DefaultDir   = "/opt/rustdesk-server"
	DefaultImage = "rustdesk/rustdesk-server:1.1.16"
	// FileName is the compose file in the project directory.
	FileName = "compose.yaml"
	// DataDirName is the directory next to the compose file that holds the
	// keys and the database; it is the deployment's working directory.
	DataDirName = "data"
)

// Network modes rdctl writes.
const (
	// NetworkHost is what RustDesk's docs use: hbbs sees the clients' real
	// addresses, and the ports are the host's own.
	NetworkHost = "host"
	// NetworkBridge publishes exactly the ports in [BridgePorts].
	NetworkBridge = "bridge"
)

// The two services, as named in the compose file and in the
// com.docker.compose.service label.
const (
	ServiceHBBS = "hbbs"
	ServiceHBBR = "hbbr"
)

// Working directories of the published images (the WORKDIR of their
// Dockerfiles).
const (
	ClassicWorkdir = "/root"
	S6Workdir      = "/data"
)

// Compose labels Docker Compose puts on every container it creates.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelOneOff      = "com.docker.compose.oneoff"
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
)

// Spec is a validated compose deployment: everything the compose file is
// rendered from. Build it with [NewSpec] or [SpecFromRecord].
type Spec struct {
	// Project is the compose project name (the `name:` in the file and -p).
	Project string
	// Dir holds compose.yaml and data/, as seen on the live system.
	Dir deploy.AbsPath
	// Image runs both services.
	Image deploy.ImageRef
	// Network is NetworkHost or NetworkBridge.
	Network string
	// Relays are what hbbs advertises with -r (one or several, handed to
	// clients in turn), each with its port.
	Relays []deploy.HostPort
	// WebSocketLoopback publishes the WebSocket ports (bridge mode) on
	// 127.0.0.1 only: a TLS reverse proxy on the host fronts them (the
	// record's [proxy] table). Docker's published ports pass the host
	// firewall's input rules by, so rdctl firewall --proxy cannot shut
	// them; publishing them on loopback does.
	WebSocketLoopback bool
}

// RelayArg is the -r value: the relays joined by commas.
func (s Spec) RelayArg() string { return deploy.JoinRelays(s.Relays) }

// NewSpec validates the parts of a compose deployment. An empty project
// is derived from dir ([ProjectName]); an empty network is host.
func NewSpec(dir, image, network, project string, relays ...deploy.HostPort) (Spec, error) {
	d, err := deploy.ParseAbsPath("--dir", dir)
	if err != nil {
		return Spec{}, err
	}
	if d == "/" {
		return Spec{}, &deploy.InputError{Field: "--dir", Value: dir, Reason: "must not be the root directory"}
	}
	img, err := deploy.ParseImageRef("--image", image)
	if err != nil {
		return Spec{}, err
	}
	if network == "" {
		network = NetworkHost
	}
	if network, err = ParseNetwork("--network", network); err != nil {
		return Spec{}, err
	}
	if project == "" {
		project = ProjectName(string(d))
	}
	if err := checkProjectName("compose.project", project); err != nil {
		return Spec{}, err
	}
	if len(relays) == 0 {
		return Spec{}, &deploy.InputError{Field: "--relay", Value: "", Reason: "must not be empty"}
	}
	withPorts := make([]deploy.HostPort, len(relays))
	for i, relay := range relays {
		if relay.Host == "" {
			return Spec{}, &deploy.InputError{Field: "--relay", Value: "", Reason: "must not be empty"}
		}
		withPorts[i] = relay.WithDefaultPort(deploy.RelayPort)
	}
	// The list is checked as the record will hold it.
	if _, err := deploy.ParseRelays("--relay", deploy.JoinRelays(withPorts)); err != nil {
		return Spec{}, err
	}
	return Spec{Project: project, Dir: d, Image: img, Network: network, Relays: withPorts}, nil
}

// SpecFromRecord rebuilds the Spec of a compose deployment record.
func SpecFromRecord(r *deploy.Record) (Spec, error) {
	if r.Backend != deploy.BackendCompose || r.Compose == nil {
		return Spec{}, fmt.Errorf("the deployment record is not a compose deployment (backend %q)", r.Backend)
	}
	relays, err := deploy.ParseRelays("relay", r.Relay)
	if err != nil {
		return Spec{}, err
	}
	s, err := NewSpec(r.Compose.Dir, r.Compose.Image, r.Compose.Network, r.Compose.Project, relays...)
	s.WebSocketLoopback = r.Proxy != nil
	return s, err
}

// ParseNetwork accepts "host" or "bridge".
func ParseNetwork(field, s string) (string, error) {
	switch s {
	case NetworkHost, NetworkBridge:
		return s, nil
	}
	return "", &deploy.InputError{Field: field, Value: s, Reason: "must be host or bridge"}
}

// ProjectName is the project name Docker Compose would derive from dir: its
// base name, lower-cased, keeping only [a-z0-9_-], without leading '_' or
// '-'. A name that ends up empty becomes "rustdesk-server".
func ProjectName(dir string) string {
	n := normalizeProjectName(path.Base(dir))
	if n == "" {
		return "rustdesk-server"
	}
	return n
}

// normalizeProjectName is Docker Compose's rule (compose-go's
// loader.NormalizeProjectName, which a test compares it with): lower-case,
// keep only [a-z0-9_-], drop leading '_' and '-'.
func normalizeProjectName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		}
	}
	return strings.TrimLeft(b.String(), "_-")
}

// checkProjectName applies Compose's rule for explicit project names.
func checkProjectName(field, s string) error {
	if s == "" || normalizeProjectName(s) != s {
		return &deploy.InputError{Field: field, Value: s, Reason: "a compose project name is lower-case letters, digits, '_' and '-', starting with a letter or digit"}
	}
	return nil
}

// File is the compose file's path on the live system.
func (s Spec) File() string { return path.Join(string(s.Dir), FileName) }

// DataDir is the working directory on the host: <dir>/data.
func (s Spec) DataDir() string { return path.Join(string(s.Dir), DataDirName) }

// MountTarget is where DataDir is mounted in the containers.
func (s Spec) MountTarget() string { return MountTargetFor(s.Image) }

// Record fills in the compose part of a deployment record for s.
func (s Spec) Record() *deploy.ComposeRecord {
	return &deploy.ComposeRecord{Dir: string(s.Dir), Image: string(s.Image), Network: s.Network, Project: s.Project, MountTarget: s.MountTarget()}
}

// ImageName is the repository part of an image reference, without the
// registry host, tag or digest: "rustdesk/rustdesk-server" for
// "ghcr.io/rustdesk/rustdesk-server:1.1.16@sha256:…". Docker Hub's
// "docker.io/" and "library/" prefixes are dropped too.
func ImageName(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	// A tag follows the last ':' after the last '/' (a registry port
	// comes before a '/').
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		name = rest
	}
	return strings.TrimPrefix(name, "library/")
}

// ImageTag is the tag of an image reference, "latest" when it has none and
// "" when it is pinned by digest only.
func ImageTag(ref string) string {
	name, digest, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[i+1:]
	}
	if digest != "" {
		return ""
	}
	return "latest"
}

// imageBase is the last path element of an image's name.
func imageBase(ref string) string { return path.Base(ImageName(ref)) }

// IsS6Image reports whether ref names RustDesk's s6-overlay image (its last
// path element is rustdesk-server-s6, from any registry).
func IsS6Image[S ~string](ref S) bool { return imageBase(string(ref)) == "rustdesk-server-s6" }

// IsRustDeskImage reports whether ref names one of RustDesk's server images
// (rustdesk-server or rustdesk-server-s6, from any registry).
func IsRustDeskImage[S ~string](ref S) bool {
	b := imageBase(string(ref))
	return b == "rustdesk-server" || b == "rustdesk-server-s6"
}

// MountTargetFor is the working directory of the image ref names, where
// the data directory must be mounted: /data for the s6 image, /root for the
// classic image and for any other name (images built from the classic
// Dockerfile keep its WORKDIR).
func MountTargetFor[S ~string](ref S) string {
	if IsS6Image(ref) {
		return S6Workdir
	}
	return ClassicWorkdir
}

// BridgePorts are the ports published in bridge mode, per service: hbbs
// 21115 (NAT test), 21116 tcp and udp (rendezvous), 21118 (WebSocket);
// hbbr 21117 (relay), 21119 (relay WebSocket). All on all host addresses,
// as with host networking, except the WebSocket ports with wsLoopback:
// 127.0.0.1 only.
func BridgePorts(wsLoopback bool) map[string][]types.ServicePortConfig {
	p := func(port uint32, proto string) types.ServicePortConfig {
		return types.ServicePortConfig{Target: port, Published: fmt.Sprint(port), Protocol: proto}
	}
	ws := func(port uint32) types.ServicePortConfig {
		c := p(port, "tcp")
		if wsLoopback {
			c.HostIP = "127.0.0.1"
		}
		return c
	}
	return map[string][]types.ServicePortConfig{
		ServiceHBBS: {p(21115, "tcp"), p(21116, "tcp"), p(21116, "udp"), ws(21118)},
		ServiceHBBR: {p(21117, "tcp"), ws(21119)},
	}
}

// Commands are the services' command lines: hbbs advertises the relay and
// both enforce the key ("-k _": load the pair from the working directory).
func (s Spec) Commands() map[string][]string {
	return map[string][]string{
		ServiceHBBS: {"hbbs", "-r", s.RelayArg(), "-k", "_"},
		ServiceHBBR: {"hbbr", "-k", "_"},
	}
}

// ComposeProject builds the compose project with compose-go's types.
//
// Both services run Image with `restart: unless-stopped` and
// `pull_policy: missing`, mount DataDir at MountTarget with
// create_host_path off (a missing data directory is an error, never an
// empty directory in which hbbs would silently make a new key), and hbbs
// starts after hbbr. For the s6 image the entrypoint (/init, which would
// start its own hbbs and hbbr) is cleared and its s6 healthcheck disabled,
// so each service runs exactly the one server its command names.
func (s Spec) ComposeProject() *types.Project {
	p := &types.Project{Name: s.Project, Services: types.Services{}}
	cmds := s.Commands()
	ports := BridgePorts(s.WebSocketLoopback)
	for _, name := range []string{ServiceHBBR, ServiceHBBS} {
		svc := types.ServiceConfig{Name: name, Restart: types.RestartPolicyUnlessStopped}
		svc.Image = string(s.Image)
		svc.PullPolicy = types.PullPolicyMissing
		svc.Command = types.ShellCommand(cmds[name])
		svc.Volumes = []types.ServiceVolumeConfig{{
			Type: types.VolumeTypeBind, Source: s.DataDir(), Target: s.MountTarget(),
			Bind: &types.ServiceVolumeBind{CreateHostPath: false},
		}}
		if s.Network == NetworkHost {
			svc.NetworkMode = "host"
		} else {
			svc.Ports = ports[name]
		}
		if IsS6Image(s.Image) {
			svc.Entrypoint = types.ShellCommand{}
			svc.HealthCheck = &types.HealthCheckConfig{Disable: true}
		}
		if name == ServiceHBBS {
			svc.DependsOn = types.DependsOnConfig{ServiceHBBR: {Condition: types.ServiceConditionStarted, Required: true}}
		}
		p.Services[name] = svc
	}
	return p
}

// header starts every compose file rdctl writes.
const header = `# RustDesk server (hbbs + hbbr): written by rdctl install compose.
# rdctl rewrites this file on install and upgrade; change it with rdctl.
# Keys and database: the data directory mounted below (keep it; back it up).
`

// Render marshals the project to YAML and checks it: the bytes are read back
// (strictly: an attribute rdctl does not write is an error) and must describe
// the same services. The result is deterministic, so an unchanged install
// writes identical bytes. The tests load every rendered variant with
// compose-go's loader and schema as Docker Compose does.
func Render(ctx context.Context, s Spec) ([]byte, error) {
	p := s.ComposeProject()
	body, err := p.MarshalYAML()
	if err != nil {
		return nil, err
	}
	data := append([]byte(header), body...)
	loaded, err := readBack(data)
	if err != nil {
		return nil, fmt.Errorf("the compose file rdctl rendered does not read back: %w", err)
	}
	if err := sameServices(p, loaded); err != nil {
		return nil, fmt.Errorf("the compose file rdctl rendered reads back differently: %w", err)
	}
	return data, nil
}

// renderedFile is the subset of the compose format rdctl writes.
type renderedFile struct {
	Name     string                     `yaml:"name"`
	Services map[string]renderedService `yaml:"services"`
}

type renderedService struct {
	Image       string   `yaml:"image"`
	Command     []string `yaml:"command"`
	Entrypoint  []string `yaml:"entrypoint"`
	Restart     string   `yaml:"restart"`
	PullPolicy  string   `yaml:"pull_policy"`
	NetworkMode string   `yaml:"network_mode"`
	Volumes     []struct {
		Type   string `yaml:"type"`
		Source string `yaml:"source"`
		Target string `yaml:"target"`
		Bind   *struct {
			CreateHostPath bool `yaml:"create_host_path"`
		} `yaml:"bind"`
	} `yaml:"volumes"`
	Ports []struct {
		Target    uint32 `yaml:"target"`
		Published string `yaml:"published"`
		Protocol  string `yaml:"protocol"`
		HostIP    string `yaml:"host_ip"`
	} `yaml:"ports"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
		Required  bool   `yaml:"required"`
	} `yaml:"depends_on"`
	HealthCheck *struct {
		Disable bool `yaml:"disable"`
	} `yaml:"healthcheck"`
}

// readBack parses a compose file rdctl rendered into compose-go's types,
// refusing any attribute outside what rdctl writes.
func readBack(data []byte) (*types.Project, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f renderedFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	p := &types.Project{Name: f.Name, Services: types.Services{}}
	for name, rs := range f.Services {
		svc := types.ServiceConfig{Name: name, Restart: rs.Restart}
		svc.Image, svc.Command, svc.Entrypoint = rs.Image, rs.Command, rs.Entrypoint
		svc.PullPolicy, svc.NetworkMode = rs.PullPolicy, rs.NetworkMode
		if rs.Entrypoint != nil && len(rs.Entrypoint) == 0 {
			svc.Entrypoint = types.ShellCommand{}
		}
		for _, v := range rs.Volumes {
			vc := types.ServiceVolumeConfig{Type: v.Type, Source: v.Source, Target: v.Target}
			if v.Bind != nil {
				vc.Bind = &types.ServiceVolumeBind{CreateHostPath: types.OptOut(v.Bind.CreateHostPath)}
			}
			svc.Volumes = append(svc.Volumes, vc)
		}
		for _, pc := range rs.Ports {
			svc.Ports = append(svc.Ports, types.ServicePortConfig{Target: pc.Target, Published: pc.Published, Protocol: pc.Protocol, HostIP: pc.HostIP})
		}
		p.Services[name] = svc
	}
	return p, nil
}

// sameServices checks that the loaded project holds what was rendered: the
// fields that decide what runs.
func sameServices(want, got *types.Project) error {
	if got.Name != want.Name {
		return fmt.Errorf("project name %q, want %q", got.Name, want.Name)
	}
	if len(got.Services) != len(want.Services) {
		return fmt.Errorf("%d services, want %d", len(got.Services), len(want.Services))
	}
	for name, w := range want.Services {
		g, ok := got.Services[name]
		if !ok {
			return fmt.Errorf("service %s is missing", name)
		}
		checks := []struct {
			what      string
			got, want any
		}{
			{"image", g.Image, w.Image},
			{"command", []string(g.Command), []string(w.Command)},
			{"entrypoint", []string(g.Entrypoint), []string(w.Entrypoint)},
			{"restart", g.Restart, w.Restart},
			{"pull_policy", g.PullPolicy, w.PullPolicy},
			{"network_mode", g.NetworkMode, w.NetworkMode},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				return fmt.Errorf("service %s: %s is %v, want %v", name, c.what, c.got, c.want)
			}
		}
		if len(g.Volumes) != 1 || g.Volumes[0].Source != w.Volumes[0].Source || g.Volumes[0].Target != w.Volumes[0].Target ||
			g.Volumes[0].Bind == nil || bool(g.Volumes[0].Bind.CreateHostPath) {
			return fmt.Errorf("service %s: volumes %+v, want exactly %s:%s without create_host_path", name, g.Volumes, w.Volumes[0].Source, w.Volumes[0].Target)
		}
		if len(g.Ports) != len(w.Ports) {
			return fmt.Errorf("service %s: %d ports, want %d", name, len(g.Ports), len(w.Ports))
		}
		for i := range w.Ports {
			if g.Ports[i].Target != w.Ports[i].Target || g.Ports[i].Published != w.Ports[i].Published || g.Ports[i].Protocol != w.Ports[i].Protocol ||
				g.Ports[i].HostIP != w.Ports[i].HostIP {
				return fmt.Errorf("service %s: port %d is %+v, want %+v", name, i, g.Ports[i], w.Ports[i])
			}
		}
	}
	return nil
}

// WrittenByRdctl reports whether data is a compose file rdctl wrote (it
// starts with rdctl's header), for adopt and doctor.
func WrittenByRdctl(data []byte) bool { return bytes.HasPrefix(data, []byte(header[:40])) }

// ServiceEnvironments reads the environment: of every service in a compose
// file, as `KEY=VALUE` lines, leaving every other attribute
// alone (the file may be one an operator edited). Compose allows a map or a
// list of KEY=VALUE (returned sorted); a key without a value (list form `KEY`, map form `KEY:`)
// is left out, as it takes its value from the caller's environment, which
// rdctl cannot see. It does not interpolate ${VAR}: the lints read the text
// as written. The full compose-go loader is not linked into rdctl (its
// schema compiles at start-up), so this is the one reader of that attribute.
func ServiceEnvironments(data []byte) (map[string][]string, error) {
	var f struct {
		Services map[string]struct {
			Environment yaml.Node `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(f.Services))
	for name, s := range f.Services {
		var env []string
		switch n := s.Environment; n.Kind {
		case 0:
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("service %s: environment: %s is not a plain value", name, k.Value)
				}
				if v.Tag == "!!null" {
					continue
				}
				env = append(env, k.Value+"="+v.Value)
			}
		case yaml.SequenceNode:
			for _, item := range n.Content {
				if item.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("service %s: environment: an entry is not a plain value", name)
				}
				if strings.Contains(item.Value, "=") {
					env = append(env, item.Value)
				}
			}
		default:
			return nil, fmt.Errorf("service %s: environment: neither a map nor a list", name)
		}
		slices.Sort(env)
		out[name] = env
	}
	return out, nil
}
