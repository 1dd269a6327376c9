package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/exporter"
	"github.com/rdctl/rdctl/internal/fleet"
	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/plan"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/safefs"
	"github.com/rdctl/rdctl/internal/textsafe"
)

func checkCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "check",
		Usage:       "probe servers' ports with the real protocol and check their key",
		ArgsUsage:   "[TARGET...]",
		Description: helpText("check"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "targets-file", Usage: "read targets from `FILE`, one per line"},
			&cli.StringFlag{Name: "key", Usage: "the expected public `KEY` (default: from the deployment record)"},
			&cli.BoolFlag{Name: "strict", Usage: "also present a wrong key, to tell match from unenforced"},
			&cli.DurationFlag{Name: "timeout", Usage: "bound each probe by `D`", Value: probe.DefaultTimeout},
			&cli.IntFlag{Name: "concurrency", Usage: "run at most `N` probes at once", Value: probe.DefaultConcurrency},
			&cli.StringFlag{Name: "ports", Usage: "run only the probes in `LIST` (comma separated names, see above)"},
			&cli.DurationFlag{Name: "deadline", Usage: "bound the whole check by `D`; 0 bounds each probe only"},
			&cli.BoolFlag{Name: "tailnet", Usage: "check every target through the local tailscaled (automatic for tailnet IPs and MagicDNS names)"},
			&cli.BoolFlag{Name: "ws-only", Usage: "for ws:// and wss:// targets, probe only through the proxy, not the direct ports"},
			&cli.StringFlag{Name: "ca-file", Usage: "also trust the CA certificates in `FILE` (PEM) for wss:// targets"},
			&cli.StringSliceFlag{Name: "resolve", Usage: "probe `HOST:ADDR` (or curl's HOST:PORT:ADDR) at ADDR, sending the name in SNI and Host; repeatable"},
			&cli.StringSliceFlag{Name: "relay", Usage: "probe the relays `HOST[:PORT],...` (as hbbs -r names them; repeatable) for every target (default: the record's, for the record's target)"},
			&cli.BoolFlag{Name: "first-address", Usage: "probe only the first address a target's name resolves to (default: every A and AAAA record)"},
			&cli.StringFlag{Name: "dns-server", Usage: "resolve names by asking the DNS server at `ADDR` (IP[:PORT], port 53 implied) instead of the system's resolver"},
			&cli.StringFlag{Name: "prometheus", Usage: "also write the results as Prometheus metrics to `FILE` (*.prom, atomically, for node_exporter's textfile collector)"},
			&cli.StringFlag{Name: "push-url", Usage: "also push the verdict to the Uptime Kuma push monitor at `URL` (status up or down, the failures, the time)"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			return runCheck(ctx, e, checkArgs{
				targets:     cmd.Args().Slice(),
				targetsFile: cmd.String("targets-file"),
				key:         cmd.String("key"),
				keySet:      cmd.IsSet("key"),
				strict:      cmd.Bool("strict"),
				timeout:     cmd.Duration("timeout"),
				concurrency: cmd.Int("concurrency"),
				ports:       cmd.String("ports"),
				portsSet:    cmd.IsSet("ports"),
				deadline:    cmd.Duration("deadline"),
				tailnet:     cmd.Bool("tailnet"),
				tsSocket:    e.tsSocket,
				proxy:       proxyFlags{wsOnly: cmd.Bool("ws-only"), caFile: cmd.String("ca-file"), resolve: cmd.StringSlice("resolve")},
				relays:      cmd.StringSlice("relay"),
				firstAddr:   cmd.Bool("first-address"),
				dnsServer:   cmd.String("dns-server"),
				prometheus:  cmd.String("prometheus"),
				pushURL:     cmd.String("push-url"),
			})
		},
	}
}

type checkArgs struct {
	targets     []string
	targetsFile string
	key         string
	keySet      bool
	strict      bool
	timeout     time.Duration
	concurrency int
	ports       string
	portsSet    bool
	deadline    time.Duration
	tailnet     bool
	tsSocket    string
	proxy       proxyFlags
	relays      []string
	firstAddr   bool
	dnsServer   string
	prometheus  string
	pushURL     string
}

