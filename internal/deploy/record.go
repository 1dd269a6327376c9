package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"

	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// DefaultRecordPath is where the deployment record lives (under --root when
// one is given).
const DefaultRecordPath = "/etc/rdctl/rdctl.toml"

// Defaults for the systemd backend.
const (
	DefaultWorkingDir  = "/var/lib/rustdesk"
	DefaultBinDir      = "/usr/local/bin"
	DefaultServiceUser = "rustdesk"
	DefaultHBBSUnit    = "hbbs.service"
	DefaultHBBRUnit    = "hbbr.service"
)

// Default ports (hbb_common config.rs).
const (
	RendezvousPort Port = 21116
	RelayPort      Port = 21117
)

// Backends a record can name.
const (
	BackendSystemd = "systemd"
	BackendCompose = "compose"
)

// recordFormat is the record's format version; a newer one is refused.
const recordFormat = 1

// Record is the deployment record: everything rotate, export, check and
// status need to know about the installed server. It holds no secrets and
// no timestamps, so an unchanged install writes identical bytes.
type Record struct {
	Format  int    `toml:"format"`
	Backend string `toml:"backend"`

	// IDHost is the ID (rendezvous) server clients are configured with,
	// host[:port]; port 21116 is implied.
	IDHost string `toml:"id_host"`
	// Relay is what hbbs advertises with -r: one relay host[:port]
	// (21117 implied) or several separated by commas, exactly as -r takes
	// them; hbbs hands them out to clients in turn. A record written
	// before several relays were supported holds one, which reads the same.
	Relay string `toml:"relay"`
	// TailnetHost is the ID server tailnet clients are configured with
	// (host[:port]), when the server is reached by a public name (IDHost)
	// and a tailnet name: a client takes exactly one ID server, so each
	// population gets its own configuration (export --profile).
	TailnetHost string `toml:"tailnet_host,omitempty"`
	// API is the API server URL for clients; empty for OSS.
	API string `toml:"api,omitempty"`
	// Bind is the -b address given to hbbs and hbbr (1.1.17+), or empty.
	Bind string `toml:"bind,omitempty"`
	// TailnetOnly restricts the units to localhost and the tailnet ranges.
	TailnetOnly bool `toml:"tailnet_only"`

	// WorkingDir holds id_ed25519, id_ed25519.pub and db_v2.sqlite3.
	WorkingDir string `toml:"working_dir"`
	// BinDir holds hbbs and hbbr.
	BinDir string `toml:"bin_dir,omitempty"`
	// ServiceUser runs hbbs and hbbr.
	ServiceUser string `toml:"service_user,omitempty"`
	// HBBSUnit and HBBRUnit are the systemd unit names.
	HBBSUnit string `toml:"hbbs_unit,omitempty"`
	HBBRUnit string `toml:"hbbr_unit,omitempty"`
	// InstalledBinaries are the programs rdctl wrote, with their sha256:
	// uninstall --purge removes only these, and only while they match.
	InstalledBinaries []InstalledBinary `toml:"installed_binaries,omitempty"`
	// HBBSVersion is what `hbbs -V` reported at install, if known.
	HBBSVersion string `toml:"hbbs_version,omitempty"`
	// HBBREnforcesKey is whether hbbr checks the key (runs with -k).
	HBBREnforcesKey bool `toml:"hbbr_enforces_key"`
	// Origin says how rdctl came to know the server: "rdctl" for its own
	// install, or what adopt recognised ("debian", "installer-script",
	// "compose").
	Origin string `toml:"origin"`

	Compose *ComposeRecord `toml:"compose,omitempty"`

	// Proxy is the TLS reverse proxy in front of the WebSocket ports, if
	// rdctl proxy --apply installed one (see ProxyRecord).
	Proxy *ProxyRecord `toml:"proxy,omitempty"`
}

// ComposeRecord describes a compose stack.
type ComposeRecord struct {
	Dir     string `toml:"dir"`
	Image   string `toml:"image"`
	Network string `toml:"network"`
	Project string `toml:"project"`
	// MountTarget is the container path the working dir is mounted at.
	MountTarget string `toml:"mount_target"`
}

// RecordError reports a record that exists but cannot be used.
type RecordError struct {
	Path string
	Err  error
}

