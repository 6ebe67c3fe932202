package ucloudsim

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// RateLimit is UCloud's API throttling: one token bucket for the whole
// account (every keypair, region, project and action share it). Each
// authenticated API call takes a token; a call that finds the bucket empty
// is answered RetCode 153 (RetCodeRateLimited) in the usual HTTP 200
// envelope, is not carried out, and takes no token. The bucket refills at
// CallsPerSecond up to Burst tokens, and starts full.
//
// Calls refused before authentication (160, 170-172), metadata requests and
// the admin API are not counted. A throttled call never reaches the fault
// rules: they neither see nor count it.
type RateLimit struct {
	// CallsPerSecond is the sustained rate the account may call at (> 0;
	// fractions allowed, e.g. 0.5 is one call every two seconds).
	CallsPerSecond float64 `json:"calls_per_second"`
	// Burst is how many calls may be made at once after a quiet spell (the
	// bucket's size); 0 means one second's worth, ceil(CallsPerSecond).
	Burst int `json:"burst,omitempty"`
	// Message is the reply's Message; empty means DefaultRateLimitMessage.
	Message string `json:"message,omitempty"`
}

// DefaultRateLimitMessage is the Message of a throttled call. UCloud
// documents the code (153, "API 请求被限流") but no public source shows the
// message text its gateway sends: this one is the simulator's.
const DefaultRateLimitMessage = "API request rate limited"

// maxCallsPerSecond bounds CallsPerSecond and Burst to sane values.
const maxCallsPerSecond = 1e6

// Validate checks the limit.
func (r RateLimit) Validate() error {
	var errs []error
	if math.IsNaN(r.CallsPerSecond) || r.CallsPerSecond <= 0 || r.CallsPerSecond > maxCallsPerSecond {
		errs = append(errs, fmt.Errorf("rate_limit: calls_per_second %v is not in (0, %g]", r.CallsPerSecond, float64(maxCallsPerSecond)))
	}
	if r.Burst < 0 || r.Burst > maxCallsPerSecond {
		errs = append(errs, fmt.Errorf("rate_limit: burst %d is not in [0, %g]", r.Burst, float64(maxCallsPerSecond)))
	}
	return errors.Join(errs...)
}

// burst is the bucket's size.
func (r RateLimit) burst() float64 {
	if r.Burst > 0 {
		return float64(r.Burst)
	}
	return math.Max(1, math.Ceil(r.CallsPerSecond))
}

func (r RateLimit) message() string {
	if r.Message != "" {
		return r.Message
	}
	return DefaultRateLimitMessage
}

// bucket is the account's token bucket. Server.mu guards it.
type bucket struct {
	limit  RateLimit
	tokens float64
	last   time.Time
}

// newBucket returns a full bucket for the limit, or nil when there is none.
func newBucket(r *RateLimit, now time.Time) *bucket {
	if r == nil {
		return nil
	}
	return &bucket{limit: *r, tokens: r.burst(), last: now}
}

// take refills the bucket up to now and takes one token; false when it is
// empty. A nil bucket (no limit) always grants.
func (b *bucket) take(now time.Time) bool {
	if b == nil {
		return true
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = math.Min(b.limit.burst(), b.tokens+dt.Seconds()*b.limit.CallsPerSecond)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// errRateLimited is the reply to a throttled call.
func (b *bucket) errRateLimited() *apiError {
	return &apiError{Code: RetCodeRateLimited, Message: b.limit.message()}
}
