package exporter

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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

// The label sets of the per-target series: one result of one target
// (GET /probe: Prometheus labels it with the target); one target checked
// at several addresses (GET /probe of a name with several: every series
// carries the address); several targets in one file (rdctl check
// --prometheus: target and address). rustdesk_target_info's own address
// label is that one.
type labelMode int

const (
	labelsNone labelMode = iota
	labelsAddress
	labelsTarget
)

// families are the per-target series of each label set. Built on first
// use, not at init: every rdctl command pays for package inits, and only
// the exporter and check --prometheus render metrics.
var families = sync.OnceValue(func() map[labelMode][]family {
	return map[labelMode][]family{
		labelsNone:    newFamilies(labelsNone),
		labelsAddress: newFamilies(labelsAddress),
		labelsTarget:  newFamilies(labelsTarget),
	}
})

// modeOf is the label set of reports: target and address labels with
// withTarget; an address label when they are one target at several
// addresses; none for one result.
func modeOf(reports []Report, withTarget bool) labelMode {
	switch {
	case withTarget:
		return labelsTarget
	case len(reports) > 1:
		return labelsAddress
	}
	return labelsNone
}

// labelNames are metric m's label names in mode, in the order eachSample
// gives their values: the mode's own labels first, then the metric's
// (less its address label when the mode has one).
func labelNames(mode labelMode, m int) []string {
	var pre []string
	switch mode {
	case labelsTarget:
		pre = []string{"target", "address"}
	case labelsAddress:
		pre = []string{"address"}
	default:
		return specs[m].labels
	}
	return append(pre, slices.DeleteFunc(slices.Clone(specs[m].labels), func(l string) bool { return l == "address" })...)
}

// family is one metric as the text format writes it: its # HELP and
// # TYPE lines, and its labels in the order written (sorted by name, as
// client_golang writes them).
type family struct {
	header string
	names  []string // sorted label names
	order  []int    // order[k]: the position in emit's labels of names[k]
}

func newFamilies(mode labelMode) []family {
	fs := make([]family, len(specs))
	for m, s := range specs {
		labels := labelNames(mode, m)
		f := family{header: "# HELP " + s.name + " " + escapeHelp(s.help) + "\n# TYPE " + s.name + " gauge\n"}
		f.names = slices.Clone(labels)
		slices.Sort(f.names)
		for _, n := range f.names {
			f.order = append(f.order, slices.Index(labels, n))
		}
		fs[m] = f
	}
	return fs
}

// byName is the order of the families in the exposition: by metric name.
var byName = sync.OnceValue(func() []int {
	idx := make([]int, len(specs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(specs[a].name, specs[b].name) })
	return idx
})

// MetricNames lists the names of every per-target series.
func MetricNames() []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.name)
	}
	return out
}

var keyStatuses = []probe.KeyStatus{probe.KeyMatch, probe.KeyMismatch, probe.KeyUnenforced, probe.KeyUnknown}

// series is one sample: its label values in the family's written order.
type series struct {
	values []string
	value  float64
}

// ErrDuplicateSeries: two samples of one metric with the same labels (a
// bug in how results are labelled; Prometheus would refuse the scrape).
var ErrDuplicateSeries = errors.New("duplicate series")