// maxConcurrency keeps --concurrency below what file descriptor limits
// allow (a relay probe holds two sockets).
const maxConcurrency = 4096

// The check --json contract (README.md, "JSON contracts"): more fields
// may be added, none renamed. error is always present ("" when ok).
type checkJSON struct {
	OK        bool              `json:"ok"`
	Targets   []checkTargetJSON `json:"targets"`
	ElapsedMS float64           `json:"elapsed_ms"`
	WSOnly    bool              `json:"ws_only,omitempty"`
}

type checkTargetJSON struct {
	Target    string           `json:"target"`
	Address   string           `json:"address"`
	Via       string           `json:"via"`
	OK        bool             `json:"ok"`
	KeyStatus string           `json:"key_status"`
	Probes    []checkProbeJSON `json:"probes"`
	Tailnet   *tailnetJSON     `json:"tailnet,omitempty"`
}

type checkProbeJSON struct {
	Name  string  `json:"name"`
	Proto string  `json:"proto"`
	Port  int     `json:"port"`
	OK    bool    `json:"ok"`
	MS    float64 `json:"ms"`
	Error string  `json:"error"`
	Note  string  `json:"note,omitempty"`
	// Proxied targets' probes (check_proxy.go).
	Warning string `json:"warning,omitempty"`
	Cause   string `json:"cause,omitempty"`
	Hint    string `json:"hint,omitempty"`
	// Relay is the relay (host:port) a relay probe ran against when the
	// target has several; the name then reads relay[HOST:PORT].
	Relay string `json:"relay,omitempty"`
}

// probeJSON is one probe's result as reported. Its error and note may
// carry text a server sent: escaped, so it cannot drive the terminal.
func probeJSON(r *probe.TargetResult, p probe.Result) checkProbeJSON {
	return checkProbeJSON{Name: r.ProbeLabel(p), Proto: p.Proto, Port: p.Port, OK: p.OK,
		MS: millis(p.Duration), Error: textsafe.Escape(p.Error), Note: textsafe.Escape(p.Note), Relay: r.RelayOf(p),
		Warning: textsafe.Escape(p.Warning), Cause: string(p.Cause)}
}

