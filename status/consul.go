package status

import (
	"context"
	"fmt"
	"strings"

	consulapi "github.com/hashicorp/consul/api"
)

// ConsulKeys lists raw KV keys (KeyLister).
type ConsulKeys struct{ KV *consulapi.KV }

// Keys lists the keys under prefix (consistent read).
func (c ConsulKeys) Keys(ctx context.Context, prefix string) ([]string, error) {
	keys, _, err := c.KV.Keys(prefix, "", (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list consul keys under %s: %w", prefix, err)
	}
	return keys, nil
}

// ClusterPlaceholder is replaced by the cluster id in a service name
// pattern (the same as nsaddr's).
const ClusterPlaceholder = "{{cluster}}"

// ConsulServices lists a cluster's NameServer service instances
// (Services), the way the address endpoint finds them.
type ConsulServices struct {
	Health *consulapi.Health
	// Pattern is the service name pattern, e.g. "nameServer{{cluster}}".
	Pattern string
}

// CheckPattern checks that a service name pattern holds the placeholder
// exactly once.
func CheckPattern(p string) error {
	if strings.Count(p, ClusterPlaceholder) != 1 {
		return fmt.Errorf("service name pattern %q must contain %s exactly once", p, ClusterPlaceholder)
	}
	return nil
}

// NameServers returns the service's instances with their aggregated
// health.
func (c ConsulServices) NameServers(ctx context.Context, cluster string) (string, []Instance, error) {
	name := strings.Replace(c.Pattern, ClusterPlaceholder, cluster, 1)
	entries, _, err := c.Health.Service(name, "", false, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return name, nil, err
	}
	out := make([]Instance, 0, len(entries))
	for _, e := range entries {
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address
		}
		out = append(out, Instance{Node: e.Node.Node, Address: addr, Port: e.Service.Port, Status: e.Checks.AggregatedStatus()})
	}
	return name, out, nil
}
