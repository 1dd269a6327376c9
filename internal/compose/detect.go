package compose

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rdctl/rdctl/internal/adopt"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/serverargs"
)

// Detected is a running compose project that runs RustDesk's server: what
// `rdctl adopt` needs to record it, and what is wrong with it.
type Detected struct {
	Project string `json:"project"`
	// ProjectDir and ConfigFiles are what Compose recorded in its labels.
	ProjectDir  string   `json:"project_dir,omitempty"`
	ConfigFiles []string `json:"config_files,omitempty"`
	// Image is the image hbbs runs, as configured.
	Image string `json:"image"`
	// Network is hbbs's network mode ("host", "bridge", "<project>_default").
	Network string `json:"network"`
	// Relay is what hbbs advertises (-r, or RELAY for the s6 image), if set.
	Relay string `json:"relay,omitempty"`
	// HBBSKey and HBBRKey are the -k values ("" when not given; hbbs then
	// defaults to "-", which enforces its key, and hbbr checks none).
	HBBSKey string `json:"hbbs_key,omitempty"`
	HBBRKey string `json:"hbbr_key,omitempty"`
	// WorkingDir is hbbs's working directory in the container: where it
	// reads and writes id_ed25519.
	WorkingDir string `json:"working_dir"`
	// DataDir is the host directory that holds hbbs's working directory
	// (the source of the mount covering it), or "" when the keys are in
	// the container layer. MountTarget is that mount's destination.
	DataDir     string `json:"data_dir,omitempty"`
	MountTarget string `json:"mount_target,omitempty"`
	// KeysPresent reports an id_ed25519 in DataDir.
	KeysPresent bool `json:"keys_present"`
	// Services are the project's containers that run hbbs or hbbr.
	Services []ServiceStatus `json:"services"`
	// Warnings say what puts the keys at risk, one finding each, typed
	// where they are detected (see warnings).
	Warnings []adopt.Finding `json:"warnings,omitempty"`
}

// Detect connects to the engine and finds running compose projects that
// use a RustDesk server image or run hbbs/hbbr.
func Detect(ctx context.Context) ([]Detected, error) {
	e, err := Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Detect(ctx)
}

// Detect finds running compose projects that use a RustDesk server image
// (rustdesk-server or rustdesk-server-s6, any registry) or whose
// containers run hbbs or hbbr, sorted by project name.
func (e *Engine) Detect(ctx context.Context) ([]Detected, error) {
	f := client.Filters{}
	f.Add("label", LabelProject)
	res, err := e.c.ContainerList(ctx, client.ContainerListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing compose containers: %w", err)
	}
	byProject := map[string]*Detected{}
	for _, c := range res.Items {
		if strings.EqualFold(c.Labels[LabelOneOff], "true") {
			continue
		}
		ins, err := e.inspect(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		st := statusOf(ins)
		runs := servers(st.Image, st.Command)
		if len(runs) == 0 {
			continue
		}
		proj := c.Labels[LabelProject]
		d := byProject[proj]
		if d == nil {
			d = &Detected{Project: proj, ProjectDir: c.Labels[LabelWorkingDir]}
			if files := c.Labels[LabelConfigFiles]; files != "" {
				d.ConfigFiles = strings.Split(files, ",")
			}
			byProject[proj] = d
		}
		d.Services = append(d.Services, st)
		args := st.Command
		if IsS6Image(st.Image) {
			// The s6 image's services take their settings from the
			// environment (RELAY; ENCRYPTED_ONLY=1 adds -k _).
			args = s6Args(envOf(ins))
		}
		for _, srv := range runs {
			opts := serverargs.Parse(args)
			switch srv {
			case "hbbs":
				d.Image, d.Network, d.WorkingDir = st.Image, st.NetworkMode, st.WorkingDir
				d.Relay, _ = opts.Relay()
				d.HBBSKey, _ = opts.Key()
				if st.KeyMount != nil {
					d.DataDir, d.MountTarget = st.KeyDir, st.KeyMount.Destination
				}
			case "hbbr":
				d.HBBRKey, _ = opts.Key()
			}
		}
	}
	var out []Detected
	for _, d := range byProject {
		if d.Image == "" {
			// hbbr alone: report it with what it has.
			d.Image, d.Network, d.WorkingDir = d.Services[0].Image, d.Services[0].NetworkMode, d.Services[0].WorkingDir
			if s := d.Services[0]; s.KeyMount != nil {
				d.DataDir, d.MountTarget = s.KeyDir, s.KeyMount.Destination
			}
		}
		if d.DataDir != "" {
			if fi, err := os.Lstat(path.Join(d.DataDir, keys.SecretFile)); err == nil && fi.Mode().IsRegular() {
				d.KeysPresent = true
			}
		}
		d.Warnings = warnings(d)
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Project < out[j].Project })
	return out, nil
}