func millis(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

func runCheck(ctx context.Context, e *env, a checkArgs) error {
	// --deadline bounds the whole command, from here to the last byte of
	// output, not only the probes.
	began := time.Now()
	opts := probe.Options{Strict: a.strict, Timeout: a.timeout, Concurrency: a.concurrency, Deadline: a.deadline, FirstAddress: a.firstAddr}
	switch {
	case a.timeout <= 0:
		return usageErrorf("--timeout must be positive")
	case a.concurrency < 1 || a.concurrency > maxConcurrency:
		return usageErrorf("--concurrency must be 1–%d", maxConcurrency)
	case a.deadline < 0:
		return usageErrorf("--deadline must not be negative")
	}
	if a.portsSet {
		ns, err := probe.ParseNames(a.ports)
		if err != nil {
			return usageErrorf("--ports: %v", err)
		}
		opts.Probes = ns
	}
	if a.prometheus != "" {
		if err := checkPrometheusFile(a.prometheus); err != nil {
			return err
		}
	}
	var push *url.URL
	if a.pushURL != "" {
		var err error
		if push, err = exporter.ParsePushURL(a.pushURL); err != nil {
			return withHints(usageErrorf("--push-url: %v", err),
				"give the push URL of an Uptime Kuma push monitor, as its page shows it: rdctl check --push-url 'https://kuma.example.com/api/push/TOKEN?status=up&msg=OK&ping=' HOST")
		}
	}
	targets, err := parseTargets(a.targets, a.targetsFile)
	if err != nil {
		return err
	}
	if err := a.proxy.apply(e, &opts); err != nil {
		return err
	}
	if a.dnsServer != "" {
		addr, err := parseDNSServer(a.dnsServer)
		if err != nil {
			return err
		}
		opts.Resolver = probe.ResolverAt(addr)
	}
	var relays []deploy.HostPort
	if len(a.relays) > 0 {
		if relays, err = deploy.ParseRelays("--relay", a.relays...); err != nil {
			return err
		}
		for i := range targets {
			if err := fleet.WithRelays(&targets[i], relays); err != nil {
				return usageErrorf("target %s: %v", targets[i], err)
			}
		}
	}
	if a.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, began.Add(a.deadline))
		defer cancel()
	}
	if a.keySet {
		var pub ed25519.PublicKey
		if opts.Key, pub, err = keys.ParsePublicArg("--key", a.key); err != nil {
			return err
		}
		if rec, err := e.loadRecord(); err == nil {
			if err := e.refuseSeedAsKey("--key", rec, pub); err != nil {
				return err
			}
		}
	}

	// The record gives the default target and the expected key.
	var keySource string
	if a.keySet {
		keySource = "--key"
	}
	if len(targets) == 0 || !a.keySet {
		rec, err := e.loadRecord()
		switch {
		case errors.Is(err, deploy.ErrNoRecord) && len(targets) > 0:
			e.warnf("no expected key (no --key and no deployment record): key_status can only be unenforced or unknown")
		case errors.Is(err, deploy.ErrNoRecord):
			return withHints(usageErrorf("no target given and no deployment record to take one from"),
				"name one: rdctl check HOST[:PORT] --key PUBLIC_KEY")
		case err != nil:
			return err
		default:
			if len(targets) == 0 {
				t, err := fleet.RecordTarget(rec)
				if err != nil {
					return err
				}
				if relays != nil {
					if err := fleet.WithRelays(&t, relays); err != nil {
						return usageErrorf("target %s: %v", t, err)
					}
				}
				targets = []probe.Target{t}
			}
			if !a.keySet {
				if opts.Key, keySource, err = e.recordKey(rec); err != nil {
					return err
				}
			}
		}
	}

	if err := a.proxy.validate(e, targets, opts.Probes); err != nil {
		return err
	}
	tailnets, err := e.routeOverTailnet(ctx, targets, a.tailnet, a.tsSocket, a.timeout)
	if err != nil {
		return err
	}

	tuneGCForCheck()
	if a.deadline > 0 {
		// The probes stop early enough to leave the output its time.
		opts.Deadline = max(time.Until(began.Add(a.deadline))-renderReserve(len(targets)), time.Millisecond)
	}
	start := time.Now()
	results, err := probe.Check(ctx, targets, opts)
	if err != nil {
		return usageErrorf("%v", err)
	}
	elapsed := time.Since(start)

	failed, mismatched, probesOK, probesAll := 0, 0, 0, 0
	deadAddr, deadRelay := "", false
	out := checkJSON{OK: true, Targets: make([]checkTargetJSON, 0, len(results)), ElapsedMS: millis(elapsed), WSOnly: opts.WSOnly}
	ti := -1 // the target results[i] checks: a name gives one result per address
	for i := range results {
		r := &results[i]
		if i == 0 || r.Target.Name != results[i-1].Target.Name || r.Target.Host != results[i-1].Target.Host {
			ti++
		}
		t := checkTargetJSON{Target: textsafe.Escape(r.Target.String()), Address: r.Address, Via: r.Via, OK: r.OK, KeyStatus: string(r.KeyStatus),
			Probes: make([]checkProbeJSON, 0, len(r.Probes))}
		for _, p := range r.Probes {
			t.Probes = append(t.Probes, probeJSON(r, p))
			t.Probes[len(t.Probes)-1].Hint = proxyHint(p.Cause, r.Target)
			probesAll++
			if p.OK {
				probesOK++
			} else if r.RelayOf(p) != "" {
				deadRelay = true
			}
		}
		if !r.OK && deadAddr == "" && addressOfMany(results, i) {
			deadAddr = r.Address
		}
		if info := tailnets[ti]; info != nil {
			tailnetNote(info, t.Probes)
			// Names and errors a tailnet peer or tailscaled reported.
			for _, f := range []*string{&info.Peer, &info.DNSName, &info.Endpoint, &info.DERPRegion, &info.Error, &info.Note} {
				*f = textsafe.Escape(*f)
			}
			t.Tailnet = info
		}
		if !r.OK {
			failed++
			out.OK = false
		}
		if r.KeyStatus == probe.KeyMismatch {
			mismatched++
		}
		out.Targets = append(out.Targets, t)
	}

	if a.prometheus != "" {
		if err := writePrometheusFile(e, a.prometheus, results); err != nil {
			return err
		}
	}
	var pushed string // the status pushed, or that would be
	var pushErr error
	if push != nil {
		pushed, pushErr = e.pushKuma(ctx, push, results)
	}
	if e.json {
		if err := writeCheckJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		printCheck(e, out, opts.Key, keySource)
		printProxyNotes(e, out)
		e.printf("\n%d of %d targets ok; %d of %d probes passed", len(results)-failed, len(results), probesOK, probesAll)
		if mismatched > 0 {
			e.printf("; %d key mismatch", mismatched)
		}
		e.printf(" (%s)\n", elapsed.Round(time.Millisecond))
	}
	if push != nil && !e.json && pushErr == nil {
		verb := "pushed"
		if e.dryRun {
			verb = "would push"
		}
		e.printf("%s status=%s to Uptime Kuma at %s\n", verb, pushed, push.Host)
	}
	if pushErr != nil {
		return withHints(fmt.Errorf("pushing to Uptime Kuma at %s: %w", push.Host, pushErr),
			"check the monitor is a push monitor and active, and that this host reaches it: curl -fsS 'PUSH_URL'")
	}
	if out.OK {
		return nil
	}
	if !e.json {
		fmt.Fprintf(e.stderr, "rdctl: error: %d of %d targets failed the check\n", failed, len(results))
		if mismatched > 0 {
			e.hintf("a server with another key makes clients report \"Key mismatch\"; see the key it should serve: rdctl key show")
		}
		printProxyHints(e, out)
		if deadAddr != "" {
			e.hintf("%s does not reach the server, but clients pick any address of the name (an AAAA record that does not reach hbbs breaks hole punching): fix its route or remove the DNS record, then rdctl check again", deadAddr)
		}
		if deadRelay {
			e.hintf("hbbs hands its relays out in turn with no health check, so a dead relay breaks every relayed session it is given: fix it or take it out of -r (rdctl install … --relay LIST)")
		}
	}
	return &checkFailedError{}
}

