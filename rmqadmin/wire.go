// Package rmqadmin makes the few RocketMQ admin calls the driver and the
// tests need (topic and subscription group tables of a broker, creating
// them, a broker's config, a topic's route on a NameServer) over RocketMQ's
// own remoting protocol, without a client instance, its goroutines or its
// global state. One TCP connection per call: these calls are rare.
//
// The frame, as RocketMQ 5.3.3 writes it (remoting RemotingCommand.encode
// and NettyDecoder, a LengthFieldBasedFrameDecoder(max, 0, 4, 0, 4)):
//
//	int32 length            4 + header length + body length, big endian
//	int32 header mark       serialize type << 24 | header length (JSON = 0)
//	header                  JSON: code, language, version, opaque, flag, remark, extFields
//	body                    the rest
//
// Bit 0 of flag marks a response; a response carries its request's opaque.
package rmqadmin

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Version is the protocol version sent with every request: RocketMQ
// 5.3.3's MQVersion.CURRENT_VERSION (the ordinal of V5_3_3). NameServers
// answer requests of version V4_9_4 (401) and later with standard JSON
// (ClientRequestProcessor.getRouteInfoByTopic).
const Version = 479

// maxFrame bounds a frame we read (RocketMQ's default
// com.rocketmq.remoting.frameMaxLength is 16 MiB).
const maxFrame = 16 << 20

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 5 * time.Second

var opaques atomic.Int32

// header is a RemotingCommand's JSON header.
type header struct {
	Code      int               `json:"code"`
	Language  string            `json:"language"`
	Version   int               `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int               `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
	// SerializeType is what fastjson writes for serializeTypeCurrentRPC.
	SerializeType string `json:"serializeTypeCurrentRPC,omitempty"`
}

const flagResponse = 1

// Response is a RocketMQ response: its code (0 is success), remark, header
// fields and body.
type Response struct {
	Code      int
	Remark    string
	ExtFields map[string]string
	Body      []byte
}

// Error is a response whose code is not success.
type Error struct {
	Addr    string
	Request int
	Code    int
	Remark  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("rocketmq %s: request %d: response code %d: %s", e.Addr, e.Request, e.Code, e.Remark)
}

// Response codes the callers look at (RocketMQ 5.3.3 ResponseCode and
// RemotingSysResponseCode).
const (
	CodeSuccess       = 0
	CodeSystemError   = 1
	CodeTopicNotExist = 17
)

// IsCode reports whether err is a response with the given code.
func IsCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Invoke sends one request to addr (host:port) and returns its response.
// A non-success response code is an *Error; the Response is returned too.
func Invoke(ctx context.Context, addr string, code int, ext map[string]string, body []byte) (*Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rocketmq %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	opaque := opaques.Add(1)
	if err := writeFrame(conn, header{
		Code: code, Language: "GO", Version: Version, Opaque: opaque, ExtFields: ext, SerializeType: "JSON",
	}, body); err != nil {
		return nil, fmt.Errorf("rocketmq %s: request %d: %w", addr, code, ctxErr(ctx, err))
	}
	for {
		h, b, err := readFrame(conn)
		if err != nil {
			return nil, fmt.Errorf("rocketmq %s: request %d: %w", addr, code, ctxErr(ctx, err))
		}
		if h.Flag&flagResponse == 0 || h.Opaque != opaque {
			continue // a request from the server, or someone else's answer
		}
		resp := &Response{Code: h.Code, Remark: h.Remark, ExtFields: h.ExtFields, Body: b}
		if h.Code != CodeSuccess {
			return resp, &Error{Addr: addr, Request: code, Code: h.Code, Remark: h.Remark}
		}
		return resp, nil
	}
}

// ctxErr prefers the context's error to the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	// The connection's deadline is the context's: it may fire a moment
	// before the context reports it.
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

func writeFrame(w io.Writer, h header, body []byte) error {
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	buf := make([]byte, 8, 8+len(hb)+len(body))
	binary.BigEndian.PutUint32(buf[0:4], uint32(4+len(hb)+len(body)))
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(hb))&0x00FFFFFF) // JSON: type 0
	buf = append(buf, hb...)
	buf = append(buf, body...)
	_, err = w.Write(buf)
	return err
}

func readFrame(r io.Reader) (header, []byte, error) {
	var h header
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return h, nil, err
	}
	length := binary.BigEndian.Uint32(pre[0:4])
	mark := binary.BigEndian.Uint32(pre[4:8])
	if length < 4 || length > maxFrame {
		return h, nil, fmt.Errorf("bad frame length %d", length)
	}
	if t := mark >> 24; t != 0 {
		return h, nil, fmt.Errorf("header serialize type %d is not JSON (0)", t)
	}
	hlen := mark & 0x00FFFFFF
	if hlen > length-4 {
		return h, nil, fmt.Errorf("bad header length %d in a frame of %d", hlen, length)
	}
	rest := make([]byte, length-4)
	if _, err := io.ReadFull(r, rest); err != nil {
		return h, nil, err
	}
	if err := json.Unmarshal(rest[:hlen], &h); err != nil {
		return h, nil, fmt.Errorf("bad header: %w", err)
	}
	return h, rest[hlen:], nil
}
