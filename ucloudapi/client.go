// Package ucloudapi is a thin adapter from the UCloud Go SDK to the few calls
// the binders need (EIP bind/unbind/describe, ULB backend
// allocate/release/describe, UHost describe), with context deadlines on
// every call, no SDK retries, no SDK logging, and errors that name the
// action, the resource ids and UCloud's RetCode but never a key.
package ucloudapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/ucloud/ucloud-sdk-go/services/uhost"
	"github.com/ucloud/ucloud-sdk-go/services/ulb"
	"github.com/ucloud/ucloud-sdk-go/services/unet"
	"github.com/ucloud/ucloud-sdk-go/ucloud"
	"github.com/ucloud/ucloud-sdk-go/ucloud/auth"
	sdklog "github.com/ucloud/ucloud-sdk-go/ucloud/log"
	"github.com/ucloud/ucloud-sdk-go/ucloud/request"
)

// DefaultCallTimeout bounds one API call when Config.CallTimeout is 0.
const DefaultCallTimeout = 10 * time.Second

// Config says where and as whom to call UCloud.
type Config struct {
	Region     string
	ProjectID  string // empty: the account's default project
	PublicKey  string
	PrivateKey string
	// BaseURL is the API endpoint; empty means https://api.ucloud.cn. Point
	// it at ucloudsim for tests and dry runs.
	BaseURL string
	// CallTimeout bounds every single API call (the caller's context may
	// bound it further); 0 means DefaultCallTimeout.
	CallTimeout time.Duration
	// Logger receives debug logs of the calls (action, ids, outcome, time);
	// nil discards them. Keys and signatures are never logged.
	Logger hclog.Logger
	// ThrottleWait is the first wait before a call UCloud refused for the
	// account's rate limit (RetCode 153, HTTP 429) is sent again, doubling
	// to 2s, jittered, for as long as the caller's context allows: such a
	// call was not carried out, so repeating it as it is is safe. 0 means
	// 100ms; negative turns the in-place retry off (the error is returned).
	ThrottleWait time.Duration
}

// String shows the configuration without its keys.
func (c Config) String() string {
	return fmt.Sprintf("ucloudapi.Config{Region:%q ProjectID:%q BaseURL:%q PublicKey:%s PrivateKey:%s CallTimeout:%s}",
		c.Region, c.ProjectID, c.BaseURL, redact(c.PublicKey), redact(c.PrivateKey), c.CallTimeout)
}

// GoString is String, so %#v does not print the keys either.
func (c Config) GoString() string { return c.String() }

func redact(k string) string {
	if k == "" {
		return `""`
	}
	return "REDACTED"
}

// EIP is an elastic IP as DescribeEIP shows it.
type EIP struct {
	ID  string
	IPs []string
	// Status is "used", "free" or "freeze".
	Status string
	// BoundType and BoundID name the resource it is bound to ("uhost",
	// "uhost-xxx"); both empty when it is free.
	BoundType, BoundID string
	Remark, Tag, Name  string
}

// Backend is a backend (real server) of a ULB VServer.
type Backend struct {
	ID         string
	ResourceID string
	PrivateIP  string
	Port       int
	Enabled    bool
	// Status is the health check state: "healthy" or "unhealthy".
	Status string
}

// Client calls UCloud. It is safe for concurrent use.
type Client struct {
	ucfg        ucloud.Config
	publicKey   string
	privateKey  string
	callTimeout time.Duration
	throttle    time.Duration // first in-place wait of a throttled call; < 0: none
	logger      hclog.Logger
	transport   http.RoundTripper
	sdkLogger   sdklog.Logger
}

