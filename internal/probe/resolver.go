package probe

import (
	"context"
	"net"
)

// ResolverAt is a resolver that asks the DNS server at addr (host:port)
// for every name, over UDP (TCP when a reply is truncated), instead of the
// servers in /etc/resolv.conf. Names in /etc/hosts still resolve from
// there first, as with the system's resolver.
func ResolverAt(addr string) *net.Resolver {
	d := &net.Dialer{}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
}
