//go:build !linux

package probe

import (
	"context"
	"errors"
)

// udpMux shares one UDP socket between probes on Linux (udpmux_linux.go);
// elsewhere every probe uses a socket of its own.
type udpMux struct{}

var errNoMux = errors.New("no shared UDP socket")

func newUDPMux() *udpMux                               { return nil }
func (*udpMux) close()                                 {}
func (*udpMux) register(context.Context, string) error { return errNoMux }
