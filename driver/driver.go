// Package driver implements the `rocketmq` Nomad task driver: Nomad's docker
// driver, wrapped so that a RocketMQ name server or broker is made reachable
// (EIP, ULB, advertised address) before its container starts.
package driver

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/drivers/docker"
	"github.com/hashicorp/nomad/drivers/shared/eventer"
	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/hashicorp/nomad/plugins/shared/hclspec"
	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"

	"github.com/rmqnomad/rocketmq-nomad-driver/version"
)

// PluginName is the name jobs use: `driver = "rocketmq"`.
const PluginName = "rocketmq"

// Labels put on every container this driver starts. The reaper only ever
// removes containers carrying labelDriver, and only those of its own node.
const (
	labelDriver  = "com.github.rmqnomad.driver"
	labelNodeID  = "com.github.rmqnomad.node_id"
	labelCluster = "com.github.rmqnomad.cluster"
	labelRole    = "com.github.rmqnomad.role"
)

// Driver is the rocketmq driver. It embeds Nomad's docker driver, which does
// all container work; Driver adds the rocketmq block, its own state envelope,
// fingerprint attributes, events and a label-scoped dangling-container reaper.
type Driver struct {
	*docker.Driver

	ctx    context.Context
	logger hclog.Logger
	events *eventer.Eventer

	mu       sync.RWMutex
	config   *PluginConfig
	reaper   *reaper
	services bool // nsaddr and metrics servers started (once per process)
	tasks    map[string]*taskRecord
	nodes    map[string]struct{} // node ids of every task seen (reaper scope)
	metrics  *metrics
	cloud    *cloud // nil when UCloud is not configured
	cloudErr error  // why the ucloud config is unusable
	// inlineSecrets names the secrets set inline in the plugin config
	// ("ucloud.private_key,consul.token"), never their values.
	inlineSecrets string
	// desiredConsul reads brokers' desired state and NameServer lists
	// (brokerstate.go); built on first use.
	desiredConsul    *consulapi.Client
	desiredConsulErr error
}

// New returns the driver. ctx is cancelled when the plugin shuts down.
func New(ctx context.Context, logger hclog.Logger) *Driver {
	logger = logger.Named(PluginName)
	dd, ok := docker.NewDockerDriver(ctx, logger).(*docker.Driver)
	if !ok {
		// NewDockerDriver has returned *docker.Driver since Nomad 0.9; this
		// only fails if the dependency is replaced by something else.
		panic("docker.NewDockerDriver did not return *docker.Driver")
	}
	return &Driver{
		Driver:  dd,
		ctx:     ctx,
		logger:  logger,
		events:  eventer.NewEventer(ctx, logger),
		config:  &PluginConfig{},
		tasks:   make(map[string]*taskRecord),
		nodes:   make(map[string]struct{}),
		metrics: newMetrics(),
	}
}

// PluginInfo names the plugin `rocketmq`.
func (d *Driver) PluginInfo() (*base.PluginInfoResponse, error) {
	return &base.PluginInfoResponse{
		Type:              base.PluginTypeDriver,
		PluginApiVersions: []string{drivers.ApiVersion010},
		PluginVersion:     version.Version,
		Name:              PluginName,
	}, nil
}

// ConfigSchema is our plugin config with docker's own schema nested as the
// `docker` block.
func (d *Driver) ConfigSchema() (*hclspec.Spec, error) {
	ds, err := d.Driver.ConfigSchema()
	if err != nil {
		return nil, fmt.Errorf("failed to get docker config schema: %w", err)
	}
	return pluginConfigSpec(ds), nil
}

// TaskConfigSchema is docker's task schema plus the `rocketmq` block.
func (d *Driver) TaskConfigSchema() (*hclspec.Spec, error) {
	ds, err := d.Driver.TaskConfigSchema()
	if err != nil {
		return nil, fmt.Errorf("failed to get docker task schema: %w", err)
	}
	obj := ds.GetObject()
	if obj == nil {
		return nil, fmt.Errorf("docker task schema is not an object")
	}
	attrs := make(map[string]*hclspec.Spec, len(obj.Attributes)+1)
	for k, v := range obj.Attributes {
		attrs[k] = v
	}
	attrs["rocketmq"] = rocketmqTaskSpec
	return hclspec.NewObject(attrs), nil
}

