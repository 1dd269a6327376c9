// Command benchstartup runs rdctl commands many times and prints, for each,
// the median and minimum wall time, the median CPU time (user+sys) and the
// median peak RSS (getrusage of the child), for
// scripts/bench-startup. It needs no hyperfine; scripts/bench-startup also
// runs hyperfine when it is installed.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	runs := flag.Int("runs", 30, "runs per command (after 3 warm-up runs)")
	bin := flag.String("bin", "", "the rdctl binary")
	keyDir := flag.String("keydir", "", "a key directory for key show --dir")
	flag.Parse()
	if *bin == "" || *keyDir == "" {
		fmt.Fprintln(os.Stderr, "usage: benchstartup -bin RDCTL -keydir DIR [-runs N]")
		os.Exit(2)
	}
	cmds := [][]string{{"--help"}, {"version"}, {"key", "show", "--dir", *keyDir}}
	fmt.Printf("%-28s %10s %10s %10s %10s\n", "command", "wall ms", "min ms", "cpu ms", "rss MB")
	failed := false
	for _, args := range cmds {
		var walls []time.Duration
		var rss []int64
		var cpu []time.Duration
		for i := 0; i < *runs+3; i++ {
			c := exec.Command(*bin, args...)
			c.Stdout, c.Stderr = io.Discard, io.Discard
			start := time.Now()
			if err := c.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "rdctl %s: %v\n", strings.Join(args, " "), err)
				failed = true
				break
			}
			d := time.Since(start)
			if i < 3 {
				continue
			}
			walls = append(walls, d)
			rss = append(rss, c.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // KiB on Linux
			// CPU time (user+sys) varies far less than wall time on a
			// loaded machine.
			cpu = append(cpu, c.ProcessState.UserTime()+c.ProcessState.SystemTime())
		}
		if len(walls) == 0 {
			continue
		}
		slices.Sort(walls)
		slices.Sort(rss)
		slices.Sort(cpu)
		fmt.Printf("%-28s %10.1f %10.1f %10.1f %10.1f\n", "rdctl "+strings.Join(args[:min(len(args), 2)], " "),
			float64(walls[len(walls)/2].Microseconds())/1000, float64(walls[0].Microseconds())/1000,
			float64(cpu[len(cpu)/2].Microseconds())/1000, float64(rss[len(rss)/2])/1024)
	}
	if failed {
		os.Exit(1)
	}
}
