package compose

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/safefs"
)

// UpgradeOptions says which stack to move to which image.
type UpgradeOptions struct {
	// Spec is the stack as recorded; its Image is the one to roll back to.
	Spec Spec
	// Image is the image to switch to.
	Image deploy.ImageRef
	// Pull allows pulling Image when it is not present locally; a local
	// image is always used as it is.
	Pull bool
	// Runtime waits for the recreated stack (its Project, File, Ready and
	// Timeout are used; Project and File must match Spec).
	Runtime *Runtime
	// Verify checks, after the switch, that the server still serves the
	// live key; nil skips it.
	Verify func(ctx context.Context) error
	// Hook, if set, is called at each step ("written", "recreated",
	// "verified"), for fault-injection tests.
	Hook func(point string)
}

// UpgradeResult says what Upgrade did.
type UpgradeResult struct {
	OldImage   string `json:"old_image"`
	NewImage   string `json:"new_image"`
	NewImageID string `json:"new_image_id,omitempty"`
	Pulled     bool   `json:"pulled"`
	// Unchanged: the file already named the image and the containers ran
	// it; nothing was recreated.
	Unchanged bool `json:"unchanged"`
	Verified  bool `json:"verified"`
	// MountTarget is where the data directory is mounted with the new
	// image (it changes between the classic and the s6 image).
	MountTarget string `json:"mount_target"`
	// Spec is the stack after the upgrade, for the deployment record.
	Spec Spec `json:"-"`
}

// UpgradeRolledBackError reports an upgrade that failed after the switch
// and was rolled back to the previous compose file and image.
type UpgradeRolledBackError struct {
	Cause error
	// Image is the image the stack was rolled back to.
	Image string
	// RestoreErr is why the rollback itself failed, or nil.
	RestoreErr error
}

func (e *UpgradeRolledBackError) Error() string {
	if e.RestoreErr != nil {
		return fmt.Sprintf("upgrade failed (%v) and rolling back to %s failed too: %v", e.Cause, e.Image, e.RestoreErr)
	}
	return fmt.Sprintf("upgrade failed and was rolled back: %s runs again: %v", e.Image, e.Cause)
}
func (e *UpgradeRolledBackError) Unwrap() error { return e.Cause }

// Upgrade switches the stack to a new image, keeping its data directory
// (and so its keys):
//
//  1. make sure the image is present (a local one is used as it is; a
//     missing one is pulled when allowed) — nothing changes if not;
//  2. render the compose file for it and write it atomically;
//  3. `docker compose up -d` recreates the containers on the new image;
//  4. wait until both run and hbbs answers, then Verify the key;
//  5. on any failure after step 2, write the recorded stack's file back,
//     recreate again, wait, and return an [*UpgradeRolledBackError].
//
// A run whose file already names the image and whose containers run it
// changes nothing (it still verifies).
func Upgrade(ctx context.Context, o UpgradeOptions) (*UpgradeResult, error) {
	next := o.Spec
	next.Image = o.Image
	res := &UpgradeResult{OldImage: string(o.Spec.Image), NewImage: string(o.Image), MountTarget: next.MountTarget(), Spec: next}
	hook := func(p string) {
		if o.Hook != nil {
			o.Hook(p)
		}
	}
	connect := o.Runtime.Connect
	if connect == nil {
		connect = Connect
	}
	e, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if res.NewImageID, res.Pulled, err = e.EnsureImage(ctx, string(o.Image), o.Pull); err != nil {
		return nil, err
	}
	data, err := Render(ctx, next)
	if err != nil {
		return nil, err
	}
	// The rollback target is the recorded stack, rendered: the record is
	// what rdctl knows ran and served (the file may already name the new
	// image, after a crash of an earlier upgrade).
	old, err := Render(ctx, o.Spec)
	if err != nil {
		return nil, err
	}
	file := o.Spec.File()
	cur, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if string(cur) == string(data) {
		if st, err := e.Inspect(ctx, o.Spec.Project); err == nil && st.Running() && runsImage(st, res.NewImageID) {
			res.Unchanged = true
			return res, verify(ctx, o, res)
		}
	}

	if _, err := safefs.WriteFile(file, data, safefs.CallerOwned(0o644)); err != nil {
		return nil, err
	}
	hook("written")
	err = recreate(ctx, o.Runtime, file, o.Spec.Project)
	if err == nil {
		hook("recreated")
		err = verify(ctx, o, res)
	}
	if err == nil {
		hook("verified")
		return res, nil
	}
	// Roll back: the previous file, recreated, serving again.
	ctx = context.WithoutCancel(ctx)
	rb := &UpgradeRolledBackError{Cause: err, Image: string(o.Spec.Image)}
	if _, werr := safefs.WriteFile(file, old, safefs.CallerOwned(0o644)); werr != nil {
		rb.RestoreErr = werr
		return res, rb
	}
	rb.RestoreErr = recreate(ctx, o.Runtime, file, o.Spec.Project)
	return res, rb
}

// recreate runs `docker compose up -d` and waits until the stack serves.
func recreate(ctx context.Context, rt *Runtime, file, project string) error {
	if _, err := rt.CLI.Up(ctx, file, project, false); err != nil {
		return err
	}
	return rt.WaitServing(ctx)
}

func verify(ctx context.Context, o UpgradeOptions, res *UpgradeResult) error {
	if o.Verify == nil {
		return nil
	}
	if err := o.Verify(ctx); err != nil {
		return fmt.Errorf("verifying the key: %w", err)
	}
	res.Verified = true
	return nil
}

// runsImage reports whether every container of st runs image id.
func runsImage(st *StackStatus, id string) bool {
	for _, s := range st.Services {
		if s.ImageID != id {
			return false
		}
	}
	return true
}