func printCheck(e *env, out checkJSON, key, keySource string) {
	if e.quiet {
		return
	}
	switch {
	case key == "":
		e.printf("expected key: none given\n")
	default:
		e.printf("expected key: %s (%s)\n", key, keySource)
	}
	for _, t := range out.Targets {
		verdict := "ok"
		if !t.OK {
			verdict = "FAIL"
		}
		e.printf("\n%s  %s  key %s  (%s, %s)\n", t.Target, verdict, t.KeyStatus, t.Address, t.Via)
		if tn := t.Tailnet; tn != nil {
			switch {
			case tn.Error != "":
				e.printf("  tailnet peer %s: %s\n", tn.Peer, tn.Error)
			default:
				e.printf("  tailnet peer %s online=%v path=%s latency=%.1fms %s%s\n", tn.Peer, tn.Online, tn.Path, tn.LatencyMS, tn.Endpoint, tn.DERPRegion)
			}
			if tn.Note != "" {
				e.printf("  note: %s\n", tn.Note)
			}
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PROBE\tPROTO\tPORT\tRESULT\tMS\tDETAIL")
		for _, p := range t.Probes {
			res, detail := "ok", p.Note
			if !p.OK {
				res, detail = "FAIL", p.Error
			} else if p.Warning != "" {
				res, detail = "WARN", p.Warning
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%.2f\t%s\n", p.Name, p.Proto, p.Port, res, p.MS, detail)
		}
		tw.Flush()
	}
}

// addressOfMany reports whether results[i] is one of several addresses
// of one name, at least one of which passed.
func addressOfMany(results []probe.TargetResult, i int) bool {
	same := func(j int) bool {
		return results[j].Target.Name == results[i].Target.Name && results[j].Target.Host == results[i].Target.Host
	}
	for j := i - 1; j >= 0 && same(j); j-- {
		if results[j].OK {
			return true
		}
	}
	for j := i + 1; j < len(results) && same(j); j++ {
		if results[j].OK {
			return true
		}
	}
	return false
}

// parseDNSServer validates --dns-server: an IP literal with an optional
// port (53 implied), returned as host:port.
func parseDNSServer(s string) (string, error) {
	hp, err := deploy.ParseHostPort("--dns-server", s)
	if err != nil {
		return "", err
	}
	if !hp.Host.IsIP() {
		return "", &deploy.InputError{Field: "--dns-server", Value: s, Reason: "must be an IP address (a name would need a resolver to find it)"}
	}
	return hp.WithDefaultPort(53).String(), nil
}

// parseTargets is fleet.Parse with rdctl's exit codes: every refusal of
// the targets is bad input (exit 2), with a hint where one helps.
func parseTargets(args []string, file string) ([]probe.Target, error) {
	ts, err := fleet.Parse(args, file)
	var (
		tooMany *fleet.TooManyError
		target  *fleet.TargetError
		inFile  *fleet.FileError
	)
	switch {
	case err == nil:
		return ts, nil
	case errors.As(err, &tooMany):
		return nil, withHints(&usageError{msg: err.Error()},
			fmt.Sprintf("split them into several checks of at most %d", tooMany.Max))
	case errors.As(err, &target), errors.As(err, &inFile):
		return nil, &usageError{msg: err.Error()}
	}
	return nil, err
}

// writeCheckJSON writes out exactly as writeJSON does, a target at a time:
// encoding/json buffers a whole value before writing it, and 100,000
// targets are 130 MB of JSON, which doubled the check's peak memory and
// kept the collector busy for seconds past --deadline.
func writeCheckJSON(w io.Writer, out checkJSON) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "{\n  \"ok\": %t,\n  \"targets\": [", out.OK)
	for i, t := range out.Targets {
		if i > 0 {
			bw.WriteString(",")
		}
		b, err := json.MarshalIndent(t, "    ", "  ")
		if err != nil {
			return err
		}
		bw.WriteString("\n    ")
		bw.Write(b)
	}
	if len(out.Targets) > 0 {
		bw.WriteString("\n  ")
	}
	ms, err := json.Marshal(out.ElapsedMS)
	if err != nil {
		return err
	}
	fmt.Fprintf(bw, "],\n  \"elapsed_ms\": %s", ms)
	if out.WSOnly {
		bw.WriteString(",\n  \"ws_only\": true")
	}
	bw.WriteString("\n}\n")
	return bw.Flush()
}

