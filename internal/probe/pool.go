package probe

import "time"

// workerIdle is how long a pool worker waits for its next job before it
// exits.
const workerIdle = 30 * time.Second

// workers runs the probes' goroutines for every Check in the process.
// A probe dials, upgrades and decodes deep enough to grow a fresh
// goroutine's 8 KiB stack several times, and the runtime copies the stack
// at each step: with a goroutine per Check that copying was 6% of an
// exporter scrape's CPU, paid again on every scrape. A worker keeps the
// stack it grew for the next job. Idle workers exit after workerIdle, so
// a quiet exporter holds no goroutines.
var workers = &pool{work: make(chan func())}

type pool struct{ work chan func() }

// Go runs fn on an idle worker, or on a new one when none is idle: it
// never waits for a worker, so jobs that wait on each other cannot
// deadlock the pool.
func (p *pool) Go(fn func()) {
	select {
	case p.work <- fn: // an idle worker was waiting and took it
	default:
		go p.worker(fn)
	}
}

func (p *pool) worker(fn func()) {
	fn()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case fn := <-p.work:
			fn()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		}
	}
}
