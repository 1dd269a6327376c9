package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rdctl/rdctl/internal/deploy"
	"github.com/rdctl/rdctl/internal/probe"
	"github.com/rdctl/rdctl/internal/textsafe"
)

// Uptime Kuma's push monitors: Kuma shows a monitor down when no push
// arrives within its heartbeat interval, or when a push says status=down.
// A push is GET <push URL>?status=up|down&msg=TEXT&ping=MS; Kuma answers
// {"ok":true}, or {"ok":false,"msg":...} (404 for an unknown or paused
// monitor's token).

// ErrBadPushURL: the push URL is not an http(s) URL with a host.
var ErrBadPushURL = errors.New("not an http:// or https:// URL with a host")

// maxKumaMsg bounds the msg a push sends (Kuma shows it in the monitor's
// event list).
const maxKumaMsg = 250

// maxKumaReply bounds what is read of Kuma's answer: {"ok":true} is 11
// bytes; whatever else a server sends is not read past this.
const maxKumaReply = 4 << 10

// ParsePushURL checks an Uptime Kuma push URL, as the monitor's page shows
// it (https://kuma.example.com/api/push/TOKEN?status=up&msg=OK&ping=):
// the status, msg and ping it carries are replaced by each push.
func ParsePushURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, ErrBadPushURL
	}
	// The host is printed in messages: it must be a host name or an IP
	// (never, say, a key pasted in the wrong place).
	if _, err := deploy.ParseHostPort("--push-url", u.Host); err != nil {
		return nil, err
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// KumaPush is one push: what Kuma will show for a check of results.
type KumaPush struct {
	Up   bool
	Msg  string
	Ping time.Duration
}

// NewKumaPush sums up a check: up when every target passed (probe_success
// 1 for each); msg names the failures first (target, probe, error, or the
// key verdict), else the counts; ping is the slowest target's check.
func NewKumaPush(results []probe.TargetResult) KumaPush {
	p := KumaPush{Up: true}
	var fails []string
	probes, passed := 0, 0
	for _, r := range results {
		p.Up = p.Up && r.OK
		if r.KeyStatus == probe.KeyMismatch {
			fails = append(fails, r.Target.String()+": key mismatch")
		}
		for _, pr := range r.Probes {
			probes++
			p.Ping = max(p.Ping, pr.Duration)
			if pr.OK {
				passed++
				continue
			}
			fails = append(fails, r.Target.String()+" "+r.ProbeLabel(pr)+": "+pr.Error)
		}
	}
	if p.Up {
		p.Msg = fmt.Sprintf("%d of %d targets ok; %d of %d probes passed", len(results), len(results), passed, probes)
	} else {
		p.Msg = strings.Join(fails, "; ")
		if p.Msg == "" {
			p.Msg = "check failed"
		}
	}
	p.Msg = textsafe.Escape(p.Msg)
	if len(p.Msg) > maxKumaMsg {
		// Cut on a character boundary: escaped text may hold UTF-8.
		p.Msg = strings.ToValidUTF8(p.Msg[:maxKumaMsg-3], "") + "..."
	}
	return p
}

// Status is the push's status parameter: up or down.
func (p KumaPush) Status() string {
	if p.Up {
		return "up"
	}
	return "down"
}

// URL is u with the push's status, msg and ping.
func (p KumaPush) URL(u *url.URL) *url.URL {
	out := *u
	q := u.Query()
	q.Set("status", p.Status())
	q.Set("msg", p.Msg)
	q.Set("ping", strconv.FormatFloat(float64(p.Ping.Microseconds())/1000, 'f', -1, 64))
	out.RawQuery = q.Encode()
	return &out
}

// KumaError is a push Kuma (or whatever answered) did not accept.
type KumaError struct {
	Status int
	// Msg is Kuma's own reason ("Monitor not found or not active."),
	// escaped; "" when the answer was not Kuma's JSON.
	Msg string
}

func (e *KumaError) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("the push was refused (HTTP %d): %s", e.Status, e.Msg)
	}
	return fmt.Sprintf("the push was refused (HTTP %d, not an Uptime Kuma answer)", e.Status)
}

// KumaClient is the HTTP client for pushes: Go's defaults, but Kuma's
// answer headers bounded to 64 KiB (the default allows 1 MiB) since the
// answer is a few bytes. ctx bounds each push.
func KumaClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxResponseHeaderBytes = 64 << 10
	return &http.Client{Transport: tr}
}

// Push sends p to the push URL u with client, bounded by ctx. Only the
// first 4 KiB of the answer are read.
func (p KumaPush) Push(ctx context.Context, client *http.Client, u *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL(u).String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "rdctl")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries the monitor's token: not in messages
		}
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKumaReply))
	if err != nil {
		return err
	}
	var ans struct {
		OK  *bool  `json:"ok"`
		Msg string `json:"msg"`
	}
	isKuma := json.Unmarshal(body, &ans) == nil && ans.OK != nil
	if resp.StatusCode == http.StatusOK && isKuma && *ans.OK {
		return nil
	}
	e := &KumaError{Status: resp.StatusCode}
	if isKuma {
		e.Msg = textsafe.Escape(ans.Msg)
	}
	return e
}