// SetConfig splits our config from the docker block and configures both.
func (d *Driver) SetConfig(c *base.Config) error {
	ds, err := d.Driver.ConfigSchema()
	if err != nil {
		return fmt.Errorf("failed to get docker config schema: %w", err)
	}
	ours, dockerRaw, rc, err := splitPluginConfig(c.PluginConfig, ds)
	if err != nil {
		return err
	}
	ours, inline, err := resolveSecrets(ours)
	if err != nil {
		return err
	}
	if err := d.Driver.SetConfig(&base.Config{PluginConfig: dockerRaw, AgentConfig: c.AgentConfig}); err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	endpoint, tls, err := dockerEndpoint(dockerRaw)
	if err != nil {
		return err
	}

	rs, err := parseReconcile(ours, os.Getenv)
	if err != nil {
		return err
	}
	var cl *cloud
	var clErr error
	if uc := resolveUCloud(ours.UCloud, os.Getenv); uc != nil {
		cl, clErr = newCloud(d.logger.Named("ucloud"), uc, ours.Consul, rs, d.metrics)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	d.config = ours
	d.cloud, d.cloudErr = cl, clErr
	d.inlineSecrets = strings.Join(inline, ",")
	if runsTasks(c) {
		// Only the plugin instance that runs tasks warns; the loader's
		// validation instances would say it again.
		warnInlineSecrets(d.logger, inline)
	}
	if d.reaper == nil {
		d.reaper = newReaper(d.ctx, d.logger, rc, endpoint, tls, d.trackedContainers, d.knownNodes)
	}
	// Only the instance that runs tasks starts the servers.
	if runsTasks(c) && !d.services {
		if ours.NSAddr != nil && ours.NSAddr.Enabled {
			if err := d.startNSAddr(ours.NSAddr, ours.Consul); err != nil {
				return err
			}
		}
		if cl != nil {
			go d.reconcileLoop(d.ctx, rs.Interval)
			if rs.CollectInterval > 0 {
				d.startCollector(cl, rs.CollectInterval)
			}
		}
		if ours.MetricsListen != "" {
			if err := d.metrics.serve(d.ctx, d.logger, ours.MetricsListen); err != nil {
				return fmt.Errorf("metrics_listen: failed to listen on %q: %w", ours.MetricsListen, err)
			}
		}
		d.services = true
	}
	return nil
}

// runsTasks tells the SetConfig of the plugin instance that runs tasks from
// the plugin loader's validation calls (made in short-lived instances at
// agent start). Both arrive with an AgentConfig (the gRPC server always
// builds one); only the former carries the client's driver settings.
func runsTasks(c *base.Config) bool {
	return c.AgentConfig != nil && c.AgentConfig.Driver != nil
}

// Fingerprint reports docker's health and attributes under driver.rocketmq.*
// (never driver.docker*, which the scheduler reserves for the docker driver),
// plus UCloud's state as attributes (never as the driver's health).
func (d *Driver) Fingerprint(ctx context.Context) (<-chan *drivers.Fingerprint, error) {
	in, err := d.Driver.Fingerprint(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.RLock()
	if d.reaper != nil {
		d.reaper.Start()
	}
	d.mu.RUnlock()

	out := make(chan *drivers.Fingerprint)
	go d.fingerprintLoop(ctx, in, out)
	return out, nil
}

// translateFingerprint re-prefixes docker's attributes and explains an
// unhealthy docker engine in our terms.
func translateFingerprint(fp *drivers.Fingerprint) *drivers.Fingerprint {
	out := &drivers.Fingerprint{
		Attributes:        make(map[string]*pstructs.Attribute, len(fp.Attributes)+2),
		Health:            fp.Health,
		HealthDescription: fp.HealthDescription,
	}
	for k, v := range fp.Attributes {
		switch {
		case k == "driver.docker":
		case strings.HasPrefix(k, "driver.docker."):
			out.Attributes["driver.rocketmq.docker."+strings.TrimPrefix(k, "driver.docker.")] = v
		default:
			out.Attributes[k] = v
		}
	}
	if fp.Health == drivers.HealthStateHealthy {
		out.Attributes["driver.rocketmq"] = pstructs.NewBoolAttribute(true)
		out.Attributes["driver.rocketmq.version"] = pstructs.NewStringAttribute(version.Version)
	} else {
		out.HealthDescription = fmt.Sprintf("docker engine unavailable: %s; the rocketmq driver runs tasks as Docker containers, check that dockerd runs and the plugin's docker.endpoint", fp.HealthDescription)
	}
	return out
}

// TaskEvents merges docker's events with ours.
func (d *Driver) TaskEvents(ctx context.Context) (<-chan *drivers.TaskEvent, error) {
	dockerEvents, err := d.Driver.TaskEvents(ctx)
	if err != nil {
		return nil, err
	}
	ourEvents, err := d.events.TaskEvents(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan *drivers.TaskEvent)
	var wg sync.WaitGroup
	forward := func(in <-chan *drivers.TaskEvent) {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}
	wg.Add(2)
	go forward(dockerEvents)
	go forward(ourEvents)
	go func() { wg.Wait(); close(out) }()
	return out, nil
}

// emit sends one of our task events; a failure to emit is only logged.
func (d *Driver) emit(cfg *drivers.TaskConfig, msg string, annotations map[string]string) {
	ev := &drivers.TaskEvent{
		Timestamp:   time.Now(),
		TaskID:      cfg.ID,
		TaskName:    cfg.Name,
		AllocID:     cfg.AllocID,
		Message:     msg,
		Annotations: annotations,
	}
	if err := d.events.EmitEvent(ev); err != nil {
		d.logger.Warn("failed to emit task event", "task_id", cfg.ID, "error", err)
	}
}
