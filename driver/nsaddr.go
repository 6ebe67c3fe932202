package driver

import (
	"fmt"
	"net"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/nsaddr"
)

// nsaddrConfig turns the plugin's nsaddr and consul blocks into the
// endpoint's config.
func nsaddrConfig(n *NSAddrConfig, c *ConsulConfig) (nsaddr.Config, error) {
	cfg := nsaddr.Config{
		Listen:             n.Listen,
		DefaultCluster:     n.DefaultCluster,
		ServiceNamePattern: n.ServiceName,
		IncludeIPv6:        n.IPv6,
	}
	if cfg.Listen == "" {
		cfg.Listen = ":8080"
	}
	if n.StaleAfter != "" {
		d, err := time.ParseDuration(n.StaleAfter)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("nsaddr.stale_after: %q is not a positive duration, e.g. \"5m\"", n.StaleAfter)
		}
		cfg.StaleAfter = d
	}
	if n.IdleTimeout != "" {
		d, err := time.ParseDuration(n.IdleTimeout)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("nsaddr.idle_timeout: %q is not a positive duration, e.g. \"10m\"", n.IdleTimeout)
		}
		cfg.IdleTimeout = d
	}
	if c != nil {
		cfg.Consul = nsaddr.ConsulConfig{
			Address:    c.Address,
			Token:      c.Token,
			TokenFile:  c.TokenFile,
			Scheme:     c.Scheme,
			Datacenter: c.Datacenter,
			CAFile:     c.CAFile,
			CertFile:   c.CertFile,
			KeyFile:    c.KeyFile,
		}
	}
	return cfg, nil
}

// startNSAddr serves the NameServer address endpoint from the plugin
// process until the plugin stops.
func (d *Driver) startNSAddr(n *NSAddrConfig, c *ConsulConfig) error {
	cfg, err := nsaddrConfig(n, c)
	if err != nil {
		return err
	}
	srv, err := nsaddr.New(d.logger.Named("nsaddr"), cfg)
	if err != nil {
		return fmt.Errorf("nsaddr: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("nsaddr.listen: failed to listen on %q: %w", cfg.Listen, err)
	}
	go func() {
		if err := srv.Serve(d.ctx, ln); err != nil {
			d.logger.Error("nameserver address endpoint stopped", "error", err)
		}
	}()
	d.logger.Info("serving nameserver addresses", "addr", ln.Addr().String())
	return nil
}
