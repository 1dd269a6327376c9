package exporter

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// benchTargets is how many stand-in pairs BenchmarkProbeRequest scrapes in
// turn.
const benchTargets = 16

// BenchmarkProbeRequest is one Prometheus scrape of GET /probe over a
// kept-alive HTTP connection, a healthy stand-in pair as the target: the
// exporter's whole cost per scrape (HTTP, every probe, the metrics), which
// scripts/bench-exporter multiplies by 1,000 targets every 15 s.
func BenchmarkProbeRequest(b *testing.B) {
	dir := b.TempDir()
	var targets []string
	var key string
	for range benchTargets {
		p := hbbstest.StartPair(b, hbbstest.Options{Dir: dir}, &hbbstest.Options{})
		key = p.HBBS.Key()
		targets = append(targets, p.Bind+":"+strconv.Itoa(p.Port))
	}
	hs, _, _ := testServer(b, Options{}, key)
	client := hs.Client()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		resp, err := client.Get(hs.URL + "/probe?target=" + url.QueryEscape(targets[i%len(targets)]))
		i++
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %s", resp.Status, body)
		}
	}
}
