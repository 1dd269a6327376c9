package doctor

import (
	"strings"
	"testing"
)

// FuzzParseProcNet: never panics; every listener it returns has an address
// of the file's family and came from a line in the LISTEN/UNCONN state.
func FuzzParseProcNet(f *testing.F) {
	f.Add("sl local\n 0: 0100007F:5274 00000000:0000 0A 0:0 0:0 0 998 0 4242 1\n", "tcp")
	f.Add("sl\n 0: 00000000000000000000000000000000:5274 00000000000000000000000000000000:0000 07 0 0 0 0 0 1 0\n", "udp6")
	f.Add("sl\n 0: 0100007F:5274 0100007F:0001 07 0 0 0 0 0 1 0\n", "udp")
	f.Fuzz(func(t *testing.T, data, file string) {
		ls, err := ParseProcNet([]byte(data), file)
		if err != nil {
			return
		}
		for _, l := range ls {
			if !l.Addr.IsValid() || (l.Proto != "tcp" && l.Proto != "udp") || !strings.HasPrefix(file, l.Proto) {
				t.Fatalf("%+v from %s", l, file)
			}
		}
	})
}

// FuzzParsePasswd: never panics; ids are never negative.
func FuzzParsePasswd(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/sh\nrustdesk:x:998:998::/var/lib/rustdesk:/usr/sbin/nologin\n", false)
	f.Add("root:x:0:\nrustdesk:x:997:a,b\n", true)
	f.Add("::::::\n-1:x:-1:-1:::\n", false)
	f.Fuzz(func(t *testing.T, data string, group bool) {
		for _, e := range parsePasswd([]byte(data), group) {
			if e.id < 0 || e.gid < 0 || e.name == "" {
				t.Fatalf("%+v", e)
			}
		}
	})
}
