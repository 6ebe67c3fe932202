package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// simPluginConfig is a plugin config for a client that is simtest's
// uhost-a, its identity read from the simulator's metadata.
func simPluginConfig(env *simtest.Env, privateKey string) string {
	return fmt.Sprintf(`
ucloud {
  region            = %q
  project_id        = %q
  public_key        = %q
  private_key       = %q
  base_url          = %q
  metadata_endpoint = %q
  call_timeout      = "2s"
}`, simtest.Region, simtest.Project, simtest.PublicKey, privateKey, env.Sim.URL(), env.Sim.MetadataURL("uhost-a"))
}

func attrString(fp *drivers.Fingerprint, k string) string {
	a, ok := fp.Attributes[k]
	if !ok {
		return ""
	}
	s, _ := a.GetString()
	return s
}

// One failed DescribeUHost must not turn the driver unhealthy: an unhealthy
// driver blocks every rocketmq placement on the node, private mode
// included. Runs the driver's real Fingerprint, docker included.
func TestOneFailedDescribeUHostKeepsDriverHealthy(t *testing.T) {
	env := simtest.Start(t, ucloudsim.Config{Faults: ucloudsim.Faults{Rules: []ucloudsim.FaultRule{
		{Action: "DescribeUHostInstance", HTTPStatus: 503, Count: 1},
	}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(ctx, hclog.NewNullLogger())
	if err := setConfig(t, d, simPluginConfig(env, simtest.PrivateKey)); err != nil {
		t.Fatal(err)
	}
	fps, err := d.Fingerprint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for n := 0; ; n++ {
		var fp *drivers.Fingerprint
		select {
		case fp = <-fps:
		case <-deadline:
			t.Fatalf("no fingerprint with driver.rocketmq.ucloud.status = ok within 30s (DescribeUHostInstance requests: %d)", env.Requests("DescribeUHostInstance"))
		}
		if n == 0 && strings.Contains(fp.HealthDescription, "docker engine unavailable") {
			if os.Getenv("RMQ_REQUIRE_AGENTS") == "1" {
				t.Fatalf("docker is required: %s", fp.HealthDescription)
			}
			t.Skipf("SKIPPED: needs a docker engine: %s", fp.HealthDescription)
		}
		if fp.Health != drivers.HealthStateHealthy {
			t.Fatalf("fingerprint %d is %s after %d DescribeUHostInstance request(s): %s",
				n, fp.Health, env.Requests("DescribeUHostInstance"), fp.HealthDescription)
		}
		status := attrString(fp, attrUCloudStatus)
		if status != ucloudStatusUnknown && status != ucloudStatusOK {
			t.Fatalf("one failed call changed driver.rocketmq.ucloud.status to %q", status)
		}
		if status == ucloudStatusOK {
			break
		}
	}
	if got := env.Requests("DescribeUHostInstance"); got < 2 {
		t.Fatalf("DescribeUHostInstance requests = %d, want the failed one and a passing one", got)
	}
}

// simCloud builds the cloud side against a simulator, checks paced fast.
func simCloud(t *testing.T, env *simtest.Env, privateKey string) *cloud {
	t.Helper()
	c, err := newCloud(hclog.NewNullLogger(), &UCloudConfig{
		Region: simtest.Region, ProjectID: simtest.Project, PublicKey: simtest.PublicKey, PrivateKey: privateKey,
		BaseURL: env.Sim.URL(), MetadataEndpoint: env.Sim.MetadataURL("uhost-a"), CallTimeout: "1s",
	}, nil, reconcileSettings{}, newMetrics())
	if err != nil {
		t.Fatal(err)
	}
	c.checkEvery, c.retryEvery = 200*time.Millisecond, 20*time.Millisecond
	return c
}

// runLoop feeds one healthy docker fingerprint to the driver's fingerprint
// loop and returns its output.
func runLoop(t *testing.T, d *Driver) <-chan *drivers.Fingerprint {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	in := make(chan *drivers.Fingerprint, 1)
	in <- healthyDockerFingerprint()
	out := make(chan *drivers.Fingerprint)
	go d.fingerprintLoop(ctx, in, out)
	return out
}

// waitStatus reads fingerprints until one has the status; every one on the
// way must be healthy.
func waitStatus(t *testing.T, out <-chan *drivers.Fingerprint, want string) *drivers.Fingerprint {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case fp := <-out:
			if fp.Health != drivers.HealthStateHealthy {
				t.Fatalf("driver %s: %s", fp.Health, fp.HealthDescription)
			}
			if attrString(fp, attrUCloudStatus) == want {
				return fp
			}
		case <-deadline:
			t.Fatalf("no fingerprint with status %q", want)
		}
	}
}

func TestCloudOutageIsAnAttributeNotUnhealthy(t *testing.T) {
	env := simtest.Start(t, ucloudsim.Config{})
	c := simCloud(t, env, simtest.PrivateKey)
	d := New(context.Background(), hclog.NewNullLogger())
	d.cloud = c
	out := runLoop(t, d)

	fp := waitStatus(t, out, ucloudStatusOK)
	if attrString(fp, attrUCloudUHostID) != "uhost-a" || attrString(fp, attrUCloudRegion) != simtest.Region {
		t.Fatalf("identity attributes missing: %v", fp.Attributes)
	}
	if _, ok := fp.Attributes[attrUCloudFailingSince]; ok {
		t.Fatalf("failing_since set while ok")
	}

	// The API goes away for good: after the threshold the attribute says
	// so, the driver stays healthy, and the identity learned stays.
	start := time.Now()
	if err := env.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "DescribeUHostInstance", HTTPStatus: 503}}}); err != nil {
		t.Fatal(err)
	}
	fp = waitStatus(t, out, ucloudStatusUnreachable)
	since, err := time.Parse(time.RFC3339, attrString(fp, attrUCloudFailingSince))
	if err != nil || since.Before(start.Add(-time.Second).Truncate(time.Second)) || since.After(time.Now()) {
		t.Fatalf("failing_since = %q (%v), want the first failure after %s", attrString(fp, attrUCloudFailingSince), err, start)
	}
	if e := attrString(fp, attrUCloudError); !strings.Contains(e, "503") {
		t.Fatalf("error attribute = %q, want the cause", e)
	}
	if !strings.Contains(fp.HealthDescription, "unreachable") || !strings.Contains(fp.HealthDescription, "private mode is fine") {
		t.Fatalf("health description = %q", fp.HealthDescription)
	}
	if attrString(fp, attrUCloudUHostID) != "uhost-a" {
		t.Fatalf("learned identity lost during the outage: %v", fp.Attributes)
	}

	// Back: ok again, failing_since and error gone.
	if err := env.Sim.SetFaults(ucloudsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	fp = waitStatus(t, out, ucloudStatusOK)
	for _, k := range []string{attrUCloudFailingSince, attrUCloudError} {
		if _, ok := fp.Attributes[k]; ok {
			t.Fatalf("%s still set after recovery", k)
		}
	}
}

