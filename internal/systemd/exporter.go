package systemd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/safefs"
)

// ExporterUnitName is the unit rdctl install exporter writes.
const ExporterUnitName = "rdctl-exporter.service"

// ExporterScrapeConfigPath is the example Prometheus scrape config it
// writes next to the record.
const ExporterScrapeConfigPath = "/etc/rdctl/prometheus-rustdesk.yml"

// exporterCredential is the name of the public key file systemd hands the
// exporter (LoadCredential=, read by PID 1 at start: the dynamic user
// cannot read the working directory, which is the service user's, 0700).
const exporterCredential = "rustdesk.pub"

// ExporterSpec is what the exporter's unit says.
type ExporterSpec struct {
	// Binary is rdctl's absolute path on the target.
	Binary string
	// Listen is the exporter's host:port.
	Listen string
	// PublicKeyFile is the server's id_ed25519.pub ("" = no expected key).
	PublicKeyFile string
	// IDHost is the server's ID host, the example scrape target.
	IDHost string
}

// ExporterUnit renders rdctl-exporter.service: a dynamic user with no
// write access anywhere, only the network families the probes and
// tailscaled's socket need, no capabilities.
func ExporterUnit(s ExporterSpec) []byte {
	opt := unit.NewUnitOption
	exec := fmt.Sprintf("%s exporter --listen %s --log-format json", s.Binary, s.Listen)
	opts := []*unit.UnitOption{
		opt("Unit", "Description", "rdctl exporter: Prometheus probes of RustDesk servers"),
		opt("Unit", "After", "network-online.target"),
		opt("Unit", "Wants", "network-online.target"),
		opt("Service", "Type", "simple"),
		opt("Service", "DynamicUser", "yes"),
	}
	if s.PublicKeyFile != "" {
		opts = append(opts, opt("Service", "LoadCredential", exporterCredential+":"+s.PublicKeyFile))
		exec += " --key-file %d/" + exporterCredential
	}
	opts = append(opts,
		opt("Service", "ExecStart", exec),
		opt("Service", "Restart", "on-failure"),
		opt("Service", "RestartSec", "5s"),
	)
	opts = append(opts, hardening()...)
	opts = append(opts,
		// Read the record, never write it; no System V IPC either.
		opt("Service", "ReadOnlyPaths", "-/etc/rdctl"),
		opt("Service", "PrivateIPC", "yes"),
		opt("Install", "WantedBy", "multi-user.target"),
	)
	b, _ := io.ReadAll(unit.Serialize(opts))
	return append([]byte(header), b...)
}

// ExporterScrapeConfig is an example Prometheus scrape config for the
// exporter, with the relabelling blackbox-style probes need.
func ExporterScrapeConfig(s ExporterSpec) []byte {
	target := s.IDHost
	if target == "" {
		target = "rustdesk.example.com"
	}
	return fmt.Appendf(nil, `# Written by rdctl install exporter: add these jobs to prometheus.yml.
scrape_configs:
  - job_name: rustdesk
    metrics_path: /probe
    params:
      module: [default]
    static_configs:
      - targets: [%q]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: %s
  - job_name: rdctl-exporter
    static_configs:
      - targets: [%q]
`, target, s.Listen, s.Listen)
}

// ExporterSpecFromRecord is the spec for a deployment (rec may be nil).
func ExporterSpecFromRecord(rec *deploy.Record, binary, listen string) ExporterSpec {
	s := ExporterSpec{Binary: binary, Listen: listen}
	if rec != nil {
		s.PublicKeyFile = path.Join(rec.WorkingDir, "id_ed25519.pub")
		s.IDHost = rec.IDHost
	}
	return s
}

