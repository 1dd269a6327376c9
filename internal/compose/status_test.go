package compose

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// The engine's port bindings become Published, sorted, with 0.0.0.0 and
// :: (and no address) as every address.
func TestStatusOfPublished(t *testing.T) {
	c := container.InspectResponse{HostConfig: &container.HostConfig{PortBindings: network.PortMap{
		network.MustParsePort("21118/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "21118"}},
		network.MustParsePort("21116/udp"): {{HostIP: netip.MustParseAddr("::"), HostPort: "21116"}, {HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "21116"}},
		network.MustParsePort("21115/tcp"): {{HostPort: "21115"}},
	}}}
	got := statusOf(c).Published
	want := []PublishedPort{
		{Port: "21115/tcp", HostPort: "21115"},
		{Port: "21116/udp", HostPort: "21116"},
		{Port: "21116/udp", HostPort: "21116"},
		{Port: "21118/tcp", HostIP: "127.0.0.1", HostPort: "21118"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("published %+v, want %+v", got, want)
	}
	if !got[0].Everywhere() || got[3].Everywhere() {
		t.Errorf("everywhere: %v %v", got[0].Everywhere(), got[3].Everywhere())
	}
	if p := statusOf(container.InspectResponse{}).Published; p != nil {
		t.Errorf("no host config: %+v", p)
	}
}
