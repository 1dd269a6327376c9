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

	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
)

// LocalAPI is what rdctl asks of tailscaled: the three LocalAPI calls it
// makes. tailscale.com/client/local's *Client has these methods, so tests can
// hand a tsnet node's client to [FromLocal]; rdctl itself speaks to the
// socket with [socketClient], because client/local links tailscale's health,
// netmon and eventbus packages and through them tsweb and net/http/pprof:
// package inits and megabytes every rdctl start would pay.
type LocalAPI interface {
	Status(ctx context.Context) (*ipnstate.Status, error)
	Ping(ctx context.Context, ip netip.Addr, pingtype tailcfg.PingType) (*ipnstate.PingResult, error)
	UserDial(ctx context.Context, network, host string, port uint16) (net.Conn, error)
}

// localAPIHost is the Host tailscaled's LocalAPI expects.
const localAPIHost = "local-tailscaled.sock"

// maxLocalAPIBody bounds a LocalAPI response (a status with thousands of
// peers is a few MB).
const maxLocalAPIBody = 64 << 20

// socketClient is a LocalAPI client over tailscaled's unix socket, with
// the requests and errors of client/local v1.102.5 (which classify knows).
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

// accessDeniedError is a 403 from the LocalAPI: this user may not ask.
type accessDeniedError struct{ err error }

func (e *accessDeniedError) Error() string { return "Access denied: " + e.err.Error() }
func (e *accessDeniedError) Unwrap() error { return e.err }

func (c *socketClient) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Tailscale-Cap", strconv.Itoa(int(tailcfg.CurrentCapabilityVersion)))
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

func (c *socketClient) Status(ctx context.Context) (*ipnstate.Status, error) {
	body, err := c.send(ctx, http.MethodGet, "/localapi/v0/status")
	if err != nil {
		return nil, err
	}
	st := new(ipnstate.Status)
	if err := json.Unmarshal(body, st); err != nil {
		return nil, fmt.Errorf("LocalAPI status: %w", err)
	}
	return st, nil
}

func (c *socketClient) Ping(ctx context.Context, ip netip.Addr, pingtype tailcfg.PingType) (*ipnstate.PingResult, error) {
	v := url.Values{}
	v.Set("ip", ip.String())
	v.Set("size", "0")
	v.Set("type", string(pingtype))
	body, err := c.send(ctx, http.MethodPost, "/localapi/v0/ping?"+v.Encode())
	if err != nil {
		return nil, fmt.Errorf("error %w: %s", err, body)
	}
	res := new(ipnstate.PingResult)
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
