package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/plugins/drivers"
	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// UCloud's state never decides the driver's health: private mode tasks need
// no cloud, and an unhealthy driver blocks every rocketmq placement on the
// node. It is published as fingerprint attributes instead, which public
// mode jobs can constrain on (docs/reference.md).

// Values of driver.rocketmq.ucloud.status.
const (
	ucloudStatusOK            = "ok"            // the last check passed
	ucloudStatusUnreachable   = "unreachable"   // metadata or API failing
	ucloudStatusMisconfigured = "misconfigured" // the ucloud block is wrong: keys, project, region, host
	ucloudStatusUnknown       = "unknown"       // not checked yet (just started)
	ucloudStatusNotConfigured = "not_configured"
)

// Fingerprint attributes about UCloud.
const (
	attrUCloud             = "driver.rocketmq.ucloud"
	attrUCloudStatus       = "driver.rocketmq.ucloud.status"
	attrUCloudFailingSince = "driver.rocketmq.ucloud.failing_since"
	attrUCloudError        = "driver.rocketmq.ucloud.error"
	attrUCloudRegion       = "driver.rocketmq.ucloud.region"
	attrUCloudUHostID      = "driver.rocketmq.ucloud.uhost_id"
)

// Health check cadence, the defaults of cloud.checkEvery and retryEvery.
const (
	// healthCheckInterval is how often UCloud is checked while it works.
	healthCheckInterval = 30 * time.Second
	// healthRetryInterval is the first re-check after a failure; it doubles
	// up to healthCheckInterval while the failures go on.
	healthRetryInterval = 5 * time.Second
	// healthFailThreshold consecutive failed checks change the status: one
	// lost reply never moves it.
	healthFailThreshold = 2
	// healthCheckTimeout bounds one check (metadata and DescribeUHost).
	healthCheckTimeout = 10 * time.Second
)

// cloudHealth is what the fingerprint says about UCloud.
type cloudHealth struct {
	Status       string
	FailingSince time.Time // first failed check of the current run of failures
	Err          string    // the last failure (key-free); "" when ok
}

// healthTracker turns check results into a status that does not flap.
type healthTracker struct {
	reported  cloudHealth
	failures  int // consecutive failed checks
	firstFail time.Time
}

// observe records one check; it reports whether the reported health changed.
func (h *healthTracker) observe(now time.Time, err error) bool {
	prev := h.reported
	if err == nil {
		h.failures, h.firstFail = 0, time.Time{}
		h.reported = cloudHealth{Status: ucloudStatusOK}
		return h.reported != prev
	}
	if h.failures == 0 {
		h.firstFail = now
	}
	h.failures++
	if h.failures < healthFailThreshold {
		return false
	}
	h.reported = cloudHealth{Status: failureStatus(err), FailingSince: h.firstFail, Err: err.Error()}
	return h.reported != prev
}

// next says when to check again: at the normal interval while checks pass,
// sooner after a failure, backing off while failures go on.
func (h *healthTracker) next(every, retry time.Duration) time.Duration {
	if h.failures == 0 {
		return every
	}
	d := retry
	for i := 1; i < h.failures && d < every; i++ {
		d *= 2
	}
	return min(d, every)
}

// errMisconfigured marks check failures that only a config change fixes.
var errMisconfigured = errors.New("ucloud block misconfigured")

func failureStatus(err error) string {
	if errors.Is(err, errMisconfigured) || ucloudapi.IsAccountError(err) {
		return ucloudStatusMisconfigured
	}
	return ucloudStatusUnreachable
}

// checkHealth checks that the metadata service (unless the identity is
// configured or already learned), the credentials and the API work, by
// describing this host.
func (c *cloud) checkHealth(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
	defer cancel()
	id, err := c.Identity(ctx)
	if err != nil {
		return err
	}
	if _, err := c.api.DescribeUHost(ctx, id.UHostID); err != nil {
		if errors.Is(err, ucloudapi.ErrNotFound) {
			return fmt.Errorf("uhost %s not found in region %s project %s: check ucloud.region, ucloud.project_id and ucloud.uhost_id: %w",
				id.UHostID, c.cfg.Region, c.cfg.ProjectID, errMisconfigured)
		}
		return fmt.Errorf("ucloud API check failed: %w", err)
	}
	return nil
}

