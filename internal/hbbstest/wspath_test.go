package hbbstest

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestWebSocketAnyPathAndHost: hbbs and hbbr upgrade a request for any path
// and any Host (measured on the real servers: /ws/id, /, /ws/relay and
// /anything?x=1 all get 101 on both ports), which is what lets a proxy
// route /ws/id and /ws/relay to them unchanged.
func TestWebSocketAnyPathAndHost(t *testing.T) {
	s := startT(t, HBBS, Options{ConsoleRule: NeverConsole})
	r := startT(t, HBBR, Options{ConsoleRule: NeverConsole})
	for _, port := range []struct {
		name string
		addr netip.AddrPort
	}{{"hbbs", s.Addrs().WS}, {"hbbr", r.Addrs().RelayWS}} {
		for _, target := range []string{"/ws/id", "/", "/ws/relay", "/anything?x=1"} {
			for _, host := range []string{"rd.example.com", "127.0.0.1:21118", "[2001:db8::1]"} {
				t.Run(port.name+" "+target+" "+host, func(t *testing.T) {
					c := dial(t, port.addr)
					req := strings.Replace(wsRequest(""), "GET /ws/id ", "GET "+target+" ", 1)
					req = strings.Replace(req, "Host: rd.example.com", "Host: "+host, 1)
					write(t, c, []byte(req))
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					line, err := bufio.NewReader(c).ReadString('\n')
					if err != nil || line != "HTTP/1.1 101 Switching Protocols\r\n" {
						t.Fatalf("%q, %v", line, err)
					}
				})
			}
		}
	}
}
