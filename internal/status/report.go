// Package status is what `rdctl status` reports: a deployment's units or
// containers, key, ports, backups, staged key and tailnet presence,
// gathered read-only.
//
// Under an image root (Options.Root) only files are read: unit files and
// their enablement links, the key files, backups and the staged key. Live,
// systemd is asked over D-Bus, the Docker engine about a compose stack,
// /proc about listening sockets and (through a seam the caller supplies, so
// this package links no tailscale client) tailscaled about this host.
//
// Problems with any one source are part of the Report (the *_error fields),
// not errors: status shows what it can. The package never prints.
package status

import (
	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/doctor"
)

// Report is the status of one deployment. Its JSON is the `status --json`
// contract the README documents: fields may be added, none renamed.
type Report struct {
	Record  string `json:"record"`
	Root    string `json:"root,omitempty"`
	Backend string `json:"backend"`
	Origin  string `json:"origin"`
	IDHost  string `json:"id_host"`
	Relay   string `json:"relay"`
	// Relays is the relay list, one entry per relay hbbs hands out in
	// turn (relay is the same list as -r takes it); [] for none.
	Relays     []string `json:"relays"`
	WorkingDir string   `json:"working_dir"`
	Units      []Unit   `json:"units"`
	UnitsError string   `json:"units_error,omitempty"`
	// Containers are the compose stack's hbbs and hbbr containers (live,
	// compose backend only); ContainersError says why they are unknown.
	Containers      []Container        `json:"containers,omitempty"`
	ContainersError string             `json:"containers_error,omitempty"`
	Key             Key                `json:"key"`
	Ports           []doctor.PortState `json:"ports,omitempty"`
	PortsError      string             `json:"ports_error,omitempty"`
	Backups         Backups            `json:"backups"`
	Staged          Staged             `json:"staged"`
	Tailnet         *Tailnet           `json:"tailnet,omitempty"`
	// Proxy is the record's [proxy] table: a TLS reverse proxy fronts
	// the WebSocket ports (rdctl proxy --apply).
	Proxy *deploy.ProxyRecord `json:"proxy,omitempty"`
}

// Unit is one systemd unit of the deployment.
type Unit struct {
	Name          string `json:"name"`
	UnitFile      string `json:"unit_file,omitempty"`
	UnitFileState string `json:"unit_file_state"`
	LoadState     string `json:"load_state,omitempty"`
	ActiveState   string `json:"active_state,omitempty"`
	SubState      string `json:"sub_state,omitempty"`
	MainPID       uint32 `json:"main_pid,omitempty"`
	// Restarts is nil where systemd was not asked (an image root).
	Restarts *uint32 `json:"restarts,omitempty"`
	Result   string  `json:"result,omitempty"`
}

// Container is one container of a compose service as the engine reports
// it. State is "missing" when the service has no container.
type Container struct {
	Service    string          `json:"service"`
	Container  string          `json:"container,omitempty"`
	State      string          `json:"state"`
	Running    bool            `json:"running"`
	Restarting bool            `json:"restarting"`
	Restarts   int             `json:"restarts"`
	ExitCode   int             `json:"exit_code"`
	Image      string          `json:"image,omitempty"`
	WorkingDir string          `json:"working_dir,omitempty"`
	Mounts     []compose.Mount `json:"mounts"`
	// KeyDir is the host directory mounted over WorkingDir, "" when the
	// keys are in the container layer.
	KeyDir string `json:"key_dir,omitempty"`
	// Published are the ports the engine publishes for it (bridge
	// networks).
	Published []compose.PublishedPort `json:"published,omitempty"`
}

// File is a key file's mode and owner.
type File struct {
	Path  string `json:"path"`
	Mode  string `json:"mode"` // octal permissions, "0600"
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
}

// Key is the live key pair in the working directory.
type Key struct {
	Dir            string `json:"dir"`
	Present        bool   `json:"present"`
	Valid          bool   `json:"valid"`
	PublicKey      string `json:"public_key,omitempty"`
	Fingerprint    string `json:"fingerprint,omitempty"`
	PubFileMatches bool   `json:"pub_file_matches"`
	Error          string `json:"error,omitempty"`
	Secret         *File  `json:"secret,omitempty"`
	Pub            *File  `json:"pub,omitempty"`
}

// Backups summarises the key backups, the newest being the last rotation.
type Backups struct {
	Count            int    `json:"count"`
	LastRotation     string `json:"last_rotation,omitempty"`
	LastRotationTime string `json:"last_rotation_time,omitempty"` // RFC 3339, UTC
	Newest           string `json:"newest,omitempty"`
	Error            string `json:"error,omitempty"`
}

// Staged is the key `rotate --stage` prepared, if any.
type Staged struct {
	Present     bool   `json:"present"`
	PublicKey   string `json:"public_key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Tailnet is this host on its tailnet.
type Tailnet struct {
	Name    string   `json:"name"`
	DNSName string   `json:"dns_name,omitempty"`
	IPs     []string `json:"ips"`
	Mode    string   `json:"mode"` // tun | userspace
	// Ports lists, per server port, whether a listener covers the tailnet
	// addresses (bound to them or to the wildcard address).
	Ports []TailnetPort `json:"ports,omitempty"`
	Error string        `json:"error,omitempty"`
}

// TailnetPort says whether one server port is reachable over the tailnet.
type TailnetPort struct {
	Proto     string `json:"proto"`
	Port      int    `json:"port"`
	Reachable bool   `json:"reachable"`
}
