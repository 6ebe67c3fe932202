package reconcile

import (
	"context"
	"errors"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// Defaults of Polling.
const (
	DefaultPollInterval = 25 * time.Millisecond
	DefaultMaxPolls     = 20
	maxPollWait         = time.Second
)

// ErrNotYet is Polling.Until's error when the polls ran out.
var ErrNotYet = errors.New("not visible yet")

// Polling bounds the describes that wait for a change to show (a bind, a
// new backend, a release): describes may lag behind changes.
type Polling struct {
	// Interval is the first wait between two polls; it doubles up to 1s.
	Interval time.Duration
	// Max bounds the polls.
	Max int
}

// WithDefaults fills the zero (or negative) fields.
func (p Polling) WithDefaults() Polling {
	if p.Interval <= 0 {
		p.Interval = DefaultPollInterval
	}
	if p.Max <= 0 {
		p.Max = DefaultMaxPolls
	}
	return p
}

// Until calls check, at once and then after each wait, until it reports
// done (nil), fails (its error), ctx ends (ctx.Err()) or p.Max calls were
// made (ErrNotYet).
func (p Polling) Until(ctx context.Context, check func(ctx context.Context) (bool, error)) error {
	wait := p.Interval
	for i := 0; i < p.Max; i++ {
		done, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if i == p.Max-1 {
			break
		}
		if !ucloudapi.Sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, maxPollWait)
	}
	return ErrNotYet
}
