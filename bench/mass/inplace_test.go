package mass

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// inPlace retries, in place, the calls UCloud refused for going too fast
// (ucloudapi.IsThrottled): such a call was not carried out, so sending it
// again needs no re-read, and the read that led to it is not wasted. It
// waits between Initial and 2 x Initial, doubling up to Max, until the call
// passes or the context (the binder's operation deadline) ends. It is the
// change this benchmark proposes for the binders or the API client; here it
// wraps the client from outside.
type inPlace struct {
	api          *ucloudapi.Client
	initial, max time.Duration
}

func (r inPlace) do(ctx context.Context, call func() error) error {
	wait := r.initial
	for {
		err := call()
		if !ucloudapi.IsThrottled(err) {
			return err
		}
		if !ucloudapi.Sleep(ctx, wait+rand.N(wait)) {
			return err
		}
		wait = min(2*wait, r.max)
	}
}

func (r inPlace) DescribeEIP(ctx context.Context, id string) (e *ucloudapi.EIP, err error) {
	err = r.do(ctx, func() error { e, err = r.api.DescribeEIP(ctx, id); return err })
	return e, err
}

func (r inPlace) BindEIP(ctx context.Context, eipID, uhostID string) error {
	return r.do(ctx, func() error { return r.api.BindEIP(ctx, eipID, uhostID) })
}

func (r inPlace) UnBindEIP(ctx context.Context, eipID, uhostID string) error {
	return r.do(ctx, func() error { return r.api.UnBindEIP(ctx, eipID, uhostID) })
}

func (r inPlace) DescribeVServer(ctx context.Context, ulbID, vserverID string) (bs []ucloudapi.Backend, err error) {
	err = r.do(ctx, func() error { bs, err = r.api.DescribeVServer(ctx, ulbID, vserverID); return err })
	return bs, err
}

func (r inPlace) AllocateBackend(ctx context.Context, ulbID, vserverID, uhostID string, port int) (id string, err error) {
	err = r.do(ctx, func() error { id, err = r.api.AllocateBackend(ctx, ulbID, vserverID, uhostID, port); return err })
	return id, err
}

func (r inPlace) ReleaseBackend(ctx context.Context, ulbID, backendID string) error {
	return r.do(ctx, func() error { return r.api.ReleaseBackend(ctx, ulbID, backendID) })
}