// New checks the configuration and builds a client. It does no I/O.
//
// SDK retries are off (MaxRetries 0, and every request is marked not
// retryable): the binders retry themselves, re-reading the state first,
// because a call that failed may have taken effect. The SDK's logrus logger
// is silenced (it would log request failures at Warn).
func New(cfg Config) (*Client, error) {
	var missing []string
	if cfg.Region == "" {
		missing = append(missing, "region")
	}
	if cfg.PublicKey == "" {
		missing = append(missing, "public key")
	}
	if cfg.PrivateKey == "" {
		missing = append(missing, "private key")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ucloud api config: %s not set", strings.Join(missing, ", "))
	}
	if cfg.CallTimeout < 0 {
		return nil, fmt.Errorf("ucloud api config: call timeout %s is negative", cfg.CallTimeout)
	}
	ucfg := ucloud.NewConfig()
	if cfg.BaseURL != "" {
		ucfg.BaseUrl = strings.TrimRight(cfg.BaseURL, "/")
	}
	ucfg.Region = cfg.Region
	ucfg.ProjectId = cfg.ProjectID
	ucfg.MaxRetries = 0
	ucfg.LogLevel = sdklog.PanicLevel
	ucfg.UserAgent = "rocketmq-nomad-driver"
	c := &Client{
		ucfg:        ucfg,
		publicKey:   cfg.PublicKey,
		privateKey:  cfg.PrivateKey,
		callTimeout: cfg.CallTimeout,
		throttle:    cfg.ThrottleWait,
		logger:      cfg.Logger,
		transport:   newTransport(),
		sdkLogger:   silentLogger(),
	}
	if c.callTimeout == 0 {
		c.callTimeout = DefaultCallTimeout
	}
	if c.throttle == 0 {
		c.throttle = 100 * time.Millisecond
	}
	ucfg.Timeout = c.callTimeout
	if c.logger == nil {
		c.logger = hclog.NewNullLogger()
	}
	return c, nil
}

// String never shows the keys.
func (c *Client) String() string {
	return fmt.Sprintf("ucloudapi.Client{region=%s project=%s base_url=%s}", c.ucfg.Region, c.ucfg.ProjectId, c.ucfg.BaseUrl)
}

// GoString is String.
func (c *Client) GoString() string { return c.String() }

// newTransport is a pooled transport shared by all calls of a client.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// ctxTransport sends every request of one call under that call's context,
// which the SDK (it has no context support) cannot do itself.
type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}

// call is one API call in flight: a per-call SDK client bound to a context.
type call struct {
	ctx     context.Context
	cfg     *ucloud.Config
	cred    *auth.Credential
	tr      http.RoundTripper
	timeout time.Duration
	log     sdklog.Logger
}

// prepare sets the call's timeout and turns SDK retries off on a request.
func (k *call) prepare(req request.Common) {
	req.WithRetry(0)
	req.SetRetryable(false)
	req.WithTimeout(k.cfg.Timeout)
}

// do runs one API call: fn gets a fresh SDK client setup (the SDK's clients
// are not safe for concurrent first use and take no context, so each call
// gets its own, sharing the pooled transport) under a context bounded by
// CallTimeout and by ctx.
func (c *Client) do(ctx context.Context, op, action string, fn func(k *call) error) error {
	wait := c.throttle
	for {
		err := c.doOnce(ctx, op, action, fn)
		if wait < 0 || !IsThrottled(err) {
			return err
		}
		// Refused by the account's rate limit, so not carried out: send
		// the very call again once the bucket may have refilled.
		d := wait + rand.N(wait)
		c.logger.Debug("ucloud call throttled, sending it again", "action", action, "op", op, "wait", d)
		if !Sleep(ctx, d) {
			return err
		}
		wait = min(2*wait, maxThrottleWait)
	}
}

// maxThrottleWait caps the in-place wait of a throttled call.
const maxThrottleWait = 2 * time.Second

