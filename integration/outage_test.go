//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rdctl/rdctl/internal/keys"
	"github.com/rdctl/rdctl/internal/rendezvous"
)

// The client-visible outage of a rotation: a client sends a punch-hole
// request carrying the NEW key every probeEvery to hbbs's TCP port while
// `rdctl rotate --commit` switches to it. Before the switch hbbs answers
// LICENSE_MISMATCH; after it, an empty PunchHoleResponse. The outage is the
// time from the last LICENSE_MISMATCH answer to the first accepting one;
// every probe in between fails (refused, reset, closed or unanswered).

const probeEvery = 2 * time.Millisecond

type verdict int

const (
	verdictFailed verdict = iota
	verdictOld            // LICENSE_MISMATCH: the old key is still served
	verdictNew            // accepted: the new key is served
)

type probeRecord struct {
	sent, done time.Time
	v          verdict
}

// outage is what one probe run saw.
type outage struct {
	gap    time.Duration // last old answer → first new answer
	failed int           // probes that got no verdict
	probes int
}

// probeLoop probes addr with newKey every probeEvery until stop is closed
// and a new answer was seen (or 30 s passed), and returns the outage.
// started is closed once an old answer was seen, so the switch starts
// with the loop in full swing. dialIn runs the loop: connections are
// opened by the calling goroutine (in the network namespace dialIn set
// up), then read by goroutines of their own so a hung connection does not
// hold the next probe back.
func probeLoop(dialIn func(func() error) error, addr, newKey string, started chan<- struct{}, stop <-chan struct{}) (outage, error) {
	var (
		mu      sync.Mutex
		records []probeRecord
		wg      sync.WaitGroup
	)
	add := func(r probeRecord) {
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	}
	seen := func(v verdict) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range records {
			if r.v == v {
				return true
			}
		}
		return false
	}
	req, err := rendezvous.AppendMessage(nil, &rendezvous.PunchHoleRequest{ID: "rdctl-outage-probe", LicenceKey: newKey})
	if err != nil {
		return outage{}, err
	}
	err = dialIn(func() error {
		limit := time.Now().Add(30 * time.Second)
		startedOnce := sync.OnceFunc(func() { close(started) })
		stopped := false
		for next := time.Now(); ; next = next.Add(probeEvery) {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			if !stopped {
				select {
				case <-stop:
					stopped = true
				default:
				}
			}
			if stopped && seen(verdictNew) {
				return nil
			}
			if time.Now().After(limit) {
				return fmt.Errorf("no answer accepting the new key within 30 s")
			}
			if seen(verdictOld) {
				startedOnce()
			}
			sent := time.Now()
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				add(probeRecord{sent: sent, done: time.Now()})
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(sent.Add(time.Second))
				r := probeRecord{sent: sent}
				if _, err := c.Write(req); err == nil {
					if m, err := rendezvous.ReadMessage(bufio.NewReader(c), 1<<10); err == nil {
						if ph, ok := m.(*rendezvous.PunchHoleResponse); ok {
							r.v = verdictNew
							if ph.Failure == rendezvous.LicenseMismatch {
								r.v = verdictOld
							}
						}
					}
				}
				r.done = time.Now()
				add(r)
			}()
		}
	})
	wg.Wait()
	if err != nil {
		return outage{}, err
	}
	var lastOld, firstNew time.Time
	o := outage{probes: len(records)}
	for _, r := range records {
		switch r.v {
		case verdictOld:
			if r.done.After(lastOld) {
				lastOld = r.done
			}
		case verdictNew:
			if firstNew.IsZero() || r.done.Before(firstNew) {
				firstNew = r.done
			}
		default:
			o.failed++
		}
	}
	if lastOld.IsZero() || firstNew.IsZero() {
		return o, fmt.Errorf("the probes saw no old answer or no new one (%d probes, %d failed)", o.probes, o.failed)
	}
	o.gap = firstNew.Sub(lastOld)
	return o, nil
}