// servers says which RustDesk servers a container runs: the s6 image runs
// both; otherwise the command's program (hbbs or hbbr, by base name). A
// rustdesk image running something else runs none.
func servers(image string, command []string) []string {
	if IsS6Image(image) && (len(command) == 0 || path.Base(command[0]) == "init") {
		return []string{"hbbr", "hbbs"}
	}
	if len(command) == 0 {
		return nil
	}
	switch b := path.Base(command[0]); b {
	case "hbbs", "hbbr":
		return []string{b}
	}
	return nil
}

// s6Args renders the s6 image's environment as the arguments its run
// scripts give hbbs (the image's s6-rc.d/hbbs/run).
func s6Args(env []string) []string {
	relay := "relay.example.com" // the image's ENV default
	encrypted := false
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "RELAY":
			relay = v
		case "ENCRYPTED_ONLY":
			encrypted = v == "1"
		}
	}
	args := []string{"hbbs", "-r", relay}
	if encrypted {
		args = append(args, "-k", "_")
	}
	return args
}

// warnings are the risks in d, in rdctl's message grammar (lower case, no
// trailing period): keys in the container layer (an error: a recreated
// container serves a new key), hbbr checking a key from another directory
// than hbbs's, and no key where the keys should be.
func warnings(d *Detected) []adopt.Finding {
	var w []adopt.Finding
	if d.DataDir == "" {
		lost := fmt.Sprintf("hbbs keeps its keys in %s, which is not on a volume: they are in the container layer and a new key is made whenever the container is recreated", d.WorkingDir)
		for _, s := range d.Services {
			for _, m := range s.Mounts {
				if m.Destination == S6Workdir && d.WorkingDir == ClassicWorkdir {
					lost = fmt.Sprintf("the data is mounted at %s (%s:%s) but the classic image works in %s: the keys are in the container layer and a new key is made whenever the container is recreated; mount the directory at %s (./data:%s)",
						S6Workdir, m.Source, m.Destination, ClassicWorkdir, ClassicWorkdir, ClassicWorkdir)
				}
			}
		}
		w = append(w, adopt.Finding{ID: adopt.FindingKeysInContainerLayer, Severity: adopt.SeverityError, Message: lost})
	}
	var hbbsDir, hbbrDir string
	for _, s := range d.Services {
		switch path.Base(firstOr(s.Command)) {
		case "hbbs":
			hbbsDir = s.KeyDir
		case "hbbr":
			hbbrDir = s.KeyDir
		}
	}
	if d.HBBRKey != "" && hbbsDir != "" && hbbrDir != "" && hbbsDir != hbbrDir {
		w = append(w, adopt.Finding{ID: adopt.FindingSplitWorkingDirs, Severity: adopt.SeverityWarning,
			Message: fmt.Sprintf("hbbr checks a key (-k %s) from %s but hbbs uses %s: after a rotation they disagree", d.HBBRKey, hbbrDir, hbbsDir)})
	}
	if d.DataDir != "" && !d.KeysPresent {
		w = append(w, adopt.Finding{ID: adopt.FindingNoSecretKey, Severity: adopt.SeverityWarning,
			Message: fmt.Sprintf("no %s in %s", keys.SecretFile, d.DataDir)})
	}
	return w
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func envOf(c container.InspectResponse) []string {
	if c.Config == nil {
		return nil
	}
	return c.Config.Env
}
