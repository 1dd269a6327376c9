package tailnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// localAPIHost is the Host tailscaled's LocalAPI expects.
const localAPIHost = "local-tailscaled.sock"

// maxLocalAPIBody bounds a LocalAPI response (a status with thousands of
// peers is a few MB).
const maxLocalAPIBody = 64 << 20

// localAPICapVersion is the capability version rdctl announces in the
// Tailscale-Cap header: tailcfg.CurrentCapabilityVersion of tailscale.com
// v1.102.5, the client/local whose requests socketClient makes. A test
// fails when go.mod's tailscale.com moves on, so that socketClient is
// checked against the new client/local before the number follows.
const localAPICapVersion = 142

// socketClient makes the three LocalAPI calls rdctl needs (status, ping,
// dial) over tailscaled's unix socket, with the requests and errors of
// client/local v1.102.5 (which classify knows).
//
// rdctl speaks to the socket itself rather than through
// tailscale.com/client/local, and decodes the answers into its own
// [lapiStatus] and [lapiPingResult] rather than tailscale.com's ipnstate
// types: client/local links tailscale's health, netmon and eventbus packages
// and through them tsweb and net/http/pprof, and even the type packages
// (ipnstate, tailcfg) with the socket path's (paths) link 33 tailscale.com
// packages and a dozen more (CBOR, a second JSON library, ed25519) with
// their inits: about a megabyte of binary, and start time every rdctl
// command would pay, for a dozen JSON fields.
type socketClient struct {
	hc *http.Client
}

func newSocketClient(socket string) *socketClient {
	return &socketClient{hc: &http.Client{Transport: &http.Transport{
		// Dial the socket once: no retry, so that a missing tailscaled
		// is reported at once. The error stays a *net.OpError on "unix".
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		IdleConnTimeout: 30 * time.Second,
	}}}
}

// lapiStatus is the part of tailscaled's /localapi/v0/status answer
// (ipnstate.Status in tailscale.com) that rdctl reads. The JSON names are
// tailscaled's, which sends Go field names untagged; testdata/status.json,
// marshalled from ipnstate.Status, proves they match.
type lapiStatus struct {
	BackendState string       `json:"BackendState"`
	TUN          bool         `json:"TUN"`
	TailscaleIPs []netip.Addr `json:"TailscaleIPs"`
	Self         *lapiPeer    `json:"Self"`
	Health       []string     `json:"Health"`
	// MagicDNSSuffix is the legacy copy of CurrentTailnet.MagicDNSSuffix,
	// all that older tailscaled send.
	MagicDNSSuffix string `json:"MagicDNSSuffix"`
	CurrentTailnet *struct {
		MagicDNSSuffix string `json:"MagicDNSSuffix"`
	} `json:"CurrentTailnet"`
	// Peer is keyed by node key ("nodekey:<hex>"), which rdctl ignores.
	Peer map[string]*lapiPeer `json:"Peer"`
}

// lapiPeer is the part of ipnstate.PeerStatus that rdctl reads.
type lapiPeer struct {
	HostName      string         `json:"HostName"`
	DNSName       string         `json:"DNSName"`
	OS            string         `json:"OS"`
	TailscaleIPs  []netip.Addr   `json:"TailscaleIPs"`
	PrimaryRoutes []netip.Prefix `json:"PrimaryRoutes"`
	CurAddr       string         `json:"CurAddr"`
	Relay         string         `json:"Relay"`
	PeerRelay     string         `json:"PeerRelay"`
	LastSeen      time.Time      `json:"LastSeen"`
	Online        bool           `json:"Online"`
	Active        bool           `json:"Active"`
}

// lapiPingResult is the part of tailscaled's /localapi/v0/ping answer
// (ipnstate.PingResult) that rdctl reads.
type lapiPingResult struct {
	NodeName       string  `json:"NodeName"`
	Err            string  `json:"Err"`
	LatencySeconds float64 `json:"LatencySeconds"`
	Endpoint       string  `json:"Endpoint"`
	PeerRelay      string  `json:"PeerRelay"`
	DERPRegionID   int     `json:"DERPRegionID"`
	DERPRegionCode string  `json:"DERPRegionCode"`
	IsLocalIP      bool    `json:"IsLocalIP"`
}

// accessDeniedError is a 403 from the LocalAPI: this user may not ask.
type accessDeniedError struct{ err error }