func (e *RecordError) Error() string { return fmt.Sprintf("deployment record %q: %v", e.Path, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

// ErrNoRecord means there is no deployment record.
var ErrNoRecord = errors.New("no deployment record")

// Origins a record can name: how rdctl came to know the server.
const (
	OriginRdctl           = "rdctl"
	OriginDebian          = "debian"
	OriginInstallerScript = "installer-script"
	OriginCustom          = "custom"
	OriginCompose         = "compose"
)

// Compose networks a record can name.
const (
	NetworkHost   = "host"
	NetworkBridge = "bridge"
)

// MaxTextLen is the longest free-text value a record field may hold.
const MaxTextLen = 200

// Validate checks every field as if a user had typed it: the record is read
// from disk, and whoever can write it must not be able to point rdctl at a
// unit file or directory outside the deployment, or put text in front of
// the operator that the field cannot hold. Each rejected field is an
// [*InputError] naming it.
func (r *Record) Validate() error {
	if r.Format != recordFormat {
		return fmt.Errorf("format %d is not supported by this rdctl (want %d)", r.Format, recordFormat)
	}
	for _, f := range r.textFields() {
		if err := checkText(f.field, f.value); err != nil {
			return err
		}
	}
	switch r.Backend {
	case BackendSystemd, BackendCompose:
	default:
		return &InputError{Field: "backend", Value: r.Backend, Reason: "must be systemd or compose"}
	}
	switch r.Origin {
	case OriginRdctl, OriginDebian, OriginInstallerScript, OriginCustom, OriginCompose:
	default:
		return &InputError{Field: "origin", Value: r.Origin, Reason: "must be rdctl, debian, installer-script, custom or compose"}
	}
	if _, err := ParseHostPort("id_host", r.IDHost); err != nil {
		return err
	}
	if r.Relay != "" {
		if _, err := ParseRelays("relay", r.Relay); err != nil {
			return err
		}
	}
	if r.TailnetHost != "" {
		if _, err := ParseHostPort("tailnet_host", r.TailnetHost); err != nil {
			return err
		}
	}
	if r.API != "" {
		if _, err := ParseAPI("api", r.API); err != nil {
			return err
		}
	}
	if r.Bind != "" {
		if _, err := ParseBindAddr("bind", r.Bind); err != nil {
			return err
		}
	}
	if _, err := ParseDataDir("working_dir", r.WorkingDir); err != nil {
		return err
	}
	if r.BinDir != "" {
		if _, err := ParseDataDir("bin_dir", r.BinDir); err != nil {
			return err
		}
	}
	if r.ServiceUser != "" {
		if _, err := ParseUserName("service_user", r.ServiceUser); err != nil {
			return err
		}
	}
	for _, u := range []struct{ field, name string }{{"hbbs_unit", r.HBBSUnit}, {"hbbr_unit", r.HBBRUnit}} {
		if u.name != "" {
			if err := ParseUnitName(u.field, u.name); err != nil {
				return err
			}
		}
	}
	if err := validateInstalledBinaries(r.InstalledBinaries); err != nil {
		return err
	}
	if r.HBBSVersion != "" {
		if _, err := ParseVersion("hbbs_version", r.HBBSVersion); err != nil {
			return err
		}
	}
	if c := r.Compose; c != nil {
		if _, err := ParseDataDir("compose.dir", c.Dir); err != nil {
			return err
		}
		if _, err := ParseImageRef("compose.image", c.Image); err != nil {
			return err
		}
		switch c.Network {
		case NetworkHost, NetworkBridge:
		default:
			return &InputError{Field: "compose.network", Value: c.Network, Reason: "must be host or bridge"}
		}
		if !projectRE().MatchString(c.Project) {
			return &InputError{Field: "compose.project", Value: c.Project, Reason: "a compose project name is lower-case letters, digits, '_' and '-', starting with a letter or digit"}
		}
		if _, err := ParseDataDir("compose.mount_target", c.MountTarget); err != nil {
			return err
		}
	}
	if p := r.Proxy; p != nil {
		if err := p.validate(); err != nil {
			return err
		}
	}
	return nil
}

type textField struct{ field, value string }

// textFields lists every string field of r with its name in the file.
func (r *Record) textFields() []textField {
	fs := []textField{
		{"backend", r.Backend}, {"id_host", r.IDHost}, {"relay", r.Relay}, {"tailnet_host", r.TailnetHost}, {"api", r.API}, {"bind", r.Bind},
		{"working_dir", r.WorkingDir}, {"bin_dir", r.BinDir}, {"service_user", r.ServiceUser},
		{"hbbs_unit", r.HBBSUnit}, {"hbbr_unit", r.HBBRUnit}, {"hbbs_version", r.HBBSVersion}, {"origin", r.Origin},
	}
	if c := r.Compose; c != nil {
		fs = append(fs, []textField{{"compose.dir", c.Dir}, {"compose.image", c.Image}, {"compose.network", c.Network},
			{"compose.project", c.Project}, {"compose.mount_target", c.MountTarget}}...)
	}
	if p := r.Proxy; p != nil {
		fs = append(fs, p.textFields()...)
	}
	return fs
}

// checkText holds every field to what any of them may be: printable UTF-8
// without control characters, at most MaxTextLen characters. The typed
// checks that follow are stricter; this one alone decides what a field's
// value may look like when it is shown.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return &InputError{Field: field, Value: s, Reason: "is not UTF-8"}
	}
	limit := MaxTextLen
	if field == "relay" {
		limit = MaxRelays * MaxTextLen // a list of up to MaxRelays names
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return &InputError{Field: field, Value: s, Reason: fmt.Sprintf("is %d characters long, more than %d", n, limit)}
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return &InputError{Field: field, Value: s, Reason: fmt.Sprintf("contains the unprintable character %U", r)}
		}
	}
	if textsafe.KeyMaterial(digestRE().ReplaceAllString(s, "")) {
		return &InputError{Field: field, Value: s, Reason: "looks like key material"}
	}
	return nil
}

