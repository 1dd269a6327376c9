package hbbstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// Pair is an hbbs stand-in on base port P and, optionally, an hbbr stand-in
// on P+1, on one address: the real servers' layout with `-p P`.
type Pair struct {
	HBBS, HBBR *Server // HBBR is nil when not started
	Bind       string
	Port       int // hbbs's base port P
}

// RandomLoopback picks an address in 127.0.0.0/8, so parallel tests rarely
// compete for the same ports.
func RandomLoopback() string {
	return fmt.Sprintf("127.0.%d.%d", rand.IntN(200)+20, rand.IntN(250)+2)
}

// StartPair starts hbbs with hs and, unless hr is nil, hbbr with *hr,
// sharing hs.Dir (a temp dir when empty) and hs.Bind (a random loopback
// address when empty). hbbr gets -k _ (the same key, enforced) unless
// hr.Key says otherwise; consoles are off unless the options set a rule;
// with go test -v the servers log to stderr. Races for ports with other
// tests are retried. Both servers are closed when t ends.
func StartPair(t testing.TB, hs Options, hr *Options) *Pair {
	t.Helper()
	dir, bind := hs.Dir, hs.Bind
	if dir == "" {
		dir = t.TempDir()
	}
	if bind == "" {
		bind = RandomLoopback()
	}
	var lastErr error
	for range 30 {
		p, err := FreeBasePort(bind)
		if err != nil {
			t.Fatal(err)
		}
		pair := &Pair{Bind: bind, Port: p}
		o := withTestDefaults(hs, dir, bind, p)
		if pair.HBBS, lastErr = StartHBBS(context.Background(), o); lastErr != nil {
			continue
		}
		if hr != nil {
			r := withTestDefaults(*hr, dir, bind, p+1)
			if r.Key == nil {
				r.Key = new("_")
			}
			if pair.HBBR, lastErr = StartHBBR(context.Background(), r); lastErr != nil {
				pair.HBBS.Close()
				continue
			}
		}
		t.Cleanup(func() {
			pair.HBBS.Close()
			if pair.HBBR != nil {
				pair.HBBR.Close()
			}
		})
		return pair
	}
	t.Fatalf("could not start the stand-ins: %v", lastErr)
	return nil
}

func withTestDefaults(o Options, dir, bind string, port int) Options {
	o.Dir, o.Bind, o.Port = dir, bind, port
	if o.ConsoleRule == nil {
		o.ConsoleRule = NeverConsole
	}
	if testing.Verbose() && o.LogWriter == nil {
		o.LogWriter = os.Stderr
	}
	return o
}
