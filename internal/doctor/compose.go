package doctor

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/rdctl/rdctl/internal/compose"
	"github.com/rdctl/rdctl/internal/keys"
)

// containerChecks judge a compose stack from the engine's view of its
// containers (Input.Containers): containers-running (every hbbs and hbbr
// container running, an error otherwise), containers-restarting (a restart
// by the restart policy is a warning: the server is crashing) and
// data-mounted (hbbs's working directory is exactly the target of a mount
// whose host directory is the recorded working directory and holds
// id_ed25519; anything else means the served key is not the one rdctl
// rotates, or is lost when the container is recreated).
func (in *Input) containerChecks(cs *checks) {
	rec := in.Record
	project := ""
	if rec.Compose != nil {
		project = rec.Compose.Project
	}
	if in.ContainersErr != nil || in.Containers == nil {
		err := in.ContainersErr
		if err == nil {
			err = fmt.Errorf("no state was read")
		}
		cs.fail("containers-running", SeverityError, "cannot ask the Docker engine about compose project %s: %v", project, err)
		cs.skip("containers-restarting", "the containers' state is unknown")
		cs.skip("data-mounted", "the containers' state is unknown")
		return
	}
	st := in.Containers
	var down, restarting []string
	for _, s := range st.Services {
		name := s.Service
		if s.Container != "" {
			name = s.Container
		}
		if !s.Running || s.Restarting {
			d := fmt.Sprintf("%s is %s", name, s.State)
			if s.State != "missing" && !s.Running {
				d += fmt.Sprintf(" (exit code %d)", s.ExitCode)
			}
			down = append(down, d)
		}
		if s.Restarts > 0 {
			restarting = append(restarting, fmt.Sprintf("%s restarted %d times", name, s.Restarts))
		}
	}
	logs := fmt.Sprintf("docker compose -p %s logs hbbs hbbr", project)
	switch {
	case len(down) > 0:
		cs.fail("containers-running", SeverityError, "%s; see why with: %s", strings.Join(down, ", "), logs)
	case len(st.Services) == 0:
		cs.fail("containers-running", SeverityError, "compose project %s has no hbbs or hbbr container", project)
	default:
		cs.ok("containers-running", "hbbs and hbbr are running (compose project %s)", project)
	}
	if len(restarting) > 0 {
		cs.fail("containers-restarting", SeverityWarning, "%s: it is crashing; see %s", strings.Join(restarting, ", "), logs)
	} else {
		cs.ok("containers-restarting", "no restarts")
	}
	in.dataMounted(cs, st)
	in.webSocketsPublished(cs, st)
}

// webSocketsPublished: behind a proxy (the record's [proxy] table), a
// container must not publish the WebSocket ports 21118 and 21119 on every
// address. Docker forwards published ports before the host firewall's
// input rules, so firewall --proxy cannot shut them, and anyone reaching
// them could forge X-Real-IP, which hbbs and hbbr trust.
func (in *Input) webSocketsPublished(cs *checks, st *compose.StackStatus) {
	rec := in.Record
	if rec.Proxy == nil {
		return
	}
	var open []string
	for _, s := range st.Services {
		for _, p := range s.Published {
			if (p.Port == "21118/tcp" || p.Port == "21119/tcp") && p.Everywhere() {
				open = append(open, fmt.Sprintf("%s publishes %s on every address", s.Service, p.Port))
			}
		}
	}
	if len(open) == 0 {
		cs.ok("proxy-ws-published", "no container publishes the WebSocket ports beyond loopback")
		return
	}
	cs.fail("proxy-ws-published", SeverityError, "%s, past the host firewall (Docker forwards published ports before its input rules): anyone can reach them and forge X-Real-IP; publish them on 127.0.0.1 only: %s",
		strings.Join(open, ", "), compose.InstallCommand(rec))
}

// dataMounted checks where hbbs keeps its keys: in the recorded working
// directory on the host, mounted over its working directory.
func (in *Input) dataMounted(cs *checks, st *compose.StackStatus) {
	rec := in.Record
	hbbs, ok := st.Service(compose.ServiceHBBS)
	switch {
	case !ok || hbbs.State == "missing":
		cs.skip("data-mounted", "there is no hbbs container to look at")
		return
	case hbbs.KeyMount == nil:
		cs.fail("data-mounted", SeverityError, "no mount covers hbbs's working directory %s: its keys are in the container layer and a new key is made whenever the container is recreated; mount %s at %s",
			hbbs.WorkingDir, rec.WorkingDir, hbbs.WorkingDir)
		return
	case path.Clean(hbbs.KeyMount.Destination) != path.Clean(hbbs.WorkingDir):
		cs.fail("data-mounted", SeverityError, "hbbs works in %s but the mount covering it is %s:%s: mount the data directory at %s itself",
			hbbs.WorkingDir, hbbs.KeyMount.Source, hbbs.KeyMount.Destination, hbbs.WorkingDir)
		return
	case path.Clean(hbbs.KeyDir) != path.Clean(rec.WorkingDir):
		cs.fail("data-mounted", SeverityError, "the record says the working directory is %s, but hbbs's %s is mounted from %s: rotate would change a key hbbs does not serve; re-record with: rdctl adopt --force",
			rec.WorkingDir, hbbs.WorkingDir, hbbs.KeyDir)
		return
	}
	// The host directory is read the way the key checks read it (under
	// Root, without following links).
	kst, err := inspect(in.under(hbbs.KeyDir))
	if err != nil || !kst.SecretPresent {
		cs.fail("data-mounted", SeverityError, "%s is mounted at %s but holds no %s: hbbs makes a new key when it next starts",
			hbbs.KeyDir, hbbs.WorkingDir, keys.SecretFile)
		return
	}
	cs.ok("data-mounted", "hbbs works in %s, mounted from %s, which holds %s", hbbs.WorkingDir, hbbs.KeyDir, filepath.Join(hbbs.KeyDir, keys.SecretFile))
}
