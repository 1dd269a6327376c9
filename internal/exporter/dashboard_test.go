package exporter

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// promqlNames returns the metric names a PromQL expression selects: its
// identifiers that are not functions (followed by "("), keywords, label
// names inside {...} or by/without/on(...) lists, or durations.
func promqlNames(expr string) []string {
	s := regexp.MustCompile(`"(?:[^"\\]|\\.)*"`).ReplaceAllString(expr, `""`)
	s = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(s, " ")
	s = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(s, " ")
	s = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(s, " ")
	keywords := []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
	var out []string
	for _, m := range regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`).FindAllString(s, -1) {
		if strings.HasSuffix(m, "(") || slices.Contains(keywords, m) {
			continue
		}
		out = append(out, m)
	}
	return out
}

func TestPromqlNames(t *testing.T) {
	got := promqlNames(`histogram_quantile(0.95, sum by (le) (rate(a_bucket{x="y{z}"}[5m]))) + on (instance) b == bool 1 unless c`)
	if strings.Join(got, ",") != "a_bucket,b,c" {
		t.Errorf("got %v", got)
	}
}

// TestDashboard: contrib/grafana/rustdesk.json is valid JSON and every
// query in it (panels and variables) names only metrics the exporter
// emits, as seen in a real scrape of /probe and /metrics.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("../../contrib/grafana/rustdesk.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct{ Query string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("not valid JSON: %v", err)
	}
	p := standIn(t, hbbstest.Options{})
	hs, _, _ := testServer(t, Options{}, p.HBBS.Key())
	_, probeOut := get(t, hs, probePath(target(p), ""), "")
	_, selfOut := get(t, hs, "/metrics", "")
	emitted := map[string]bool{}
	for _, line := range strings.Split(probeOut+selfOut, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		emitted[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	var exprs []string
	for _, pn := range dash.Panels {
		if len(pn.Targets) == 0 {
			t.Errorf("panel %q has no query", pn.Title)
		}
		for _, tg := range pn.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		// label_values(METRIC{...}, label)
		q := strings.TrimSuffix(strings.TrimPrefix(v.Query, "label_values("), ")")
		q, _, _ = strings.Cut(q, ",")
		exprs = append(exprs, q)
	}
	checked := 0
	for _, e := range exprs {
		names := promqlNames(e)
		if len(names) == 0 {
			t.Errorf("query %q names no metric", e)
		}
		for _, n := range names {
			checked++
			if !emitted[n] {
				t.Errorf("query %q uses %s, which the exporter does not emit", e, n)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d metric references checked: the parse is broken", checked)
	}
}
