// Package export is the client configuration rdctl hands out: one format,
// or the provisioning tree for imaging and USB media.
//
// A [Source] (endpoints as recorded or given, and the server's public key)
// becomes a [Config]: the values clients are given, validated and in their
// shortest form. Every output is rendered through clientconf, which decodes
// it again and compares, before anything is printed or written; writes are
// plan steps ([TreePlan], [FilePlan]), so a dry run and a real run are the
// same plan. Only public values pass through here: the secret key is read
// to derive its public half, as hbbs does, and goes no further.
package export

import (
	"strconv"
	"strings"

	"github.com/rdctl/rdctl/internal/clientconf"
	"github.com/rdctl/rdctl/internal/deploy"
)

// FormatAll is the format name of the provisioning tree.
const FormatAll = "all"

// ClientConfRender encodes one format and decodes it again
// (clientconf.Render). It is a variable only so that tests can make it fail
// with a *clientconf.MismatchError and see that nothing is written.
var ClientConfRender = clientconf.Render

// Endpoints are the servers clients are pointed at, as recorded or given.
type Endpoints struct {
	ID    deploy.HostPort
	Relay deploy.HostPort // Host "" means none
	API   string          // "" means none; as ParseAPI returns it
	// ServerRelays are the relays hbbs hands out when the record names
	// several. Clients are then given no relay: a client's own
	// relay-server option comes before what hbbs hands it, so naming one
	// would pin every client to that relay.
	ServerRelays []deploy.HostPort
	// Tailnet is the record's tailnet_host (Host "" when none): the ID
	// server of the tailnet profile.
	Tailnet deploy.HostPort
}

// PublicKey is the server's public key and its fingerprint.
type PublicKey struct {
	Key         string // base64, exactly as hbbs writes id_ed25519.pub
	Fingerprint string
	// PubFileDisagrees reports that the working directory's id_ed25519.pub
	// is not the public half of its secret; Key is derived from the secret.
	PubFileDisagrees bool
}

// Source is what an export is made of. It holds the public key only.
type Source struct {
	Endpoints
	PublicKey
	Staged bool // the key is the next one, staged by rotate --stage
	// Profile is the client population this is for ("" when none was
	// asked); the README then names the check that verifies it.
	Profile Profile
	// PinRelay keeps Relay in the client's settings even where the client
	// would derive the same relay from the ID server (see ForProfile).
	PinRelay bool
	// WebSocket turns on allow-websocket for clients of the reverse proxy
	// at ProxyDomain (see [Source.ForProxy]).
	WebSocket   bool
	ProxyDomain deploy.Domain
}

// Config is a Source as clients are given it: validated, in its shortest
// equivalent form (see [ClientEndpoints]).
type Config struct {
	Server      clientconf.Server
	Fingerprint string
	Staged      bool
	// RelayDerived reports that a relay was given but left out, because
	// clients derive exactly that relay from the ID server.
	RelayDerived bool
	// Profile is the Source's; CheckName is then what rdctl check verifies
	// this configuration with (the ID server as clients are given it).
	Profile   Profile
	CheckName string
	// ProxyDomain is the reverse proxy's name when Server.AllowWebSocket.
	ProxyDomain deploy.Domain
}

