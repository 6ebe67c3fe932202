package driver

import (
	"context"
	"fmt"
	"sync"
	"time"

	docker "github.com/fsouza/go-dockerclient"
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/plugins/base"
)

// dockerTLS is the docker block's client TLS settings.
type dockerTLS struct {
	Cert string `codec:"cert"`
	Key  string `codec:"key"`
	CA   string `codec:"ca"`
}

// dockerEndpoint reads the endpoint and TLS settings of the docker block.
func dockerEndpoint(dockerRaw []byte) (string, dockerTLS, error) {
	var c struct {
		Endpoint string    `codec:"endpoint"`
		TLS      dockerTLS `codec:"tls"`
	}
	if err := base.MsgPackDecode(dockerRaw, &c); err != nil {
		return "", dockerTLS{}, fmt.Errorf("failed to decode docker config: %w", err)
	}
	return c.Endpoint, c.TLS, nil
}

func newDockerClient(endpoint string, tls dockerTLS) (*docker.Client, error) {
	switch {
	case endpoint == "":
		return docker.NewClientFromEnv()
	case tls.Cert+tls.Key+tls.CA != "":
		return docker.NewTLSClient(endpoint, tls.Cert, tls.Key, tls.CA)
	default:
		return docker.NewClient(endpoint)
	}
}

// reaper removes dangling rocketmq containers: running containers labelled
// by this driver for a node this plugin serves, older than the creation
// grace, that no task of this plugin tracks (left behind, e.g., when a
// client's state was lost). Unlike docker's own reaper it never touches
// containers of the built-in docker driver or of other Nomad clients sharing
// the Docker engine.
type reaper struct {
	ctx      context.Context
	logger   hclog.Logger
	cfg      reaperConfig
	endpoint string
	tls      dockerTLS
	tracked  func() map[string]struct{}
	nodes    func() map[string]struct{}
	once     sync.Once
}

func newReaper(ctx context.Context, logger hclog.Logger, cfg reaperConfig, endpoint string, tls dockerTLS,
	tracked, nodes func() map[string]struct{}) *reaper {
	return &reaper{ctx: ctx, logger: logger.Named("reaper"), cfg: cfg, endpoint: endpoint, tls: tls, tracked: tracked, nodes: nodes}
}

// Start starts the reaper loop once, if enabled.
func (r *reaper) Start() {
	if !r.cfg.Enabled {
		r.logger.Debug("dangling container reaper disabled")
		return
	}
	r.once.Do(func() { go r.loop() })
}

func (r *reaper) loop() {
	delay := r.cfg.Period
	if r.cfg.CreationGrace > delay {
		delay = r.cfg.CreationGrace
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-timer.C:
			ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			if n, err := r.reapOnce(ctx, time.Now()); err != nil {
				r.logger.Warn("failed to remove dangling containers", "error", err)
			} else if n > 0 {
				r.logger.Info("removed dangling containers", "count", n)
			}
			cancel()
			timer.Reset(r.cfg.Period)
		}
	}
}

// reapOnce removes the dangling containers found at now and returns how
// many it removed.
func (r *reaper) reapOnce(ctx context.Context, now time.Time) (int, error) {
	nodes := r.nodes()
	if len(nodes) == 0 {
		// No task seen yet: we cannot tell our node's containers from
		// those of another client sharing this engine.
		return 0, nil
	}
	client, err := newDockerClient(r.endpoint, r.tls)
	if err != nil {
		return 0, fmt.Errorf("failed to create docker client: %w", err)
	}
	list, err := client.ListContainers(docker.ListContainersOptions{
		Context: ctx,
		Filters: map[string][]string{"label": {labelDriver + "=" + PluginName}},
	})
	if err != nil {
		return 0, fmt.Errorf("failed to list containers: %w", err)
	}
	tracked := r.tracked()
	cutoff := now.Add(-r.cfg.CreationGrace).Unix()
	removed := 0
	for _, c := range list {
		if _, ok := tracked[c.ID]; ok {
			continue
		}
		if _, ok := nodes[c.Labels[labelNodeID]]; !ok {
			continue
		}
		if c.Created > cutoff {
			continue
		}
		if r.cfg.DryRun {
			r.logger.Info("found dangling container", "container_id", c.ID)
			continue
		}
		if err := client.RemoveContainer(docker.RemoveContainerOptions{Context: ctx, ID: c.ID, Force: true}); err != nil {
			r.logger.Warn("failed to remove dangling container", "container_id", c.ID, "error", err)
			continue
		}
		r.logger.Info("removed dangling container", "container_id", c.ID)
		removed++
	}
	return removed, nil
}