// doOnce is one attempt of do.
func (c *Client) doOnce(ctx context.Context, op, action string, fn func(k *call) error) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: op, Action: action, Message: "gave up before calling: " + err.Error(),
			Timeout: errors.Is(err, context.DeadlineExceeded), err: err}
	}
	cctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	timeout := c.callTimeout
	if dl, ok := cctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	cfg := c.ucfg
	// The context ends the call; the SDK's own http.Client timeout is only
	// a backstop, set later so it never fires first.
	cfg.Timeout = timeout + time.Second
	cred := auth.NewCredential()
	cred.PublicKey, cred.PrivateKey = c.publicKey, c.privateKey
	k := &call{ctx: cctx, cfg: &cfg, cred: &cred, tr: ctxTransport{ctx: cctx, base: c.transport}, timeout: timeout, log: c.sdkLogger}
	start := time.Now()
	err := fn(k)
	if err == nil {
		c.logger.Debug("ucloud call", "action", action, "op", op, "duration", time.Since(start))
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		e = c.newError(ctx, cctx, op, action, err)
	}
	c.logger.Debug("ucloud call failed", "action", action, "op", op, "ret_code", e.RetCode,
		"http_status", e.HTTPStatus, "retryable", e.retryable, "duration", time.Since(start), "error", e.Message)
	return e
}

func (k *call) unet() *unet.UNetClient {
	cl := unet.NewClient(k.cfg, k.cred)
	cl.SetTransport(k.tr)
	cl.SetLogger(k.log)
	return cl
}

func (k *call) ulb() *ulb.ULBClient {
	cl := ulb.NewClient(k.cfg, k.cred)
	cl.SetTransport(k.tr)
	cl.SetLogger(k.log)
	return cl
}

func (k *call) uhost() *uhost.UHostClient {
	cl := uhost.NewClient(k.cfg, k.cred)
	cl.SetTransport(k.tr)
	cl.SetLogger(k.log)
	return cl
}

// silentLogger is the SDK's logrus logger at panic level writing nowhere:
// the SDK's default logger writes to stdout, which in a Nomad plugin is the
// plugin handshake channel, and its failure messages are not ours to print.
func silentLogger() sdklog.Logger {
	l := sdklog.New()
	l.Out = io.Discard
	l.SetLevel(sdklog.PanicLevel)
	return l
}

// notFound is an *Error wrapping ErrNotFound.
func notFound(op, action, what string) *Error {
	return &Error{Op: op, Action: action, Message: what + " not found", err: ErrNotFound}
}

