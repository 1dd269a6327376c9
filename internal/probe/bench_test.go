package probe

import (
	"context"
	"testing"

	"github.com/rdctl/rdctl/internal/hbbstest"
)

// benchTargets is how many stand-in pairs BenchmarkFleetCheck checks per
// operation.
const benchTargets = 16

// BenchmarkFleetCheck checks benchTargets loopback stand-in pairs (every
// probe, the right key) per operation, and reports the allocations per
// target: what the fleet's hot path costs apart from the sockets. CPU per
// target against nmap and a bare Go connect is scripts/bench-check's job.
func BenchmarkFleetCheck(b *testing.B) {
	var targets []Target
	var key string
	dir := b.TempDir() // one key for every pair
	for range benchTargets {
		p := hbbstest.StartPair(b, hbbstest.Options{Dir: dir}, &hbbstest.Options{})
		key = p.HBBS.Key()
		targets = append(targets, Target{Name: p.Bind, Host: p.Bind, Port: p.Port})
	}
	opts := Options{Key: key, Concurrency: 64}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rs, err := Check(ctx, targets, opts)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if !r.OK {
				b.Fatalf("%s", dump(r))
			}
		}
	}
}