// measureOutage stages a key with rdctl, starts the probe loop, commits
// the staged key, and returns the outage the loop saw. run runs rdctl.
func measureOutage(tb testing.TB, dialIn func(func() error) error, run func(args ...string) string) outage {
	tb.Helper()
	var staged struct {
		New string `json:"new_public_key"`
	}
	if err := json.Unmarshal([]byte(run("--json", "rotate", "--stage")), &staged); err != nil || staged.New == "" {
		tb.Fatalf("rotate --stage: %v", err)
	}
	started, stop := make(chan struct{}), make(chan struct{})
	type result struct {
		o   outage
		err error
	}
	done := make(chan result, 1)
	go func() {
		o, err := probeLoop(dialIn, "127.0.0.1:21116", staged.New, started, stop)
		done <- result{o, err}
	}()
	select {
	case <-started:
	case r := <-done:
		tb.Fatalf("the probe loop ended before the switch: %v", r.err)
	}
	var res struct {
		Verified bool `json:"verified"`
	}
	out := run("--json", "rotate", "--commit")
	close(stop)
	r := <-done
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Verified {
		tb.Fatalf("rotate --commit not verified: %v\n%s", err, out)
	}
	if r.err != nil {
		tb.Fatal(r.err)
	}
	return r.o
}

// reportOutages reports the median and maximum outage and failed probes.
func reportOutages(b *testing.B, all []outage) {
	gaps := make([]float64, len(all))
	fails := make([]float64, len(all))
	for i, o := range all {
		gaps[i] = float64(o.gap.Microseconds()) / 1000
		fails[i] = float64(o.failed)
	}
	sort.Float64s(gaps)
	sort.Float64s(fails)
	b.ReportMetric(median(gaps), "outage-median-ms")
	b.ReportMetric(gaps[len(gaps)-1], "outage-max-ms")
	b.ReportMetric(median(fails), "failed-probes-median")
	b.ReportMetric(fails[len(fails)-1], "failed-probes-max")
	b.Logf("client-visible outages (ms, sorted) over %d rotations: %v", len(gaps), gaps)
}

func median(v []float64) float64 {
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// BenchmarkOutageSystemd measures the client-visible outage of b.N
// rotations of the stand-in under rdctl's hardened units in a real systemd
// (the probe runs in the machine's network namespace).
func BenchmarkOutageSystemd(b *testing.B) { benchOutageSystemd(b, false) }

// BenchmarkOutageSystemdUnhardened is BenchmarkOutageSystemd with every
// sandboxing option taken out of the installed units (the test edits them
// in the machine; rdctl never writes such units): the floor of a restart
// under systemd here, so the hardening's own share of the outage can be
// read off as the difference.
func BenchmarkOutageSystemdUnhardened(b *testing.B) { benchOutageSystemd(b, true) }

// unhardenScript deletes the sandboxing options from rdctl's two units.
const unhardenScript = `sed -i -E '/^(NoNewPrivileges|CapabilityBoundingSet|AmbientCapabilities|Protect[A-Za-z]+|Private[A-Za-z]+|ProcSubset|Restrict[A-Za-z]+|LockPersonality|MemoryDenyWriteExecute|RemoveIPC|KeyringMode|DevicePolicy|SystemCall[A-Za-z]+|UMask)=/d' /etc/systemd/system/hbbs.service /etc/systemd/system/hbbr.service && systemctl daemon-reload && systemctl restart hbbr hbbs && ! grep -q '^Protect' /etc/systemd/system/hbbs.service`

func benchOutageSystemd(b *testing.B, unhardened bool) {
	m := serverMachine(b)
	ctx := context.Background()
	if _, e, code, _ := m.Exec(ctx, "/usr/local/sbin/rdctl", "install", "systemd", "--relay", "rd.example.com", "--binaries", "/root/rustdesk-server-linux-amd64.zip"); code != 0 {
		b.Fatal(e)
	}
	if unhardened {
		if _, e, code, _ := m.Exec(ctx, "sh", "-c", unhardenScript); code != 0 {
			b.Fatalf("unhardening the units: exit %d %s", code, e)
		}
	}
	run := func(args ...string) string {
		out, e, code, _ := m.Exec(ctx, append([]string{"/usr/local/sbin/rdctl"}, args...)...)
		if code != 0 {
			b.Fatalf("rdctl %v: exit %d %s", args, code, e)
		}
		return out
	}
	var all []outage
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		all = append(all, measureOutage(b, m.InNetns, run))
	}
	reportOutages(b, all)
}