// DescribeEIP returns the EIP, or an error wrapping ErrNotFound.
func (c *Client) DescribeEIP(ctx context.Context, id string) (*EIP, error) {
	op := "describe eip " + id
	var out *EIP
	err := c.do(ctx, op, "DescribeEIP", func(k *call) error {
		cl := k.unet()
		req := cl.NewDescribeEIPRequest()
		k.prepare(req)
		req.EIPIds = []string{id}
		resp, err := cl.DescribeEIP(req)
		if err != nil {
			return err
		}
		for _, s := range resp.EIPSet {
			if s.EIPId != id {
				continue
			}
			out = eipOf(s)
			return nil
		}
		return notFound(op, "DescribeEIP", "eip "+id)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// describeBatch is how many EIPs one DescribeEIP call asks for (UCloud's
// default page size).
const describeBatch = 20

// DescribeEIPs describes many EIPs in ceil(len(ids)/20) calls. EIPs that do
// not exist are missing from the map.
func (c *Client) DescribeEIPs(ctx context.Context, ids []string) (map[string]*EIP, error) {
	out := make(map[string]*EIP, len(ids))
	for lo := 0; lo < len(ids); lo += describeBatch {
		batch := ids[lo:min(lo+describeBatch, len(ids))]
		op := fmt.Sprintf("describe %d eips (%s, ...)", len(batch), batch[0])
		err := c.do(ctx, op, "DescribeEIP", func(k *call) error {
			cl := k.unet()
			req := cl.NewDescribeEIPRequest()
			k.prepare(req)
			req.EIPIds = batch
			req.Offset, req.Limit = ucloud.Int(0), ucloud.Int(describeBatch)
			resp, err := cl.DescribeEIP(req)
			if err != nil {
				return err
			}
			for _, s := range resp.EIPSet {
				out[s.EIPId] = eipOf(s)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// eipOf converts the SDK's EIP.
func eipOf(s unet.UnetEIPSet) *EIP {
	e := &EIP{ID: s.EIPId, Status: s.Status, Remark: s.Remark, Tag: s.Tag, Name: s.Name,
		BoundType: s.Resource.ResourceType, BoundID: s.Resource.ResourceID}
	if e.BoundID == "" {
		e.BoundID = s.Resource.ResourceId
	}
	for _, a := range s.EIPAddr {
		if a.IP != "" {
			e.IPs = append(e.IPs, a.IP)
		}
	}
	return e
}

// BindEIP binds the EIP to the UHost (ResourceType "uhost").
func (c *Client) BindEIP(ctx context.Context, eipID, uhostID string) error {
	op := fmt.Sprintf("bind eip %s to uhost %s", eipID, uhostID)
	return c.do(ctx, op, "BindEIP", func(k *call) error {
		cl := k.unet()
		req := cl.NewBindEIPRequest()
		k.prepare(req)
		req.EIPId, req.ResourceType, req.ResourceId = ucloud.String(eipID), ucloud.String("uhost"), ucloud.String(uhostID)
		_, err := cl.BindEIP(req)
		return err
	})
}

// UnBindEIP unbinds the EIP from the UHost; UCloud refuses (RetCode 8039)
// when it is not bound to that host.
func (c *Client) UnBindEIP(ctx context.Context, eipID, uhostID string) error {
	op := fmt.Sprintf("unbind eip %s from uhost %s", eipID, uhostID)
	return c.do(ctx, op, "UnBindEIP", func(k *call) error {
		cl := k.unet()
		req := cl.NewUnBindEIPRequest()
		k.prepare(req)
		req.EIPId, req.ResourceType, req.ResourceId = ucloud.String(eipID), ucloud.String("uhost"), ucloud.String(uhostID)
		_, err := cl.UnBindEIP(req)
		return err
	})
}

// DescribeVServer lists the backends of a VServer. A missing ULB or VServer
// (RetCode 4103 or 4086, or an empty answer) is an error wrapping
// ErrNotFound.
func (c *Client) DescribeVServer(ctx context.Context, ulbID, vserverID string) ([]Backend, error) {
	op := fmt.Sprintf("describe vserver %s of ulb %s", vserverID, ulbID)
	var out []Backend
	err := c.do(ctx, op, "DescribeVServer", func(k *call) error {
		cl := k.ulb()
		req := cl.NewDescribeVServerRequest()
		k.prepare(req)
		req.ULBId, req.VServerId = ucloud.String(ulbID), ucloud.String(vserverID)
		resp, err := cl.DescribeVServer(req)
		if err != nil {
			return err
		}
		for _, vs := range resp.DataSet {
			if vs.VServerId != vserverID {
				continue
			}
			out = make([]Backend, 0, len(vs.BackendSet))
			for _, b := range vs.BackendSet {
				status := "healthy"
				if b.Status != 0 {
					status = "unhealthy"
				}
				out = append(out, Backend{ID: b.BackendId, ResourceID: b.ResourceId, PrivateIP: b.PrivateIP,
					Port: b.Port, Enabled: b.Enabled == 1, Status: status})
			}
			return nil
		}
		return notFound(op, "DescribeVServer", fmt.Sprintf("vserver %s of ulb %s", vserverID, ulbID))
	})
	if err != nil {
		return nil, markNotFound(err, retCodeULBNotFound, retCodeULBNotFoundAlt)
	}
	return out, nil
}

// AllocateBackend adds the UHost's port as a backend of the VServer and
// returns the new backend's id.
func (c *Client) AllocateBackend(ctx context.Context, ulbID, vserverID, uhostID string, port int) (string, error) {
	op := fmt.Sprintf("allocate backend uhost %s port %d in vserver %s of ulb %s", uhostID, port, vserverID, ulbID)
	var id string
	err := c.do(ctx, op, "AllocateBackend", func(k *call) error {
		cl := k.ulb()
		req := cl.NewAllocateBackendRequest()
		k.prepare(req)
		req.ULBId, req.VServerId = ucloud.String(ulbID), ucloud.String(vserverID)
		req.ResourceType, req.ResourceId, req.Port = ucloud.String("UHost"), ucloud.String(uhostID), ucloud.Int(port)
		resp, err := cl.AllocateBackend(req)
		if err != nil {
			return err
		}
		if resp.BackendId == "" {
			return &Error{Op: op, Action: "AllocateBackend", Message: "reply has no BackendId", retryable: true}
		}
		id = resp.BackendId
		return nil
	})
	if err != nil {
		return "", markNotFound(err, retCodeULBNotFound, retCodeULBNotFoundAlt)
	}
	return id, nil
}

// ReleaseBackend removes a backend from its ULB. A backend (or ULB) that does
// not exist gives an error wrapping ErrNotFound, which callers releasing it
// can take as done.
func (c *Client) ReleaseBackend(ctx context.Context, ulbID, backendID string) error {
	op := fmt.Sprintf("release backend %s of ulb %s", backendID, ulbID)
	err := c.do(ctx, op, "ReleaseBackend", func(k *call) error {
		cl := k.ulb()
		req := cl.NewReleaseBackendRequest()
		k.prepare(req)
		req.ULBId, req.BackendId = ucloud.String(ulbID), ucloud.String(backendID)
		_, err := cl.ReleaseBackend(req)
		return err
	})
	return markNotFound(err, retCodeULBNotFound, retCodeULBNotFoundAlt)
}

// SetBackendEnabled sets a backend's Enabled flag (UpdateBackendAttribute
// Enabled=1 or 0). A backend (or ULB) that does not exist gives an error
// wrapping ErrNotFound.
func (c *Client) SetBackendEnabled(ctx context.Context, ulbID, backendID string, enabled bool) error {
	op := fmt.Sprintf("enable backend %s of ulb %s", backendID, ulbID)
	flag := 1
	if !enabled {
		op, flag = fmt.Sprintf("disable backend %s of ulb %s", backendID, ulbID), 0
	}
	err := c.do(ctx, op, "UpdateBackendAttribute", func(k *call) error {
		cl := k.ulb()
		req := cl.NewUpdateBackendAttributeRequest()
		k.prepare(req)
		req.ULBId, req.BackendId, req.Enabled = ucloud.String(ulbID), ucloud.String(backendID), ucloud.Int(flag)
		_, err := cl.UpdateBackendAttribute(req)
		return err
	})
	return markNotFound(err, retCodeULBNotFound, retCodeULBNotFoundAlt)
}

// DescribeUHost returns the UHost's private IP (its default private
// address), or an error wrapping ErrNotFound.
func (c *Client) DescribeUHost(ctx context.Context, uhostID string) (string, error) {
	op := "describe uhost " + uhostID
	var ip string
	err := c.do(ctx, op, "DescribeUHostInstance", func(k *call) error {
		cl := k.uhost()
		req := cl.NewDescribeUHostInstanceRequest()
		k.prepare(req)
		req.UHostIds = []string{uhostID}
		resp, err := cl.DescribeUHostInstance(req)
		if err != nil {
			return err
		}
		for _, h := range resp.UHostSet {
			if h.UHostId != uhostID {
				continue
			}
			for _, a := range h.IPSet {
				if a.Type == "Private" && (ip == "" || a.Default == "true") {
					ip = a.IP
				}
			}
			if ip == "" {
				return &Error{Op: op, Action: "DescribeUHostInstance", Message: "uhost " + uhostID + " has no private IP"}
			}
			return nil
		}
		return notFound(op, "DescribeUHostInstance", "uhost "+uhostID)
	})
	if err != nil {
		return "", err
	}
	return ip, nil
}

// markNotFound makes an *Error with one of the codes wrap ErrNotFound.
func markNotFound(err error, codes ...int) error {
	var e *Error
	if !errors.As(err, &e) || e.err != nil {
		return err
	}
	for _, code := range codes {
		if e.RetCode == code {
			e.err = ErrNotFound
			e.retryable = false
		}
	}
	return err
}