// checkPrometheusFile checks --prometheus before anything is probed: a
// *.prom name (node_exporter's textfile collector reads only those) in a
// directory that exists.
func checkPrometheusFile(path string) error {
	if err := refuseKeyPath("--prometheus", path); err != nil {
		return err
	}
	name := filepath.Base(path)
	if !strings.HasSuffix(name, ".prom") || name == ".prom" || strings.HasSuffix(path, "/") {
		return withHints(usageErrorf("--prometheus %s: the file name must end in .prom", textsafe.Echo(path)),
			"node_exporter's textfile collector reads only *.prom: rdctl check --prometheus /var/lib/prometheus/node-exporter/rustdesk.prom")
	}
	d, err := safefs.OpenDir(filepath.Dir(path))
	if err != nil {
		return usageErrorf("--prometheus: %v", err)
	}
	return d.Close()
}

// writePrometheusFile writes the results' metrics, with target and address
// labels, as a one-step plan: atomically (a temporary file renamed over
// path), so the collector never reads half a file, and with --dry-run only
// reported.
func writePrometheusFile(e *env, path string, results []probe.TargetResult) error {
	reports := make([]exporter.Report, len(results))
	for i, r := range results {
		// The probes of a target run at the same time: its check took
		// as long as its slowest probe.
		var took time.Duration
		for _, p := range r.Probes {
			took = max(took, p.Duration)
		}
		reports[i] = exporter.Report{Result: r, Duration: took}
	}
	var buf bytes.Buffer
	if err := exporter.Render(&buf, reports, true); err != nil {
		return err
	}
	p := &plan.Plan{}
	p.Add(&plan.WriteFile{Path: path, Data: buf.Bytes(), Options: safefs.CallerOwned(0o644)})
	r, err := e.executeLocal(p)
	if !e.json {
		e.printReport(r)
	}
	return err
}