// checkOnce runs one check and records it. It reports whether the published
// health changed and when to check again.
func (c *cloud) checkOnce(ctx context.Context) (changed bool, next time.Duration) {
	err := c.checkHealth(ctx)
	c.healthMu.Lock()
	changed = c.health.observe(time.Now(), err)
	h := c.health.reported
	next = c.health.next(c.checkEvery, c.retryEvery)
	c.healthMu.Unlock()
	switch {
	case err != nil && !changed:
		c.logger.Debug("ucloud check failed", "error", err, "retry_in", next)
	case changed && h.Status == ucloudStatusOK:
		c.logger.Info("ucloud API reachable")
	case changed:
		c.logger.Warn("ucloud check failing: public/test mode tasks on this node cannot bind; private mode is not affected",
			"status", h.Status, "failing_since", h.FailingSince.UTC().Format(time.RFC3339), "error", h.Err)
	}
	return changed, next
}

// healthNow is the last published health.
func (c *cloud) healthNow() cloudHealth {
	c.healthMu.Lock()
	defer c.healthMu.Unlock()
	return c.health.reported
}

// cachedIdentity is the host identity if already learned (no I/O).
func (c *cloud) cachedIdentity() (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.identity == nil {
		return Identity{}, false
	}
	return *c.identity, true
}

// fingerprintLoop forwards docker's fingerprints with our attributes, and
// sends a fresh one whenever the UCloud health changes. Checks run in their
// own goroutine, so a slow API never delays docker's fingerprint.
func (d *Driver) fingerprintLoop(ctx context.Context, in <-chan *drivers.Fingerprint, out chan<- *drivers.Fingerprint) {
	defer close(out)
	type result struct {
		changed bool
		next    time.Duration
	}
	var last *drivers.Fingerprint
	results := make(chan result, 1)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		send := false
		select {
		case <-ctx.Done():
			return
		case fp, ok := <-in:
			if !ok {
				return
			}
			last, send = fp, true
		case <-timer.C:
			d.mu.RLock()
			c := d.cloud
			d.mu.RUnlock()
			if c == nil {
				timer.Reset(healthCheckInterval)
				continue
			}
			go func() {
				changed, next := c.checkOnce(ctx)
				results <- result{changed, next}
			}()
		case r := <-results:
			timer.Reset(r.next)
			send = r.changed && last != nil
		}
		if !send {
			continue
		}
		select {
		case out <- d.withAttributes(last):
		case <-ctx.Done():
			return
		}
	}
}

// withAttributes turns docker's fingerprint into ours: docker's attributes
// re-prefixed, the config report and UCloud's health. The driver's health
// is docker's alone.
func (d *Driver) withAttributes(fp *drivers.Fingerprint) *drivers.Fingerprint {
	out := translateFingerprint(fp)
	d.mu.RLock()
	c, cErr, inline := d.cloud, d.cloudErr, d.inlineSecrets
	d.mu.RUnlock()
	if inline != "" {
		out.Attributes[inlineSecretsAttr] = pstructs.NewStringAttribute(inline)
	}

	var h cloudHealth
	switch {
	case cErr != nil:
		h = cloudHealth{Status: ucloudStatusMisconfigured, Err: "ucloud config invalid: " + cErr.Error()}
	case c == nil:
		out.Attributes[attrUCloud] = pstructs.NewBoolAttribute(false)
		out.Attributes[attrUCloudStatus] = pstructs.NewStringAttribute(ucloudStatusNotConfigured)
		return out
	default:
		h = c.healthNow()
		out.Attributes[attrUCloudRegion] = pstructs.NewStringAttribute(c.cfg.Region)
		if id, ok := c.cachedIdentity(); ok {
			out.Attributes[attrUCloudUHostID] = pstructs.NewStringAttribute(id.UHostID)
		}
	}
	out.Attributes[attrUCloud] = pstructs.NewBoolAttribute(true)
	out.Attributes[attrUCloudStatus] = pstructs.NewStringAttribute(h.Status)
	if !h.FailingSince.IsZero() {
		// A time, not an age: an age would change, and update the node, on
		// every fingerprint.
		out.Attributes[attrUCloudFailingSince] = pstructs.NewStringAttribute(h.FailingSince.UTC().Format(time.RFC3339))
	}
	if h.Err != "" {
		out.Attributes[attrUCloudError] = pstructs.NewStringAttribute(h.Err)
		if out.Health == drivers.HealthStateHealthy {
			out.HealthDescription = fmt.Sprintf("Healthy; ucloud %s, public/test mode tasks cannot bind on this node (private mode is fine): %s", h.Status, h.Err)
		}
	}
	return out
}