// ExporterPlan writes the unit, enables it (the wants link) and writes the
// example scrape config, all under root.
func ExporterPlan(root string, s ExporterSpec) *plan.Plan {
	var p plan.Plan
	p.Add(
		&plan.WriteFile{Path: Under(root, path.Join(UnitDir, ExporterUnitName)), Data: ExporterUnit(s), Options: safefs.CallerOwned(0o644)},
		&plan.Symlink{Path: Under(root, path.Join(WantsDir, ExporterUnitName)), LinkTarget: path.Join(UnitDir, ExporterUnitName)},
		&plan.WriteFile{Path: Under(root, ExporterScrapeConfigPath), Data: ExporterScrapeConfig(s), Options: safefs.CallerOwned(0o644)},
	)
	return &p
}

// RdctlPaths are where rdctl is looked for on a host or in an image, in
// order: the Debian package's path, then where the README's build and the
// Ansible role put it, then the sbin variants.
var RdctlPaths = []string{"/usr/bin/rdctl", "/usr/local/bin/rdctl", "/usr/sbin/rdctl", "/usr/local/sbin/rdctl"}

// ExporterBinary is the rdctl the exporter's unit runs when --binary is
// not given. Live (root ""), it is the running rdctl itself, symlinks
// resolved, when that is still on disk: the unit then runs what the admin
// ran, wherever it was installed. In an image (or when the running file
// is gone) it is the first of RdctlPaths that is a regular file under
// root. found is false when there is none, and the path is then the Debian
// package's.
func ExporterBinary(root string, executable func() (string, error)) (p string, found bool) {
	if root == "" && executable != nil {
		if exe, err := executable(); err == nil {
			if exe, err = filepath.EvalSymlinks(exe); err == nil && filepath.IsAbs(exe) && isRegular(exe) {
				return filepath.Clean(exe), true
			}
		}
	}
	for _, c := range RdctlPaths {
		if isRegular(Under(root, c)) {
			return c, true
		}
	}
	return RdctlPaths[0], false
}

// BinaryPresent says whether p (a path on the target) is a regular file
// under root.
func BinaryPresent(root, p string) bool { return isRegular(Under(root, p)) }

func isRegular(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// ActivateExporter is the last step of a live install exporter: reload
// systemd when the plan changed something and start the exporter,
// restarting it then, since a new unit (or listen address, or key
// credential) takes effect only on a start. The plan's wants link enables
// it.
type ActivateExporter struct {
	Ctx context.Context
	// Changed reports whether an earlier step of the plan changed
	// something ([plan.Plan.ChangedSoFar]); it is asked when the step runs.
	Changed func() bool
	// Connect reaches systemd; nil means the system manager over D-Bus.
	Connect ConnectFunc

	// Started is set by Apply: it started or restarted the exporter.
	Started bool
}

func (a *ActivateExporter) Action() string { return "start" }
func (a *ActivateExporter) Target() string { return ExporterUnitName }

// Pending is true when the plan changed something or the exporter is not
// active.
func (a *ActivateExporter) Pending() (pending bool, err error) {
	if a.Changed() {
		return true, nil
	}
	err = a.Connect.session(a.Ctx, 10*time.Second, func(ctx context.Context, m UnitManager) error {
		pending, err = a.inactive(ctx, m)
		return err
	})
	return pending, err
}

func (a *ActivateExporter) inactive(ctx context.Context, m UnitManager) (bool, error) {
	st, err := m.State(ctx, ExporterUnitName)
	return err == nil && st.ActiveState != "active", err
}

// Apply starts the exporter in one session with systemd: after a change
// a daemon-reload and a restart (which starts it when it is not
// running), otherwise a start when it is not active.
func (a *ActivateExporter) Apply() (acted bool, err error) {
	changed := a.Changed()
	err = a.Connect.session(a.Ctx, 60*time.Second, func(ctx context.Context, m UnitManager) error {
		start := m.Restart
		if changed {
			if err := m.Reload(ctx); err != nil {
				return fmt.Errorf("daemon-reload: %w", err)
			}
		} else if inactive, err := a.inactive(ctx, m); err != nil || !inactive {
			return err
		} else {
			start = m.Start
		}
		acted = true // from here on the unit's state may change
		if err := start(ctx, ExporterUnitName); err != nil {
			return &StartError{Err: err}
		}
		a.Started = true
		return nil
	})
	return acted, err
}
