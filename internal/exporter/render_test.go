package exporter

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/rdctl/rdctl/internal/probe"
)

// viaClientGolang renders reports the way client_golang does: the same
// samples as Render (eachSample), as const metrics in a pedantic
// registry, gathered and encoded by expfmt. Render must write exactly
// these bytes: the families' order, the labels' order, the samples'
// order, escaping, number formatting and duplicate detection are
// client_golang's here and Render's own there.
func viaClientGolang(t *testing.T, reports []Report, withTarget bool) (string, error) {
	t.Helper()
	mode := modeOf(reports, withTarget)
	var descs []*prometheus.Desc
	for m, s := range specs {
		descs = append(descs, prometheus.NewDesc(s.name, s.help, labelNames(mode, m), nil))
	}
	var metrics []prometheus.Metric
	eachSample(reports, mode, func(m int, v float64, values []string) {
		metrics = append(metrics, prometheus.MustNewConstMetric(descs[m], prometheus.GaugeValue, v, values...))
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(constCollector{descs, metrics})
	mfs, err := reg.Gather()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, TextFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String(), nil
}

type constCollector struct {
	descs   []*prometheus.Desc
	metrics []prometheus.Metric
}

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.metrics {
		ch <- m
	}
}

// randomReport is a check result of a random shape: some probes, relays,
// ports, verdicts, durations (awkward floats among them) and label values
// that need escaping.
func randomReport(rng *rand.Rand, i int) Report {
	odd := []string{`a"b`, `back\slash`, "line\nfeed", "ünï", "rd.example.com", "192.0.2.7"}
	host := odd[rng.IntN(len(odd))] + strconv.Itoa(i)
	t := probe.Target{Name: host, Host: host, Port: 21116 + rng.IntN(3)*10}
	nRelays := 1 + rng.IntN(3)
	var relays []string
	for k := range nRelays {
		t.Relays = append(t.Relays, probe.Endpoint{Host: "r" + strconv.Itoa(k) + ".example.com"})
		relays = append(relays, "r"+strconv.Itoa(k)+".example.com:21117")
	}
	if nRelays == 1 {
		relays = nil
	}
	r := probe.TargetResult{Target: t, Address: host + ":" + strconv.Itoa(t.Port), Via: []string{probe.ViaDirect, probe.ViaTailnet}[rng.IntN(2)],
		KeyStatus: keyStatuses[rng.IntN(len(keyStatuses))], OK: rng.IntN(2) == 0, Relays: relays}
	durations := []time.Duration{0, time.Nanosecond, 1234567 * time.Nanosecond, time.Second, 3 * time.Second / 7}
	for _, n := range probe.Names() {
		if rng.IntN(4) == 0 {
			continue
		}
		relayCount := 1
		if n == probe.Relay || n == probe.RelayWS {
			relayCount = nRelays
		}
		for k := range relayCount {
			note := ""
			if rng.IntN(3) == 0 {
				note = probe.NoteConsole + " (test)"
			}
			r.Probes = append(r.Probes, probe.Result{Name: n, Proto: n.Proto(), Port: t.PortOf(n) + k, OK: rng.IntN(3) > 0,
				Duration: durations[rng.IntN(len(durations))], Note: note, Relay: uint8(k)})
		}
	}
	return Report{Result: r, Duration: durations[rng.IntN(len(durations))]}
}

// Render writes byte for byte what client_golang's registry and expfmt
// write for the same series, for random shapes of one target (GET /probe),
// one target at several addresses (GET /probe of such a name) and several
// targets (check --prometheus).
func TestRenderMatchesClientGolang(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		n := 1 + rng.IntN(4)
		withTarget := rng.IntN(2) == 0
		var reports []Report
		for k := range n {
			rep := randomReport(rng, i*10+k)
			if !withTarget && k > 0 {
				// One target at several addresses: the same probes and
				// relays, another address each.
				shape := reports[0].Result
				shape.Address = "192.0.2." + strconv.Itoa(k) + ":21116"
				shape.OK = rep.Result.OK
				rep.Result = shape
			}
			reports = append(reports, rep)
		}
		want, err := viaClientGolang(t, reports, withTarget)
		if err != nil {
			t.Fatalf("case %d: client_golang refused the series: %v", i, err)
		}
		var got bytes.Buffer
		if err := Render(&got, reports, withTarget); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if got.String() != want {
			t.Fatalf("case %d (withTarget %v): differs from client_golang\n--- Render\n%s\n--- client_golang\n%s", i, withTarget, got.String(), want)
		}
	}
}

// Two samples of one metric with the same labels are an error, as
// client_golang's Gather makes them, never a silently doubled line.
func TestRenderRefusesDuplicateSeries(t *testing.T) {
	r := probe.TargetResult{Target: probe.Target{Host: "a"}, Probes: []probe.Result{
		{Name: probe.RendezvousTCP, Proto: "tcp", Port: 21116, OK: true},
		{Name: probe.RendezvousTCP, Proto: "tcp", Port: 21116, OK: false},
	}}
	if err := Render(&bytes.Buffer{}, []Report{{Result: r}}, false); !errors.Is(err, ErrDuplicateSeries) {
		t.Fatalf("err = %v, want ErrDuplicateSeries", err)
	}
}

func TestAppendValueSpecials(t *testing.T) {
	for v, want := range map[float64]string{1: "1", 0: "0", -1: "-1", 0.5: "0.5", 1e-9: "1e-09", math.Inf(1): "+Inf", math.Inf(-1): "-Inf"} {
		if got := string(appendValue(nil, v)); got != want {
			t.Errorf("%v: %q, want %q", v, got, want)
		}
	}
	if got := string(appendValue(nil, math.NaN())); got != "NaN" {
		t.Errorf("NaN: %q", got)
	}
}

func BenchmarkRender(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	rep := randomReport(rng, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := Render(&bytes.Buffer{}, []Report{rep}, false); err != nil {
			b.Fatal(err)
		}
	}
}