// digestRE is an image digest, the one place a record holds a long hex run.
var digestRE = lazyRegexp(`@sha256:[0-9a-f]{64}$`)

// projectRE is Compose's rule for a project name.
var projectRE = lazyRegexp(`^[a-z0-9][a-z0-9_-]{0,` + strconv.Itoa(MaxTextLen-1) + `}$`)

// Encode renders the record as TOML.
func (r *Record) Encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# rdctl deployment record: written by rdctl, read by rotate, export, check and status.\n")
	buf.WriteString("# It holds no secrets. Edit with care; rdctl validates it on every read.\n")
	enc := toml.NewEncoder(&buf)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeRecord parses and validates a record.
func DecodeRecord(data []byte) (*Record, error) {
	var r Record
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// LoadRecord reads the record at path. A missing record gives an error
// matching ErrNoRecord.
func LoadRecord(path string) (*Record, error) {
	d, err := safefs.OpenDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &RecordError{Path: path, Err: ErrNoRecord}
	}
	if err != nil {
		return nil, &RecordError{Path: path, Err: err}
	}
	defer d.Close()
	data, _, err := d.ReadFile(filepath.Base(path), 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &RecordError{Path: path, Err: ErrNoRecord}
	}
	if err != nil {
		return nil, &RecordError{Path: path, Err: err}
	}
	r, err := DecodeRecord(data)
	if err != nil {
		return nil, &RecordError{Path: path, Err: err}
	}
	return r, nil
}

// Runtime is the seam between rotation and the service backends: stop both
// services, start them, and report their state. A --root image tree has
// [NoRuntime].
type Runtime interface {
	// Name is "systemd", "compose" or "none", for messages.
	Name() string
	// Stop stops hbbs and hbbr and returns when both are down.
	Stop(ctx context.Context) error
	// Start starts hbbr and hbbs and returns when both are running (or
	// with an error that says why not).
	Start(ctx context.Context) error
	// Running reports whether both services are running.
	Running(ctx context.Context) (bool, error)
}

// Preparer is a [Runtime] that can do ahead of a stop-and-start window the
// work that would otherwise fall inside it, such as connecting to the
// service manager or resetting start limits. A rotation calls Prepare
// before it stops the services and release when the transaction ends;
// Stop and Start work without it, only slower.
type Preparer interface {
	Prepare(ctx context.Context) (release func(), err error)
}

// NoRuntime is the runtime of an image tree: there is nothing to stop or
// start, and nothing runs.
type NoRuntime struct{}

func (NoRuntime) Name() string                          { return "none" }
func (NoRuntime) Stop(context.Context) error            { return nil }
func (NoRuntime) Start(context.Context) error           { return nil }
func (NoRuntime) Running(context.Context) (bool, error) { return false, nil }

// RecordFileOptions is how the record is written: 0644, owned by whoever
// runs rdctl (root on a live host). It holds no secrets.
var RecordFileOptions = safefs.CallerOwned(0o644)

// RecordStep is the one way rdctl writes a deployment record: validated,
// encoded, and written atomically at path as a plan step (install, adopt
// and upgrade all add it to their plans).
// KeepFrom carries over from old, the record an install replaces, what
// other commands wrote into it and the install's flags cannot say: the
// [proxy] table that rdctl proxy --apply wrote. Without it, re-running an
// install (as Ansible does on every play) would forget the proxy, and
// firewall, export and doctor would treat the WebSocket ports as direct
// again. Only for the same deployment: the same backend and working
// directory.
func (r *Record) KeepFrom(old *Record) {
	if old == nil || old.Backend != r.Backend || old.WorkingDir != r.WorkingDir {
		return
	}
	if r.Proxy == nil && old.Proxy != nil {
		p := *old.Proxy
		r.Proxy = &p
	}
}

func RecordStep(path string, r *Record) (*plan.WriteFile, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	data, err := r.Encode()
	if err != nil {
		return nil, err
	}
	return &plan.WriteFile{Path: path, Data: data, Options: RecordFileOptions}, nil
}