// renderReserve is the time the output of n targets is given when
// --deadline bounds the run: the probes stop that much earlier. Rendering
// 100,000 targets as JSON (130 MB) takes about 1.5 s of CPU; the reserve
// is 2 s for them, since a loaded machine gives the process less than a
// core (scripts/bench-fleet-deadline).
func renderReserve(n int) time.Duration {
	return 20*time.Millisecond + time.Duration(n)*20*time.Microsecond
}

// recordKey is the public key hbbs serves: derived from id_ed25519 in the
// record's working directory, else id_ed25519.pub with a warning.
func (e *env) recordKey(rec *deploy.Record) (key, source string, err error) {
	dir := e.under(rec.WorkingDir)
	st, err := inspectDir(dir)
	if err != nil {
		return "", "", withHints(fmt.Errorf("reading the expected key in %q: %w", dir, err),
			"run as root, or pass the public key: rdctl check --key PUBLIC_KEY")
	}
	switch {
	case st.Valid:
		return st.Pair.PublicBase64(), keys.SecretFile + " in " + dir, nil
	case st.PubKey != "":
		if st.SecretPresent {
			e.warnf("%s in %q is not usable (%s); expecting the key in %s", keys.SecretFile, dir, st.SecretProblem(), keys.PublicFile)
		}
		return st.PubKey, keys.PublicFile + " in " + dir, nil
	}
	return "", "", withHints(fmt.Errorf("no usable key in %q to compare with", dir),
		"rdctl key verify --dir "+dir, "or pass the public key: rdctl check --key PUBLIC_KEY")
}

// checkGCPercent and checkMemoryLimit tune the garbage collector for a
// check, unless GOGC or GOMEMLIMIT say otherwise. A check allocates a
// little per connection and keeps little (its results), so the default
// (collect each time the heap doubles) runs the collector often for
// nothing: at 400 a 1,000-target check takes about 7% less CPU
// (scripts/bench-check) and peaks near 40 MB. The limit brings the
// default pacing back before a very large check's heap passes it.
const (
	checkGCPercent   = 400
	checkMemoryLimit = 256 << 20
)

func tuneGCForCheck() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(checkGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(checkMemoryLimit)
	}
}

// pushTimeout bounds an Uptime Kuma push (outside --deadline, which
// bounds the check).
const pushTimeout = 10 * time.Second

// pushKuma sends the check's verdict to an Uptime Kuma push monitor
// (with --dry-run, only works it out) and returns the status it pushed.
// The URL's path and query hold the monitor's token, so messages name
// only its host.
func (e *env) pushKuma(ctx context.Context, u *url.URL, results []probe.TargetResult) (status string, err error) {
	p := exporter.NewKumaPush(results)
	if e.dryRun {
		return p.Status(), nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
	defer cancel()
	return p.Status(), p.Push(ctx, exporter.KumaClient(), u)
}