func (e *accessDeniedError) Error() string { return "Access denied: " + e.err.Error() }
func (e *accessDeniedError) Unwrap() error { return e.err }

func (c *socketClient) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Tailscale-Cap", strconv.Itoa(localAPICapVersion))
	return c.hc.Do(req)
}

// send makes one request and returns the body of a wantStatus answer.
func (c *socketClient) send(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+localAPIHost+path, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxLocalAPIBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxLocalAPIBody {
		return nil, fmt.Errorf("LocalAPI %s: response larger than %d bytes", path, maxLocalAPIBody)
	}
	switch res.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusForbidden:
		return nil, &accessDeniedError{errors.New(messageOf(body))}
	}
	if msg := jsonError(body); msg != "" {
		return nil, errors.New(msg)
	}
	return nil, fmt.Errorf("%v: %s", res.Status, bytes.TrimSpace(body))
}

// jsonError is the "Error" field of a LocalAPI error body, if it has one.
func jsonError(body []byte) string {
	var j struct{ Error string }
	if json.Unmarshal(body, &j) == nil {
		return j.Error
	}
	return ""
}

func messageOf(body []byte) string {
	if msg := jsonError(body); msg != "" {
		return msg
	}
	return strings.TrimSpace(string(body))
}

func (c *socketClient) Status(ctx context.Context) (*lapiStatus, error) {
	body, err := c.send(ctx, http.MethodGet, "/localapi/v0/status")
	if err != nil {
		return nil, err
	}
	st := new(lapiStatus)
	if err := json.Unmarshal(body, st); err != nil {
		return nil, fmt.Errorf("LocalAPI status: %w", err)
	}
	return st, nil
}

func (c *socketClient) Ping(ctx context.Context, ip netip.Addr, pingtype PingKind) (*lapiPingResult, error) {
	v := url.Values{}
	v.Set("ip", ip.String())
	v.Set("size", "0")
	v.Set("type", string(pingtype))
	body, err := c.send(ctx, http.MethodPost, "/localapi/v0/ping?"+v.Encode())
	if err != nil {
		return nil, fmt.Errorf("error %w: %s", err, body)
	}
	res := new(lapiPingResult)
	if err := json.Unmarshal(body, res); err != nil {
		return nil, fmt.Errorf("LocalAPI ping: %w", err)
	}
	return res, nil
}

// UserDial asks tailscaled to dial host:port over the tailnet and hands
// back the upgraded LocalAPI connection, which then carries the stream.
func (c *socketClient) UserDial(ctx context.Context, network, host string, port uint16) (net.Conn, error) {
	connCh := make(chan net.Conn, 1)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { connCh <- info.Conn },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+localAPIHost+"/localapi/v0/dial", nil)
	if err != nil {
		return nil, err
	}
	req.Header = http.Header{
		"Upgrade":      {"ts-dial"},
		"Connection":   {"upgrade"},
		"Dial-Host":    {host},
		"Dial-Port":    {strconv.Itoa(int(port))},
		"Dial-Network": {network},
	}
	res, err := c.do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		if res.StatusCode == http.StatusOK && res.Header.Get("Dial-Self") == "true" {
			// Not a tailnet address: tailscaled tells the caller to dial
			// it directly, at the address it resolved.
			addr := res.Header.Get("Dial-Addr")
			if addr == "" {
				return nil, errors.New("tailscaled answered Dial-Self without Dial-Addr")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		return nil, fmt.Errorf("unexpected HTTP response: %s, %s", res.Status, body)
	}
	var raw net.Conn
	select {
	case raw = <-connCh:
	default:
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if raw == nil || !ok {
		res.Body.Close()
		return nil, errors.New("LocalAPI dial: the HTTP transport gave no upgraded connection")
	}
	// I/O goes through the body (it holds the transport's read buffer);
	// addresses and deadlines through the connection under it.
	return &upgradedConn{Conn: raw, rwc: rwc}, nil
}

type upgradedConn struct {
	net.Conn
	rwc io.ReadWriteCloser
}

func (c *upgradedConn) Read(p []byte) (int, error)  { return c.rwc.Read(p) }
func (c *upgradedConn) Write(p []byte) (int, error) { return c.rwc.Write(p) }
func (c *upgradedConn) Close() error                { return c.rwc.Close() }
