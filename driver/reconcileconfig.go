package driver

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/nomadstate"
)

// Defaults of the reconcile settings.
const (
	defaultReconcileInterval = 30 * time.Second
	defaultCollectInterval   = time.Minute
	minReconcileInterval     = time.Second
)

// reconcileSettings are the parsed reconcile_interval, collect_interval and
// nomad block.
type reconcileSettings struct {
	Interval        time.Duration
	CollectInterval time.Duration // 0: no collector on this client
	Nomad           nomadstate.Config
}

// parseReconcile parses and defaults the reconcile settings once, at
// SetConfig. getenv supplies NOMAD_ADDR and NOMAD_TOKEN.
func parseReconcile(c *PluginConfig, getenv func(string) string) (reconcileSettings, error) {
	s := reconcileSettings{Interval: defaultReconcileInterval, CollectInterval: defaultCollectInterval}
	if c.ReconcileInterval != "" {
		d, err := time.ParseDuration(c.ReconcileInterval)
		if err != nil || d < minReconcileInterval {
			return s, fmt.Errorf("reconcile_interval: %q is not a duration of at least 1s, e.g. \"30s\"", c.ReconcileInterval)
		}
		s.Interval = d
	}
	if c.CollectInterval != "" {
		d, err := time.ParseDuration(c.CollectInterval)
		if err != nil || (d != 0 && d < minReconcileInterval) {
			return s, fmt.Errorf("collect_interval: %q is not \"0\" (off) or a duration of at least 1s, e.g. \"1m\"", c.CollectInterval)
		}
		s.CollectInterval = d
	}
	s.Nomad.Address = getenv("NOMAD_ADDR")
	s.Nomad.Token = getenv("NOMAD_TOKEN")
	if n := c.Nomad; n != nil {
		if n.Address != "" {
			s.Nomad.Address = n.Address
		}
		if n.TokenFile != "" {
			b, err := os.ReadFile(n.TokenFile)
			if err != nil {
				return s, fmt.Errorf("nomad.token_file: cannot read %s: %w", n.TokenFile, err)
			}
			tok := strings.TrimSpace(string(b))
			if tok == "" {
				return s, fmt.Errorf("nomad.token_file: %s is empty; put the Nomad ACL token in it", n.TokenFile)
			}
			s.Nomad.Token = tok
		}
	}
	if _, err := nomadstate.New(s.Nomad); err != nil {
		return s, fmt.Errorf("nomad.address: %w", err)
	}
	return s, nil
}
