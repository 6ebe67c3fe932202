package driver

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/plugins/drivers"
)

// RocketMQ 5.x gRPC clients reach a cluster through proxies (role =
// "proxy"): stateless, in cluster mode, finding the NameServers through the
// address endpoint like brokers do. In public/test mode each proxy is a
// backend of the cluster's own ULB VServer (the NameServer path: same
// reconcile, ownership and collection, the owner record's role "proxy");
// in private mode the same binding to an internal ULB is optional, and the
// address endpoint serves the proxies at /rocketmq/<cluster>/proxy. See
// docs/proxy.md.

// RoleProxy is a RocketMQ gRPC proxy (cluster mode) for 5.x clients.
const RoleProxy = "proxy"

// proxyConfPath is where, relative to the task dir's local/, the driver
// writes the proxy's config fragment (key=value; the image turns the merged
// config into rmq-proxy.json).
const proxyConfPath = "rocketmq/proxy.conf"

// Task environment variables a proxy's NameServer lookup is read from.
const (
	EnvNamesrvDomain   = "ROCKETMQ_NAMESRV_DOMAIN"
	EnvNamesrvSubgroup = "ROCKETMQ_NAMESRV_SUBGROUP"
	EnvNamesrvAddr     = "NAMESRV_ADDR"
)

// bindsBackend reports whether the task registers itself as a ULB backend:
// name servers and proxies in public/test mode, and proxies in private mode
// that name an (internal) ULB.
func (c *RocketMQConfig) bindsBackend() bool {
	switch c.Role {
	case RoleNameServer:
		return c.PublicFacing()
	case RoleProxy:
		return c.PublicFacing() || c.ULB != nil
	}
	return false
}

// bindsCloud reports whether the task binds anything in UCloud before it
// starts.
func (c *RocketMQConfig) bindsCloud() bool {
	return c.bindsBackend() || (c.Role == RoleBroker && c.PublicFacing())
}

// validateProxy checks what only applies to proxies; messages name the field
// and the fix, like Validate's.
func (c *RocketMQConfig) validateProxy() []string {
	if c.Role != RoleProxy {
		return nil
	}
	var errs []string
	if c.EIP != nil {
		errs = append(errs, `rocketmq.eip: a proxy is reached through a ULB VServer, not an EIP of its own; replace the eip block with ulb { ulb_id = "..." vserver_id = "..." }`)
	}
	if c.PublicFacing() && c.ULB == nil {
		errs = append(errs, fmt.Sprintf(`rocketmq.ulb: a proxy in %s mode needs a ulb block with the ulb_id and vserver_id of the cluster's gRPC listener (e.g. frontend port 8081), or use mode = "private"`, c.Mode))
	}
	return errs
}

// proxyNamesrv returns the address server and subgroup a proxy looks its
// NameServers up at, from the task's environment.
func proxyNamesrv(cfg *drivers.TaskConfig, rmq *RocketMQConfig) (domain, subgroup string, err error) {
	if v := strings.TrimSpace(cfg.Env[EnvNamesrvAddr]); v != "" {
		return "", "", fmt.Errorf(`env.%s: a proxy finds its NameServers through the address endpoint, and a fixed list turns that lookup off (the proxy would not follow NameServers that move); remove %s and set %s = "<host:port of the address endpoint>"`,
			EnvNamesrvAddr, EnvNamesrvAddr, EnvNamesrvDomain)
	}
	domain = strings.TrimSpace(cfg.Env[EnvNamesrvDomain])
	if domain == "" {
		return "", "", fmt.Errorf(`env.%s: a proxy needs the address endpoint that lists its cluster's NameServers; set %s = "<host:port>" in the task's env block (the plugin's nsaddr listen address, or the internal ULB in front of it)`,
			EnvNamesrvDomain, EnvNamesrvDomain)
	}
	if strings.ContainsAny(domain, "/; \t") {
		return "", "", fmt.Errorf(`env.%s: %q is not host or host:port; the proxy asks http://<host:port>/rocketmq/<subgroup> itself, so give only the host and port`, EnvNamesrvDomain, domain)
	}
	if host, port, e := net.SplitHostPort(domain); e == nil {
		if p, e := strconv.Atoi(port); e != nil || p < 1 || p > 65535 || host == "" {
			return "", "", fmt.Errorf(`env.%s: %q has no valid host and port, e.g. "10.0.0.5:8080"`, EnvNamesrvDomain, domain)
		}
	}
	subgroup = strings.TrimSpace(cfg.Env[EnvNamesrvSubgroup])
	if subgroup == "" {
		subgroup = rmq.Cluster
	}
	return domain, subgroup, nil
}

// proxyConf is the proxy's config fragment: cluster mode, its cluster, the
// gRPC port inside the container, the address server, and routes that carry
// the port the client dialled (a load balancer's frontend port or the
// task's host port), not the container's own.
func proxyConf(rmq *RocketMQConfig, grpcPort int, domain, subgroup string) string {
	return fmt.Sprintf(`# written by the rocketmq Nomad driver; do not edit
proxyMode=cluster
rocketMQClusterName=%s
grpcServerPort=%d
useEndpointPortFromRequest=true
namesrvDomain=%s
namesrvDomainSubgroup=%s
`, rmq.Cluster, grpcPort, domain, subgroup)
}

// writeProxyConf works out and writes a proxy's config fragment before its
// container starts.
func writeProxyConf(cfg *drivers.TaskConfig, rmq *RocketMQConfig, grpcPort int) error {
	domain, subgroup, err := proxyNamesrv(cfg, rmq)
	if err != nil {
		return fatal(err)
	}
	return writeTaskFile(cfg, proxyConfPath, proxyConf(rmq, grpcPort, domain, subgroup), "proxy config")
}
