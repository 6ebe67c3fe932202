// Package nomadstate asks the Nomad HTTP API whether allocations and jobs
// still exist: the scheduler is the authority on which allocation of a slot
// should hold its binding. It implements ownership.Liveness.
package nomadstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
)

// ErrNotFound is wrapped by errors for allocations or jobs Nomad does not
// know (never existed, or garbage-collected after they ended).
var ErrNotFound = errors.New("not found in nomad")

// DefaultAddress is the local Nomad agent's HTTP API.
const DefaultAddress = "http://127.0.0.1:4646"

// Config says how to reach Nomad.
type Config struct {
	// Address is the HTTP API base URL; "" means DefaultAddress.
	Address string
	// Token is the ACL token sent as X-Nomad-Token ("" for none).
	Token string
	// Timeout bounds each request; 0 means 5s.
	Timeout time.Duration
	// Transport, when set, sends the requests (tests, TLS set-ups).
	Transport http.RoundTripper
}

// Client reads allocation and job state. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client, or an error naming the bad address.
func New(cfg Config) (*Client, error) {
	addr := cfg.Address
	if addr == "" {
		addr = DefaultAddress
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("nomad address %q is not an http(s) URL such as %s", addr, DefaultAddress)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Client{base: u, token: cfg.Token, http: &http.Client{Timeout: cfg.Timeout, Transport: cfg.Transport}}, nil
}

// Alloc is the part of an allocation liveness needs.
type Alloc struct {
	ID            string
	Namespace     string
	JobID         string
	NodeID        string
	ClientStatus  string
	DesiredStatus string
}

// Terminal reports whether the allocation has ended for good: complete,
// failed or lost. "unknown" (a disconnected client that may come back)
// is not terminal.
func (a Alloc) Terminal() bool {
	switch a.ClientStatus {
	case "complete", "failed", "lost":
		return true
	}
	return false
}

// Alloc returns the allocation; an error wrapping ErrNotFound when Nomad
// does not know it.
func (c *Client) Alloc(ctx context.Context, namespace, id string) (Alloc, error) {
	var a Alloc
	if id == "" {
		return a, fmt.Errorf("read nomad allocation: no id")
	}
	err := c.get(ctx, "/v1/allocation/"+url.PathEscape(id), namespace, &a)
	if err != nil {
		return a, fmt.Errorf("read nomad allocation %s: %w", id, err)
	}
	return a, nil
}

// JobExists reports whether Nomad knows the job (stopped jobs exist until
// they are purged or garbage-collected).
func (c *Client) JobExists(ctx context.Context, namespace, id string) (bool, error) {
	var j struct{ ID string }
	err := c.get(ctx, "/v1/job/"+url.PathEscape(id), namespace, &j)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read nomad job %s: %w", id, err)
	}
	return true, nil
}

// Gone implements ownership.Liveness.
func (c *Client) Gone(ctx context.Context, o ownership.Owner) (bool, string, error) {
	a, err := c.Alloc(ctx, o.Namespace, o.AllocID)
	switch {
	case errors.Is(err, ErrNotFound):
		return true, fmt.Sprintf("allocation %s is unknown to nomad", o.AllocID), nil
	case err != nil:
		return false, "", err
	case a.Terminal():
		return true, fmt.Sprintf("allocation %s is %s", o.AllocID, a.ClientStatus), nil
	}
	return false, fmt.Sprintf("allocation %s is %s (desired %s)", o.AllocID, a.ClientStatus, a.DesiredStatus), nil
}

func (c *Client) get(ctx context.Context, path, namespace string, out any) error {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	if namespace != "" {
		u.RawQuery = url.Values{"namespace": {namespace}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("X-Nomad-Token", c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ask nomad at %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("nomad at %s answered %s: %s", c.base.Host, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode nomad answer from %s: %w", c.base.Host, err)
	}
	return nil
}
