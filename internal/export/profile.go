package export

import (
	"fmt"
	"path"
	"path/filepath"

	"github.com/rdctl/rdctl/internal/deploy"
)

// Profile is one client population of a server reached by a public and a
// tailnet name. A RustDesk client takes exactly one ID server and does not
// try a list in order (a comma in custom-rendezvous-server is not split),
// so each population gets its own configuration.
type Profile string

const (
	// ProfilePublic: clients given the record's id_host.
	ProfilePublic Profile = "public"
	// ProfileTailnet: clients in the tailnet, given the record's
	// tailnet_host, with that host as their relay too.
	ProfileTailnet Profile = "tailnet"
	// ProfileAll is both, one tree each.
	ProfileAll = "all"
)

// ParseProfile reads --profile: public, tailnet, or all (both, in that
// order).
func ParseProfile(field, s string) ([]Profile, error) {
	switch s {
	case string(ProfilePublic):
		return []Profile{ProfilePublic}, nil
	case string(ProfileTailnet):
		return []Profile{ProfileTailnet}, nil
	case ProfileAll:
		return []Profile{ProfilePublic, ProfileTailnet}, nil
	}
	return nil, &deploy.InputError{Field: field, Value: s, Reason: "must be public, tailnet or all"}
}

// NoTailnetHostError: the tailnet profile of a record without a tailnet
// name.
type NoTailnetHostError struct{ RecordPath string }

func (e *NoTailnetHostError) Error() string {
	return fmt.Sprintf("the deployment record %s names no tailnet_host, so there is no tailnet profile", e.RecordPath)
}

// ForProfile is s as profile p's clients are given it. Public clients get
// the record's endpoints as they are. Tailnet clients get the tailnet name
// as ID server and, pinned in their own settings, as relay on 21117: the
// relay hbbs hands out is the public one, and a client's own relay-server
// comes first. Either way the config's README names the check that
// verifies it.
func (s Source) ForProfile(p Profile, recordPath string) (Source, error) {
	switch p {
	case ProfilePublic:
		s.Profile = p
		return s, nil
	case ProfileTailnet:
		if s.Tailnet.Host == "" {
			return s, &NoTailnetHostError{RecordPath: recordPath}
		}
		s.Profile = p
		s.ID = s.Tailnet
		s.Relay = deploy.HostPort{Host: s.Tailnet.Host, Port: deploy.RelayPort}
		s.ServerRelays = nil
		s.PinRelay = true
		return s, nil
	}
	return s, fmt.Errorf("export: unknown profile %q", p)
}

// ProfileConfig is one profile's configuration.
type ProfileConfig struct {
	Profile Profile
	Config  Config
}

// BuildProfiles renders the provisioning tree of each profile in
// dir/<profile>/ and plans their writes as one plan (everything rendered,
// and so checked, before any step exists).
func BuildProfiles(pcs []ProfileConfig, dir string) (Output, error) {
	var o Output
	for _, pc := range pcs {
		t, err := pc.Config.Tree(filepath.Join(dir, string(pc.Profile)))
		if err != nil {
			return Output{}, err
		}
		for _, f := range t.Files {
			f.Rel = path.Join(string(pc.Profile), f.Rel)
			o.Files = append(o.Files, f)
		}
		if t.LicensedOnly != "" {
			o.LicensedOnly = t.LicensedOnly
		}
	}
	steps, err := TreePlan(dir, o.Files)
	if err != nil {
		return Output{}, err
	}
	o.Steps = steps
	return o, nil
}
