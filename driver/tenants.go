package driver

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// TenantGuard is a `tenant "<namespace>"` block of the ucloud block: what
// the tasks of one Nomad namespace may use on this client.
type TenantGuard struct {
	AllowedEIPIDs []string `codec:"allowed_eip_ids"`
	AllowedULBIDs []string `codec:"allowed_ulb_ids"`
	// Clusters, when set, lists the only cluster ids the namespace uses.
	Clusters []string `codec:"clusters"`
}

// validateTenants checks the tenant blocks: within the client-wide lists
// (when those are set), and no EIP or ULB given to two namespaces.
func validateTenants(uc *UCloudConfig) error {
	owner := map[string]string{}
	for _, ns := range sortedKeys(uc.Tenants) {
		t := uc.Tenants[ns]
		if ns == "" {
			return fmt.Errorf(`ucloud.tenant: a tenant block needs its namespace as label, e.g. tenant "team-a" { ... }`)
		}
		for _, l := range []struct {
			field  string
			ids    []string
			global []string
		}{{"allowed_eip_ids", t.AllowedEIPIDs, uc.AllowedEIPIDs}, {"allowed_ulb_ids", t.AllowedULBIDs, uc.AllowedULBIDs}} {
			for _, id := range l.ids {
				if len(l.global) > 0 && !slices.Contains(l.global, id) {
					return fmt.Errorf(`ucloud.tenant %q.%s: %s is not in this client's ucloud.%s; add it there too, or remove it here`, ns, l.field, id, l.field)
				}
				if other, ok := owner[id]; ok && other != ns {
					return fmt.Errorf(`ucloud.tenant %q.%s: %s is also given to namespace %q; a resource belongs to one tenant`, ns, l.field, id, other)
				}
				owner[id] = ns
			}
		}
	}
	return nil
}

// tenantGuards returns the client-wide guard lists the binders use: the
// configured ones, or, when only tenant blocks list resources, their union
// (so that the collector, too, never acts outside them).
func tenantGuards(uc *UCloudConfig) (eips, ulbs []string) {
	eips, ulbs = slices.Clone(uc.AllowedEIPIDs), slices.Clone(uc.AllowedULBIDs)
	if len(uc.Tenants) == 0 {
		return eips, ulbs
	}
	var te, tu []string
	for _, t := range uc.Tenants {
		te = append(te, t.AllowedEIPIDs...)
		tu = append(tu, t.AllowedULBIDs...)
	}
	sort.Strings(te)
	sort.Strings(tu)
	if len(eips) == 0 {
		eips = slices.Compact(te)
	}
	if len(ulbs) == 0 {
		ulbs = slices.Compact(tu)
	}
	return eips, ulbs
}

// checkTenant refuses a public-mode task whose namespace may not use what
// it asks for, before anything is bound. eipID is "" for a name server.
func checkTenant(uc *UCloudConfig, namespace string, rmq *RocketMQConfig, eipID string) error {
	if len(uc.Tenants) == 0 {
		return nil
	}
	if namespace == "" {
		namespace = "default"
	}
	t, ok := uc.Tenants[namespace]
	if !ok {
		return fmt.Errorf(`rocketmq: namespace %q has no tenant block on this client (ucloud.tenant "%s" { ... }), which lists %s: run the job in a namespace this client serves, or add the block`,
			namespace, namespace, strings.Join(sortedKeys(uc.Tenants), ", "))
	}
	if len(t.Clusters) > 0 && !slices.Contains(t.Clusters, rmq.Cluster) {
		return fmt.Errorf(`rocketmq.cluster: cluster %q is not one of namespace %q's clusters on this client (ucloud.tenant %q.clusters: %s)`,
			rmq.Cluster, namespace, namespace, strings.Join(t.Clusters, ", "))
	}
	if eipID != "" && !slices.Contains(t.AllowedEIPIDs, eipID) {
		return fmt.Errorf(`rocketmq.eip: EIP %s is not in namespace %q's allowed EIP ids on this client (ucloud.tenant %q.allowed_eip_ids); add it there if it is this tenant's`,
			eipID, namespace, namespace)
	}
	if eipID == "" && rmq.ULB != nil && !slices.Contains(t.AllowedULBIDs, rmq.ULB.ULBID) {
		return fmt.Errorf(`rocketmq.ulb.ulb_id: ULB %s is not in namespace %q's allowed ULB ids on this client (ucloud.tenant %q.allowed_ulb_ids); add it there if it is this tenant's`,
			rmq.ULB.ULBID, namespace, namespace)
	}
	return nil
}
