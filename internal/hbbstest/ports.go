package hbbstest

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

// FreeBasePort finds a base port P for the real fixed-offset layout on bind
// ("" = all addresses): TCP P-1, P, P+1, P+2, P+3 and UDP P are all free, so
// hbbs can use -p P and hbbr -p P+1 (the upstream default pairing 21116 /
// 21117). The ports are released before returning, so another process can
// race for them; callers retry on a bind error.
func FreeBasePort(bind string) (int, error) {
	for range 200 {
		p := 20000 + rand.IntN(40000)
		if portsFree(bind, p) {
			return p, nil
		}
	}
	return 0, errors.New("hbbstest: no free port block found")
}

func portsFree(bind string, p int) bool {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for q := p - 1; q <= p+3; q++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(q)))
		if err != nil {
			return false
		}
		closers = append(closers, ln.Close)
	}
	pc, err := net.ListenPacket("udp", net.JoinHostPort(bind, strconv.Itoa(p)))
	if err != nil {
		return false
	}
	closers = append(closers, pc.Close)
	return true
}
