package ucloudapi

import (
	"context"
	"math/rand/v2"
	"time"
)

// RetryPolicy bounds the binders' own retries (the SDK's are off). Zero
// fields take the defaults of DefaultRetryPolicy.
type RetryPolicy struct {
	// Initial is the wait after the first failed attempt.
	Initial time.Duration
	// Max caps the wait between attempts (it doubles from Initial).
	Max time.Duration
	// MaxAttempts bounds the attempts of one operation (each attempt is a
	// full read-compare-act).
	MaxAttempts int
	// Deadline bounds a whole operation (Bind, Register, Release, Verify),
	// waits and calls included.
	Deadline time.Duration
	// Jitter spreads each wait by up to this fraction either way (0.2 =
	// ±20%); 0 means the default, a negative value turns it off.
	Jitter float64
}

// DefaultRetryPolicy is what the zero fields of a RetryPolicy mean.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Initial:     100 * time.Millisecond,
		Max:         2 * time.Second,
		MaxAttempts: 8,
		Deadline:    60 * time.Second,
		Jitter:      0.2,
	}
}

// WithDefaults fills the zero fields from DefaultRetryPolicy.
func (p RetryPolicy) WithDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.Initial <= 0 {
		p.Initial = d.Initial
	}
	if p.Max <= 0 {
		p.Max = d.Max
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.Deadline <= 0 {
		p.Deadline = d.Deadline
	}
	switch {
	case p.Jitter == 0:
		p.Jitter = d.Jitter
	case p.Jitter < 0:
		p.Jitter = 0
	case p.Jitter > 1:
		p.Jitter = 1
	}
	return p
}

// Backoff is the wait after the given failed attempt (1-based).
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if p.Jitter > 0 {
		f := 1 + p.Jitter*(2*rand.Float64()-1)
		d = time.Duration(float64(d) * f)
	}
	return d
}

// Sleep waits d or until ctx ends; it reports whether the wait completed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
