package driver

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/nomadstate"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

// cloud is the UCloud side of the driver, built from the ucloud and consul
// blocks. It is nil when UCloud is not configured; then only private mode
// works.
type cloud struct {
	logger hclog.Logger
	cfg    UCloudConfig
	api    *ucloudapi.Client
	eips   *eipbind.Binder
	ulbs   *ulbbind.Binder
	owners *ownership.Store  // nil without Consul
	consul *consulapi.Client // nil without Consul
	// nomad answers whether an owner's allocation has ended.
	nomad *nomadstate.Client

	mu       sync.Mutex
	identity *Identity

	// checkEvery and retryEvery pace the health checks (cloudhealth.go).
	checkEvery, retryEvery time.Duration

	healthMu sync.Mutex
	health   healthTracker
}

// resolveUCloud fills the ucloud block from the usual UCLOUD_* environment
// variables. It returns nil when neither configures any key.
func resolveUCloud(c *UCloudConfig, getenv func(string) string) *UCloudConfig {
	var out UCloudConfig
	if c != nil {
		out = *c
	}
	fill := func(dst *string, env string) {
		if *dst == "" {
			*dst = getenv(env)
		}
	}
	fill(&out.PublicKey, "UCLOUD_PUBLIC_KEY")
	fill(&out.PrivateKey, "UCLOUD_PRIVATE_KEY")
	fill(&out.Region, "UCLOUD_REGION")
	fill(&out.ProjectID, "UCLOUD_PROJECT_ID")
	fill(&out.BaseURL, "UCLOUD_API_BASE_URL")
	if c == nil && out.PublicKey == "" && out.PrivateKey == "" {
		return nil
	}
	return &out
}

// validateUCloud checks the block; messages name the field, never a key.
func validateUCloud(c *UCloudConfig) error {
	var missing []string
	for _, f := range []struct{ name, val string }{
		{"public_key", c.PublicKey}, {"private_key", c.PrivateKey}, {"region", c.Region},
	} {
		if f.val == "" {
			missing = append(missing, "ucloud."+f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%v not set: set them in the plugin's ucloud block or the UCLOUD_* environment variables", missing)
	}
	for _, f := range []struct{ name, val string }{{"call_timeout", c.CallTimeout}, {"bind_timeout", c.BindTimeout}} {
		if f.val == "" {
			continue
		}
		if d, err := time.ParseDuration(f.val); err != nil || d <= 0 {
			return fmt.Errorf("ucloud.%s: %q is not a positive duration, e.g. \"5s\"", f.name, f.val)
		}
	}
	if err := validateTenants(c); err != nil {
		return err
	}
	if c.MaxAttempts < 0 {
		return fmt.Errorf("ucloud.max_attempts: must be >= 0")
	}
	return nil
}

func durationOr(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d
	}
	return def
}

// consulClient builds a Consul client from the consul block, falling back
// to the CONSUL_* environment variables.
func consulClient(c *ConsulConfig) (*consulapi.Client, error) {
	cfg := consulapi.DefaultConfig()
	if c != nil {
		if c.Address != "" {
			cfg.Address = c.Address
		}
		if c.Token != "" {
			cfg.Token = c.Token
		}
		if c.TokenFile != "" {
			cfg.TokenFile = c.TokenFile
		}
		if c.Scheme != "" {
			cfg.Scheme = c.Scheme
		}
		if c.Datacenter != "" {
			cfg.Datacenter = c.Datacenter
		}
		if c.CAFile != "" {
			cfg.TLSConfig.CAFile = c.CAFile
		}
		if c.CertFile != "" {
			cfg.TLSConfig.CertFile = c.CertFile
		}
		if c.KeyFile != "" {
			cfg.TLSConfig.KeyFile = c.KeyFile
		}
	}
	client, err := consulapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create consul client for %s: %w", cfg.Address, err)
	}
	return client, nil
}

// newCloud builds the cloud side; it does no I/O.
func newCloud(logger hclog.Logger, uc *UCloudConfig, cc *ConsulConfig, rs reconcileSettings, m *metrics) (*cloud, error) {
	if err := validateUCloud(uc); err != nil {
		return nil, err
	}
	api, err := ucloudapi.New(ucloudapi.Config{
		Region:      uc.Region,
		ProjectID:   uc.ProjectID,
		PublicKey:   uc.PublicKey,
		PrivateKey:  uc.PrivateKey,
		BaseURL:     uc.BaseURL,
		CallTimeout: durationOr(uc.CallTimeout, 5*time.Second),
		Logger:      logger,
	})
	if err != nil {
		return nil, fmt.Errorf("ucloud: %w", err)
	}
	var owners *ownership.Store
	var consul *consulapi.Client
	if cc != nil || os.Getenv("CONSUL_HTTP_ADDR") != "" {
		client, err := consulClient(cc)
		if err != nil {
			return nil, err
		}
		prefix := "rocketmq-nomad"
		if cc != nil && cc.KVPrefix != "" {
			prefix = cc.KVPrefix
		}
		owners = ownership.New(client, prefix)
		consul = client
	}
	retry := eipbind.RetryPolicy{
		Initial:     100 * time.Millisecond,
		Max:         2 * time.Second,
		MaxAttempts: uc.MaxAttempts,
		Deadline:    durationOr(uc.BindTimeout, 60*time.Second),
	}
	if retry.MaxAttempts == 0 {
		retry.MaxAttempts = 8
	}
	nomad, err := nomadstate.New(rs.Nomad)
	if err != nil {
		return nil, fmt.Errorf("nomad: %w", err)
	}
	c := &cloud{logger: logger, cfg: *uc, api: api, owners: owners, consul: consul, nomad: nomad,
		checkEvery: healthCheckInterval, retryEvery: healthRetryInterval,
		health: healthTracker{reported: cloudHealth{Status: ucloudStatusUnknown}}}
	var eipOwners eipbind.Owners
	var ulbOwners ulbbind.Owners
	if owners != nil {
		eipOwners, ulbOwners = owners, owners
	}
	allowedEIPs, allowedULBs := tenantGuards(uc)
	c.eips = eipbind.New(api, eipOwners, eipbind.Guard{AllowedEIPIDs: allowedEIPs, RemarkPrefix: uc.EIPRemarkPrefix},
		eipbind.Options{Logger: logger.Named("eipbind"), Retry: retry, Observe: m.Observe, Liveness: nomad})
	c.ulbs = ulbbind.New(api, ulbOwners, ulbbind.Guard{AllowedULBIDs: allowedULBs},
		ulbbind.Options{Logger: logger.Named("ulbbind"), Retry: ulbbind.RetryPolicy(retry), Observe: m.Observe, Liveness: nomad})
	return c, nil
}

// Identity returns which UHost this client is: from the config when set,
// else from the instance metadata service (cached once read).
func (c *cloud) Identity(ctx context.Context) (Identity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.identity != nil {
		return *c.identity, nil
	}
	id := Identity{UHostID: c.cfg.UHostID, PrivateIP: c.cfg.PrivateIP, Region: c.cfg.Region, ProjectID: c.cfg.ProjectID}
	if id.UHostID == "" || id.PrivateIP == "" {
		md, err := fetchIdentity(ctx, c.cfg.MetadataEndpoint)
		if err != nil {
			return Identity{}, err
		}
		if id.UHostID == "" {
			id.UHostID = md.UHostID
		}
		if id.PrivateIP == "" {
			id.PrivateIP = md.PrivateIP
		}
	}
	c.identity = &id
	c.logger.Info("learned host identity", "uhost_id", id.UHostID, "private_ip", id.PrivateIP)
	return id, nil
}
