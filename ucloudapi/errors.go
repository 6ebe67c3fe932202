package ucloudapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	uerr "github.com/ucloud/ucloud-sdk-go/ucloud/error"
)

// ErrNotFound is wrapped by errors about a resource that does not exist: an
// EIP or UHost absent from a describe, a ULB, VServer or backend answered
// with RetCode 4103 or 4086.
var ErrNotFound = errors.New("not found")

// RetCodes this package gives a meaning to. UCloud documents most codes only
// per product; these are the ones the project relies on (see DESIGN.md and
// docs/binding.md).
const (
	retCodeServiceUnavailable = 150
	// retCodeRateLimited is UCloud's "API 请求被限流": the API gateway
	// throttled the account. Worth retrying after a wait (the SDK itself
	// only retries codes >= 2000, so it never retries this one).
	retCodeRateLimited        = 153
	retCodeMissingSignature   = 170
	retCodeSignatureError     = 171
	retCodeUserNotExists      = 172
	retCodeParamsNotAvailable = 230
	retCodeProjectNotExists   = 292
	retCodeULBNotFound        = 4103
	retCodeULBNotFoundAlt     = 4086
	retCodeEIPOperationFailed = 8039
)

// permanentCode reports RetCodes >= 2000 that retrying the same call cannot
// fix: the resource does not exist, or its state forbids the operation (the
// binders re-read and decide again instead of repeating the call).
func permanentCode(code int) bool {
	switch code {
	case retCodeULBNotFound, retCodeULBNotFoundAlt, retCodeEIPOperationFailed:
		return true
	}
	return false
}

// Error is a failed UCloud API call. Its text names what was being done and
// the resource ids, then UCloud's RetCode or HTTP status and message. It never
// holds a key or a signature: messages are scrubbed of the configured keys.
type Error struct {
	// Op is what was being done, e.g. "bind eip eip-x to uhost uhost-y".
	Op string
	// Action is the API action, e.g. "BindEIP".
	Action string
	// RetCode is UCloud's RetCode (0 when the call failed before a reply).
	RetCode int
	// HTTPStatus is the HTTP status of a non-200 reply (0 otherwise).
	HTTPStatus int
	// Message is UCloud's message or the transport failure.
	Message string
	// Timeout is set when the call ran out of time.
	Timeout bool

	retryable bool
	err       error // ErrNotFound, a context error, or nil
}

func (e *Error) Error() string {
	switch {
	case e.RetCode != 0:
		return fmt.Sprintf("%s: ucloud RetCode %d: %s", e.Op, e.RetCode, e.Message)
	case e.HTTPStatus != 0:
		return fmt.Sprintf("%s: ucloud HTTP status %d: %s", e.Op, e.HTTPStatus, e.Message)
	default:
		return fmt.Sprintf("%s: %s", e.Op, e.Message)
	}
}

// Unwrap returns ErrNotFound for missing resources, the context's error when
// the caller's context ended, or nil.
func (e *Error) Unwrap() error { return e.err }

// Retryable reports whether repeating the call may succeed.
func (e *Error) Retryable() bool { return e.retryable }

// IsRetryable reports whether err is worth retrying: call timeouts, network
// failures, HTTP 429 and 5xx, RetCode 150 (service unavailable), RetCode 153
// (throttled) and transient RetCodes >= 2000. It
// is false for nil, for a context that ended, for missing resources, invalid
// parameters, signature and key errors (170-172), unknown projects, and for
// state conflicts such as an EIP bound to another resource (RetCode 8039).
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.retryable
	}
	return false
}

// IsThrottled reports whether err says the call was refused for going too
// fast: RetCode 153 (UCloud's API gateway throttled the account) or HTTP 429.
// Such a call was not carried out; repeating it helps only after a wait, and
// calling faster makes it worse. Throttled errors are also retryable.
func IsThrottled(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.RetCode == retCodeRateLimited || (e.RetCode == 0 && e.HTTPStatus == 429)
	}
	return false
}

// IsNotFound reports whether err says the resource does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// RetCode returns the UCloud RetCode carried by err, or 0.
func RetCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.RetCode
	}
	return 0
}

// IsAccountError reports whether err says the account settings are wrong:
// a missing or bad signature, an unknown key or user (RetCode 170-172), or an
// unknown project (292). Retrying cannot help until the config changes.
func IsAccountError(err error) bool {
	switch RetCode(err) {
	case retCodeMissingSignature, retCodeSignatureError, retCodeUserNotExists, retCodeProjectNotExists:
		return true
	}
	return false
}

// retryableCode classifies a RetCode.
func retryableCode(code int) bool {
	switch {
	case code == retCodeServiceUnavailable, code == retCodeRateLimited:
		return true
	case code >= 2000:
		return !permanentCode(code)
	default:
		return false
	}
}

func retryableStatus(status int) bool {
	return status == 429 || status >= 500
}

// newError converts what the SDK returned into an *Error.
// parent is the caller's context, call the per-call one.
func (c *Client) newError(parent, call context.Context, op, action string, err error) *Error {
	e := &Error{Op: op, Action: action}
	switch {
	case parent.Err() != nil:
		// The caller gave up (or its deadline passed): not ours to retry.
		e.Message = "gave up: " + parent.Err().Error()
		e.Timeout = errors.Is(parent.Err(), context.DeadlineExceeded)
		e.err = parent.Err()
		return e
	case call.Err() != nil:
		e.Message = fmt.Sprintf("no reply within the call timeout of %s", c.callTimeout)
		e.Timeout, e.retryable = true, true
		return e
	}
	var se uerr.ServerError
	var ce uerr.ClientError
	switch {
	case errors.As(err, &se) && se.Name() == uerr.ErrRetCode:
		e.RetCode, e.Message = se.Code(), c.scrub(se.Message())
		e.retryable = retryableCode(se.Code())
	case errors.As(err, &se) && se.Name() == uerr.ErrHTTPStatus:
		e.HTTPStatus, e.Message = se.StatusCode(), c.scrub(se.Message())
		e.retryable = retryableStatus(se.StatusCode())
	case errors.As(err, &se):
		// An unreadable or empty body: a proxy or a service hiccup.
		e.Message = "unreadable reply from the ucloud api"
		e.retryable = true
	case errors.As(err, &ce) && isTimeout(ce.OriginError()):
		e.Message = fmt.Sprintf("no reply within the call timeout of %s", c.callTimeout)
		e.Timeout, e.retryable = true, true
	case errors.As(err, &ce):
		e.Message = "request to the ucloud api failed: " + c.scrub(transportMessage(ce.OriginError()))
		// Network failures, and anything else that happened sending: the
		// request may or may not have arrived; the binders re-read first.
		e.retryable = ce.Name() == uerr.ErrNetwork || ce.Name() == uerr.ErrSendRequest
	default:
		e.Message = c.scrub(err.Error())
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// transportMessage keeps the cause of a transport failure and drops the
// request URL around it.
func transportMessage(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}

// scrub removes the configured keys from a message, should a server or a
// proxy ever echo them.
func (c *Client) scrub(s string) string {
	for _, k := range []string{c.privateKey, c.publicKey} {
		if len(k) >= 4 {
			s = strings.ReplaceAll(s, k, "REDACTED")
		}
	}
	return s
}