// Render writes the metrics of reports in the Prometheus text format
// (version 0.0.4, what node_exporter's textfile collector and every
// Prometheus read): the one renderer of GET /probe and rdctl check
// --prometheus. withTarget adds target and address labels to every
// series, for several targets in one exposition; without it, several
// reports (one target at several addresses) get an address label each.
//
// It writes the format itself rather than through a client_golang
// registry: a registry's Gather allocates a 1,000-metric channel and a
// protobuf message per sample, which was half of what an exporter scrape
// allocated. The output is the same bytes client_golang writes (families
// by name, labels by name, samples by label values; a test compares
// them), and a duplicate series is an error, as Gather's is.
func Render(w io.Writer, reports []Report, withTarget bool) error {
	mode := modeOf(reports, withTarget)
	fs := families()[mode]
	perFamily := make([][]series, len(fs))
	eachSample(reports, mode, func(m int, v float64, all []string) {
		values := make([]string, len(all))
		for k, at := range fs[m].order {
			values[k] = all[at]
		}
		perFamily[m] = append(perFamily[m], series{values, v})
	})
	buf := make([]byte, 0, 4096)
	for _, m := range byName() {
		ss, f := perFamily[m], &fs[m]
		if len(ss) == 0 {
			continue
		}
		slices.SortFunc(ss, func(a, b series) int { return slices.Compare(a.values, b.values) })
		buf = append(buf, f.header...)
		for k := range ss {
			if k > 0 && slices.Equal(ss[k-1].values, ss[k].values) {
				return fmt.Errorf("%w: %s%v", ErrDuplicateSeries, specs[m].name, ss[k].values)
			}
			buf = append(buf, specs[m].name...)
			if len(f.names) > 0 {
				buf = append(buf, '{')
				for i, n := range f.names {
					if i > 0 {
						buf = append(buf, ',')
					}
					buf = append(buf, n...)
					buf = append(buf, '=', '"')
					buf = appendLabelValue(buf, ss[k].values[i])
					buf = append(buf, '"')
				}
				buf = append(buf, '}')
			}
			buf = append(buf, ' ')
			buf = appendValue(buf, ss[k].value)
			buf = append(buf, '\n')
		}
	}
	_, err := w.Write(buf)
	return err
}

// eachSample calls emit for every sample of reports: metric m (an index
// into specs), its value and its label values in labelNames(mode, m)
// order. It is the one place that says which series a check gives.
func eachSample(reports []Report, mode labelMode, emit func(m int, v float64, values []string)) {
	for _, rep := range reports {
		r := &rep.Result
		var pre []string
		switch mode {
		case labelsTarget:
			pre = []string{r.Target.String(), r.Address}
		case labelsAddress:
			pre = []string{r.Address}
		}
		sample := func(m int, v float64, labels ...string) {
			emit(m, v, append(pre[:len(pre):len(pre)], labels...))
		}
		sample(mSuccess, b2f(r.OK))
		sample(mDuration, rep.Duration.Seconds())
		for _, p := range r.Probes {
			// relay[HOST:PORT] when the target has several relays, so
			// each relay is a series of its own.
			name, port := r.ProbeLabel(p), strconv.Itoa(p.Port)
			sample(mProbeOK, b2f(p.OK), name, p.Proto, port)
			sample(mProbeDur, p.Duration.Seconds(), name, p.Proto, port)
			if p.Name == probe.NATTest || p.Name == probe.Relay {
				sample(mConsole, b2f(p.OK && strings.HasPrefix(p.Note, probe.NoteConsole)), name, p.Proto, port)
			}
		}
		sample(mKeyMatch, b2f(r.KeyStatus == probe.KeyMatch))
		for _, s := range keyStatuses {
			sample(mKeyStatus, b2f(r.KeyStatus == s), string(s))
		}
		if mode != labelsNone {
			sample(mInfo, 1, r.Via) // the address is already a label
		} else {
			sample(mInfo, 1, r.Address, r.Via)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// appendValue writes v as the text format does: integers without a
// fraction, NaN and infinities by name, the rest in Go's shortest form.
func appendValue(buf []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(buf, '1')
	case v == 0:
		return append(buf, '0')
	case v == -1:
		return append(buf, "-1"...)
	case math.IsNaN(v):
		return append(buf, "NaN"...)
	case math.IsInf(v, +1):
		return append(buf, "+Inf"...)
	case math.IsInf(v, -1):
		return append(buf, "-Inf"...)
	}
	return strconv.AppendFloat(buf, v, 'g', -1, 64)
}

// appendLabelValue escapes a label value: backslash, double quote and
// line feed.
func appendLabelValue(buf []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			buf = append(buf, '\\', '\\')
		case '"':
			buf = append(buf, '\\', '"')
		case '\n':
			buf = append(buf, '\\', 'n')
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// escapeHelp escapes a HELP text: backslash and line feed.
func escapeHelp(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// TextFormat is the exposition format Render writes.
var TextFormat = expfmt.NewFormat(expfmt.TypeTextPlain)