func TestBadKeysAreMisconfiguredNotUnhealthy(t *testing.T) {
	env := simtest.Start(t, ucloudsim.Config{})
	wrong := "wrong-private-key-3e1f"
	d := New(context.Background(), hclog.NewNullLogger())
	d.cloud = simCloud(t, env, wrong)
	fp := waitStatus(t, runLoop(t, d), ucloudStatusMisconfigured)
	for k, v := range fp.Attributes {
		if strings.Contains(v.GoString(), wrong) {
			t.Fatalf("attribute %s leaks the key", k)
		}
	}
	if strings.Contains(fp.HealthDescription, wrong) {
		t.Fatalf("health description leaks the key")
	}
}

func TestCloudAttributesWithoutChecks(t *testing.T) {
	d := New(context.Background(), hclog.NewNullLogger())
	fp := d.withAttributes(healthyDockerFingerprint())
	if fp.Health != drivers.HealthStateHealthy || attrString(fp, attrUCloudStatus) != ucloudStatusNotConfigured {
		t.Fatalf("no ucloud block: %s %v", fp.Health, fp.Attributes)
	}
	if b, _ := fp.Attributes[attrUCloud].GetBool(); b {
		t.Fatalf("driver.rocketmq.ucloud = true without a ucloud block")
	}

	d.cloudErr = errors.New("[ucloud.region] not set: set them in the plugin's ucloud block")
	fp = d.withAttributes(healthyDockerFingerprint())
	if fp.Health != drivers.HealthStateHealthy || attrString(fp, attrUCloudStatus) != ucloudStatusMisconfigured ||
		!strings.Contains(attrString(fp, attrUCloudError), "ucloud.region") {
		t.Fatalf("invalid ucloud block: %s %q %v", fp.Health, fp.HealthDescription, fp.Attributes)
	}
}

func TestHealthTracker(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	h := healthTracker{reported: cloudHealth{Status: ucloudStatusUnknown}}
	transient := errors.New("describe uhost uhost-a: ucloud HTTP status 503")
	account := fmt.Errorf("ucloud API check failed: %w", errMisconfigured)
	steps := []struct {
		at      time.Duration
		err     error
		changed bool
		status  string
		since   time.Duration // -1: unset
		next    time.Duration
	}{
		{0, transient, false, ucloudStatusUnknown, -1, 5 * time.Second}, // one failure at start changes nothing
		{5 * time.Second, nil, true, ucloudStatusOK, -1, 30 * time.Second},
		{35 * time.Second, transient, false, ucloudStatusOK, -1, 5 * time.Second}, // one failure: still ok
		{40 * time.Second, nil, false, ucloudStatusOK, -1, 30 * time.Second},
		{70 * time.Second, transient, false, ucloudStatusOK, -1, 5 * time.Second},
		{75 * time.Second, transient, true, ucloudStatusUnreachable, 70 * time.Second, 10 * time.Second},
		{85 * time.Second, transient, false, ucloudStatusUnreachable, 70 * time.Second, 20 * time.Second},
		{105 * time.Second, account, true, ucloudStatusMisconfigured, 70 * time.Second, 30 * time.Second},
		{135 * time.Second, account, false, ucloudStatusMisconfigured, 70 * time.Second, 30 * time.Second},
		{165 * time.Second, nil, true, ucloudStatusOK, -1, 30 * time.Second},
	}
	for i, s := range steps {
		changed := h.observe(t0.Add(s.at), s.err)
		r := h.reported
		if changed != s.changed || r.Status != s.status {
			t.Fatalf("step %d: changed=%v status=%q, want %v %q", i, changed, r.Status, s.changed, s.status)
		}
		wantSince := time.Time{}
		if s.since >= 0 {
			wantSince = t0.Add(s.since)
		}
		if !r.FailingSince.Equal(wantSince) {
			t.Fatalf("step %d: failing_since %s, want %s", i, r.FailingSince, wantSince)
		}
		if got := h.next(healthCheckInterval, healthRetryInterval); got != s.next {
			t.Fatalf("step %d: next check in %s, want %s", i, got, s.next)
		}
	}
}
