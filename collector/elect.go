package collector

import (
	"context"
	"math/rand/v2"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// RunElected runs a pass every interval (jittered by up to 20%) while this
// process holds the Consul lock at key, so that one collector acts per
// Consul cluster. It returns when ctx ends. Losing the lock (this agent's
// node fails its health check, or Consul is unreachable) stops the passes
// until the lock is won again.
func (c *Collector) RunElected(ctx context.Context, client *consulapi.Client, key string, interval time.Duration) {
	lock, err := client.LockOpts(&consulapi.LockOptions{
		Key:          key,
		SessionName:  "rmq-driver collector",
		SessionTTL:   "15s",
		LockWaitTime: 5 * time.Second,
	})
	if err != nil {
		c.log.Error("cannot create the collector's consul lock", "key", key, "error", err)
		return
	}
	for ctx.Err() == nil {
		lost, err := lock.Lock(ctx.Done())
		if err != nil || lost == nil {
			if err != nil {
				c.log.Debug("collector lock not acquired", "key", key, "error", err)
			}
			if !sleep(ctx, jitter(interval)) {
				return
			}
			continue
		}
		c.log.Info("this client runs the binding collector", "key", key)
		c.lead(ctx, lost, interval)
		_ = lock.Unlock()
	}
}

// lead runs passes until the lock is lost or ctx ends.
func (c *Collector) lead(ctx context.Context, lost <-chan struct{}, interval time.Duration) {
	for {
		pctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lost:
				cancel()
			case <-pctx.Done():
			}
		}()
		rep, err := c.Once(pctx)
		cancel()
		if err != nil {
			c.log.Warn("binding collector pass failed", "error", err)
		} else if len(rep.Collected) > 0 || rep.Failed > 0 || len(rep.Clusters) > 0 {
			c.log.Info("binding collector pass", "records", rep.Records, "collected", len(rep.Collected),
				"failed", rep.Failed, "orphans", rep.Orphans, "clusters_released", len(rep.Clusters))
		}
		select {
		case <-ctx.Done():
			return
		case <-lost:
			c.log.Warn("binding collector lost its consul lock")
			return
		case <-time.After(jitter(interval)):
		}
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
