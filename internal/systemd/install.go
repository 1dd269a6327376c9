package systemd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path"
	"path/filepath"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/safefs"
)

// Paths rdctl writes on the systemd backend, relative to the root.
const (
	UnitDir      = "/etc/systemd/system"
	WantsDir     = "/etc/systemd/system/multi-user.target.wants"
	SysusersPath = "/etc/sysusers.d/rdctl-rustdesk.conf"
)

// InstallOptions says what to install where.
type InstallOptions struct {
	// Root is the image tree ("" or "/" for the live system).
	Root string
	// Record is the validated deployment record to install.
	Record *deploy.Record
	// RecordPath is where the record goes (absolute, under Root).
	RecordPath string
	// Binaries to install into Record.BinDir, or nil to leave them.
	Binaries *Binaries
	// KeyOwner owns the working directory and the key files: whoever
	// builds an image (systemd hands StateDirectory= to the service user
	// at first start), the service user on a live host.
	KeyOwner keys.Owner
	// CreateUser (live installs) adds the step that creates the service
	// user, right after the sysusers.d entry it is made from; KeyOwner is
	// then taken from that user.
	CreateUser context.Context
}

// Under resolves an absolute path under root.
func Under(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

// InstallPlan builds the steps of an install: working directory and key
// pair, units, their enablement links, the sysusers entry, binaries and the
// deployment record. The same plan serves --dry-run and apply; applied
// twice, the second run changes nothing.
func InstallPlan(o InstallOptions) (*plan.Plan, *keys.EnsurePair, error) {
	r, root := o.Record, o.Root
	spec := SpecFromRecord(r)
	var p plan.Plan
	sysusers := &plan.WriteFile{Path: Under(root, SysusersPath), Data: SysusersConf(spec.User, spec.WorkingDir),
		Options: safefs.CallerOwned(0o644)}
	workDir := &plan.Mkdir{Path: Under(root, spec.WorkingDir), Mode: 0o700, UID: o.KeyOwner.UID, GID: o.KeyOwner.GID}
	ensure := &keys.EnsurePair{Dir: Under(root, spec.WorkingDir), Owner: o.KeyOwner}
	if o.CreateUser != nil {
		p.Add(sysusers, &ServiceUser{Ctx: o.CreateUser, Name: spec.User, Home: spec.WorkingDir, OnOwner: func(owner keys.Owner) {
			workDir.UID, workDir.GID = owner.UID, owner.GID
			ensure.Owner = owner
		}})
	}
	p.Add(workDir, ensure)
	// The record lists the binaries rdctl wrote, with their hashes, for
	// uninstall --purge; without --binaries it keeps what an earlier
	// install recorded for the same directory.
	rec := *r
	rec.InstalledBinaries = nil
	old, oldErr := deploy.LoadRecord(o.RecordPath)
	if oldErr == nil {
		rec.KeepFrom(old)
	}
	if b := o.Binaries; b != nil {
		bins := map[string][]byte{"hbbs": b.HBBS, "hbbr": b.HBBR, "rustdesk-utils": b.Utils}
		for _, name := range b.Names() {
			p.Add(&plan.WriteFile{Path: Under(root, path.Join(spec.BinDir, name)), Data: bins[name],
				Options: safefs.CallerOwned(0o755)})
			sum := sha256.Sum256(bins[name])
			rec.InstalledBinaries = append(rec.InstalledBinaries, deploy.InstalledBinary{Path: path.Join(spec.BinDir, name), SHA256: hex.EncodeToString(sum[:])})
		}
	} else if oldErr == nil {
		for _, ib := range old.InstalledBinaries {
			if path.Dir(ib.Path) == spec.BinDir {
				rec.InstalledBinaries = append(rec.InstalledBinaries, ib)
			}
		}
	}
	unitFile := func(name string, data []byte) {
		p.Add(&plan.WriteFile{Path: Under(root, path.Join(UnitDir, name)), Data: data, Options: safefs.CallerOwned(0o644)})
	}
	unitFile(r.HBBSUnit, HBBS(spec))
	unitFile(r.HBBRUnit, HBBR(spec))
	for _, u := range []string{r.HBBSUnit, r.HBBRUnit} {
		// The link `systemctl --root DIR enable` makes: absolute, as seen from inside the root.
		p.Add(&plan.Symlink{Path: Under(root, path.Join(WantsDir, u)), LinkTarget: path.Join(UnitDir, u)})
	}
	if o.CreateUser == nil {
		p.Add(sysusers)
	}
	recStep, err := deploy.RecordStep(o.RecordPath, &rec)
	if err != nil {
		return nil, nil, err
	}
	p.Add(recStep)
	return &p, ensure, nil
}