// Config validates s and puts it in the form clients are given. The error
// is clientconf's *ValidationError.
func (s Source) Config() (Config, error) {
	host, relay := ClientEndpoints(s.ID, s.Relay)
	if s.PinRelay && s.Relay.Host != "" && relay == "" {
		r := s.Relay
		if r.Port == deploy.RelayPort {
			r.Port = 0
		}
		relay = HostPort(r)
	}
	c := Config{
		Server:       clientconf.Server{Host: host, Relay: relay, API: s.API, Key: s.Key, AllowWebSocket: s.WebSocket},
		Fingerprint:  s.Fingerprint,
		Staged:       s.Staged,
		RelayDerived: s.Relay.Host != "" && relay == "",
		Profile:      s.Profile,
		ProxyDomain:  s.ProxyDomain,
	}
	if s.Profile != "" {
		c.CheckName = HostPort(s.ID)
	}
	if err := c.Server.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// render renders one format through ClientConfRender, which decodes it
// again and compares. clientconf's typed errors pass through unchanged.
func (c Config) render(f clientconf.Format) ([]byte, error) {
	return ClientConfRender(f, c.Server, clientconf.Options{Fingerprint: c.Fingerprint})
}

// Output renders one format as it is printed or written to a file: the
// single-line formats (the config string, the installer names) get the
// line break they do not carry themselves.
func (c Config) Output(f clientconf.Format) ([]byte, error) {
	data, err := c.render(f)
	if err != nil {
		return nil, err
	}
	if IsLine(f) {
		data = append(data, '\n')
	}
	return data, nil
}

// JSON renders the json format and decodes it: the document --json
// carries, checked like every other output.
func (c Config) JSON() (clientconf.JSONExport, error) {
	data, err := c.render(clientconf.FormatJSON)
	if err != nil {
		return clientconf.JSONExport{}, err
	}
	return clientconf.DecodeJSON(data)
}

// IsLine reports whether a format is a single line without its own line
// break.
func IsLine(f clientconf.Format) bool {
	return f == clientconf.FormatString || f == clientconf.FormatExeName || f == clientconf.FormatExeNameLicensed
}

// ValidFormat reports whether name is a clientconf format or [FormatAll].
func ValidFormat(name string) bool {
	for _, f := range clientconf.Formats {
		if name == string(f) {
			return true
		}
	}
	return name == FormatAll
}

// FormatNames lists every format name, FormatAll last, for messages.
func FormatNames() []string {
	var names []string
	for _, f := range clientconf.Formats {
		names = append(names, string(f))
	}
	return append(names, FormatAll)
}

// RecordEndpoints reads the ID server, relay and API server clients are
// given from a deployment record; recordPath names it in the
// *deploy.RecordError (wrapping a *deploy.InputError) a bad value gives.
func RecordEndpoints(rec *deploy.Record, recordPath string) (Endpoints, error) {
	var (
		ep  Endpoints
		err error
	)
	if ep.ID, err = deploy.ParseHostPort("id_host", rec.IDHost); err != nil {
		return Endpoints{}, &deploy.RecordError{Path: recordPath, Err: err}
	}
	if rec.Relay != "" {
		relays, err := deploy.ParseRelays("relay", rec.Relay)
		if err != nil {
			return Endpoints{}, &deploy.RecordError{Path: recordPath, Err: err}
		}
		if len(relays) == 1 {
			ep.Relay = relays[0]
		} else {
			ep.ServerRelays = relays
		}
	}
	if rec.TailnetHost != "" {
		if ep.Tailnet, err = deploy.ParseHostPort("tailnet_host", rec.TailnetHost); err != nil {
			return Endpoints{}, &deploy.RecordError{Path: recordPath, Err: err}
		}
	}
	if rec.API != "" {
		if ep.API, err = ParseAPI("api", rec.API); err != nil {
			return Endpoints{}, &deploy.RecordError{Path: recordPath, Err: err}
		}
	}
	return ep, nil
}

// ParseAPI validates an API server URL: http:// or https://, a host name or
// IP (with an optional port), no credentials, query or fragment, and none
// of the characters that could not be embedded in every output format. A
// trailing '/' is dropped, as the client's own import does. field names the
// flag or setting in the *deploy.InputError.
func ParseAPI(field, s string) (string, error) { return deploy.ParseAPI(field, s) }

// ClientEndpoints returns the ID server and the relay as clients are given
// them, in their shortest equivalent form:
//   - the default port is left out: 21116 on the ID server, 21117 on the
//     relay (the client adds them itself);
//   - a relay that is the ID server's own host on 21117 is left out
//     entirely, but only when the ID server is on 21116: the client then
//     derives exactly host:21117 itself.
//
// IPv6 addresses are bracketed, as every client format requires. Shorter
// values keep the host= installer name possible, since ':' cannot be in a
// Windows file name. A zero relay (Host "") means none.
func ClientEndpoints(id, relay deploy.HostPort) (host, relayOut string) {
	if id.Port == deploy.RendezvousPort {
		id.Port = 0
	}
	host = HostPort(id)
	if relay.Host == "" {
		return host, ""
	}
	if relay.Port == deploy.RelayPort {
		relay.Port = 0
	}
	if id.Port == 0 && relay.Port == 0 && strings.EqualFold(string(relay.Host), string(id.Host)) {
		return host, ""
	}
	return host, HostPort(relay)
}

// HostPort formats hp as host, host:port, [v6] or [v6]:port.
func HostPort(hp deploy.HostPort) string {
	h := string(hp.Host)
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if hp.Port != 0 {
		h += ":" + strconv.Itoa(int(hp.Port))
	}
	return h
}
