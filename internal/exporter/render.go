package exporter

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/rdctl/rdctl/internal/probe"
)

// Report is one target's check as its metrics report it.
type Report struct {
	Result probe.TargetResult
	// Duration is the whole check of the target, from the request to the
	// last verdict.
	Duration time.Duration
}

// spec is one per-target series.
type spec struct {
	name, help string
	labels     []string
}

// The per-target series. Every probe series carries probe, proto and port;
// results that come per relay or per address will add labels (relay,
// address) rather than new metric names, so queries that select by probe
// keep working.
const (
	mSuccess = iota
	mDuration
	mProbeOK
	mProbeDur
	mKeyMatch
	mKeyStatus
	mConsole
	mInfo
)

var specs = []spec{
	mSuccess:   {"probe_success", "Whether every probe of the target passed and its key did not mismatch (1) or not (0).", nil},
	mDuration:  {"probe_duration_seconds", "How long the whole check of the target took.", nil},
	mProbeOK:   {"rustdesk_probe_success", "Whether one probe (one real exchange on one port) passed.", []string{"probe", "proto", "port"}},
	mProbeDur:  {"rustdesk_probe_duration_seconds", "How long one probe took, from the first dial to its verdict.", []string{"probe", "proto", "port"}},
	mKeyMatch:  {"rustdesk_key_match", "Whether the server enforces the expected key (1), or another, none or unknown (0).", nil},
	mKeyStatus: {"rustdesk_key_status", "The key verdict as a state set: 1 for the current status, 0 for the others.", []string{"status"}},
	mConsole:   {"rustdesk_console_detected", "Whether the probe found the loopback admin console of hbbs or hbbr instead of the protocol (the exporter runs on the server itself); the relay key is then not checked.", []string{"probe", "proto", "port"}},
	mInfo:      {"rustdesk_target_info", "The address the target was reached at and how (direct or tailnet); always 1.", []string{"address", "via"}},
}

// descs[false] are the series of one target (GET /probe: Prometheus
// labels them with the target); descs[true] carry a leading target label,
// for a file that holds several targets (rdctl check --prometheus).
var descs = map[bool][]*prometheus.Desc{}

func init() {
	for _, s := range specs {
		descs[false] = append(descs[false], prometheus.NewDesc(s.name, s.help, s.labels, nil))
		// Several targets in one exposition (check --prometheus): a name
		// checked at each of its addresses gives one result per address.
		// (rustdesk_target_info's own address label is that one.)
		labels := slices.DeleteFunc(slices.Clone(s.labels), func(l string) bool { return l == "address" })
		descs[true] = append(descs[true], prometheus.NewDesc(s.name, s.help, append([]string{"target", "address"}, labels...), nil))
	}
}

// MetricNames lists the names of every per-target series.
func MetricNames() []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.name)
	}
	return out
}

var keyStatuses = []probe.KeyStatus{probe.KeyMatch, probe.KeyMismatch, probe.KeyUnenforced, probe.KeyUnknown}

// reportCollector turns reports into metrics.
type reportCollector struct {
	reports    []Report
	withTarget bool
}

func (c *reportCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs[c.withTarget] {
		ch <- d
	}
}

func (c *reportCollector) Collect(ch chan<- prometheus.Metric) {
	ds := descs[c.withTarget]
	for _, rep := range c.reports {
		r := &rep.Result
		var pre []string
		if c.withTarget {
			pre = []string{r.Target.String(), r.Address}
		}
		emit := func(m int, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(ds[m], prometheus.GaugeValue, v, append(pre[:len(pre):len(pre)], labels...)...)
		}
		emit(mSuccess, b2f(r.OK))
		emit(mDuration, rep.Duration.Seconds())
		for _, p := range r.Probes {
			// relay[HOST:PORT] when the target has several relays, so
			// each relay is a series of its own.
			name, port := r.ProbeLabel(p), strconv.Itoa(p.Port)
			emit(mProbeOK, b2f(p.OK), name, p.Proto, port)
			emit(mProbeDur, p.Duration.Seconds(), name, p.Proto, port)
			if p.Name == probe.NATTest || p.Name == probe.Relay {
				emit(mConsole, b2f(p.OK && strings.HasPrefix(p.Note, probe.NoteConsole)), name, p.Proto, port)
			}
		}
		emit(mKeyMatch, b2f(r.KeyStatus == probe.KeyMatch))
		for _, s := range keyStatuses {
			emit(mKeyStatus, b2f(r.KeyStatus == s), string(s))
		}
		if c.withTarget {
			emit(mInfo, 1, r.Via) // the address is already a label
		} else {
			emit(mInfo, 1, r.Address, r.Via)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Registry holds the metrics of reports. withTarget adds a target label to
// every series, for several targets in one exposition.
func Registry(reports []Report, withTarget bool) *prometheus.Registry {
	// Not the pedantic registry: its checks on every gather cost a
	// noticeable share of a probe's CPU; tests check the output with
	// promtool instead.
	reg := prometheus.NewRegistry()
	reg.MustRegister(&reportCollector{reports: reports, withTarget: withTarget})
	return reg
}

// WriteText writes g's metrics in the Prometheus text format (version
// 0.0.4, what node_exporter's textfile collector and every Prometheus
// read).
func WriteText(w io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, TextFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}

// TextFormat is the exposition format WriteText writes.
var TextFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// Render writes the metrics of reports in the text format: the one
// renderer of GET /probe and rdctl check --prometheus.
func Render(w io.Writer, reports []Report, withTarget bool) error {
	return WriteText(w, Registry(reports, withTarget))
}