// BenchmarkOutageCompose measures the client-visible outage of b.N
// rotations of an rdctl-installed compose stack (stand-in image, host
// networking) on the real Docker engine.
func BenchmarkOutageCompose(b *testing.B) {
	run := benchComposeStack(b)
	direct := func(f func() error) error { return f() }
	var all []outage
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		all = append(all, measureOutage(b, direct, run))
	}
	reportOutages(b, all)
}

// BenchmarkStandinStart measures the stand-in hbbs's own start: from the
// exec to its first answer on the rendezvous port (a punch-hole request
// retried every 100 µs), with its key in place, as a unit or container
// starts it during a rotation. The real hbbs 1.1.16 takes about 15 ms.
// It also reports SIGTERM to exit.
func BenchmarkStandinStart(b *testing.B) {
	_, standin := binaries(b)
	dir := b.TempDir()
	pair, err := keys.Generate(nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, keys.SecretFile), pair.SecretFileBytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	hbbs := filepath.Join(dir, "hbbs")
	if err := os.Symlink(standin, hbbs); err != nil {
		b.Fatal(err)
	}
	port := freePortBase(b)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	req, _ := rendezvous.AppendMessage(nil, &rendezvous.PunchHoleRequest{ID: "rdctl-start-probe", LicenceKey: pair.PublicBase64()})
	answered := func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(req); err != nil {
			return false
		}
		m, err := rendezvous.ReadMessage(bufio.NewReader(c), 1<<10)
		ph, ok := m.(*rendezvous.PunchHoleResponse)
		return err == nil && ok && ph.Failure != rendezvous.LicenseMismatch
	}
	var starts, stops []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(hbbs, "-p", strconv.Itoa(port))
		cmd.Dir = dir
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for !answered() {
			if time.Since(t0) > 10*time.Second {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatal("the stand-in did not answer within 10 s")
			}
			time.Sleep(100 * time.Microsecond)
		}
		starts = append(starts, float64(time.Since(t0).Microseconds())/1000)
		t1 := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		stops = append(stops, float64(time.Since(t1).Microseconds())/1000)
	}
	sort.Float64s(starts)
	sort.Float64s(stops)
	b.ReportMetric(median(starts), "exec-to-answer-median-ms")
	b.ReportMetric(starts[len(starts)-1], "exec-to-answer-max-ms")
	b.ReportMetric(median(stops), "sigterm-to-exit-median-ms")
}

// freePortBase finds P with P-1, P and P+2 free on loopback TCP and P free
// on UDP, for a stand-in hbbs started with -p P.
func freePortBase(tb testing.TB) int {
	for p := 40001; p < 60000; p += 7 {
		ok := true
		var closers []func() error
		for _, q := range []int{p - 1, p, p + 2} {
			ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(q)))
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, ln.Close)
		}
		if ok {
			if pc, err := net.ListenPacket("udp", net.JoinHostPort("0.0.0.0", strconv.Itoa(p))); err == nil {
				closers = append(closers, pc.Close)
			} else {
				ok = false
			}
		}
		for _, c := range closers {
			c()
		}
		if ok {
			return p
		}
	}
	tb.Fatal("no free port base")
	return 0
}
