package driver

import (
	"context"
	"os"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
)

// TestTenantBlocksDecode: the tenant blocks of the HCL plugin config reach
// the driver, keyed by namespace, and their union guards the binders.
func TestTenantBlocksDecode(t *testing.T) {
	d := New(context.Background(), hclog.NewNullLogger())
	spec, err := d.ConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	dspec, _ := d.Driver.ConfigSchema()
	raw := parse(t, spec, `
ucloud {
  region = "cn-bj2"
  tenant "team-a" {
    allowed_eip_ids = ["eip-a1", "eip-a2"]
    allowed_ulb_ids = ["ulb-a"]
    clusters        = ["orders"]
  }
  tenant "team-b" {
    allowed_eip_ids = ["eip-b1"]
  }
}`)
	ours, _, _, err := splitPluginConfig(raw, dspec)
	if err != nil {
		t.Fatal(err)
	}
	uc := ours.UCloud
	if len(uc.Tenants) != 2 || strings.Join(uc.Tenants["team-a"].AllowedEIPIDs, ",") != "eip-a1,eip-a2" ||
		strings.Join(uc.Tenants["team-a"].Clusters, ",") != "orders" || strings.Join(uc.Tenants["team-b"].AllowedEIPIDs, ",") != "eip-b1" {
		t.Fatalf("tenants decoded as %+v", uc.Tenants)
	}
	eips, ulbs := tenantGuards(uc)
	if strings.Join(eips, ",") != "eip-a1,eip-a2,eip-b1" || strings.Join(ulbs, ",") != "ulb-a" {
		t.Fatalf("binder guards = %v %v, want the tenants' union", eips, ulbs)
	}
}

func TestValidateTenants(t *testing.T) {
	for _, tc := range []struct {
		name string
		uc   UCloudConfig
		want string
	}{
		{"ok", UCloudConfig{AllowedEIPIDs: []string{"e1", "e2"}, Tenants: map[string]TenantGuard{"a": {AllowedEIPIDs: []string{"e1"}}, "b": {AllowedEIPIDs: []string{"e2"}}}}, ""},
		{"outside the client's list", UCloudConfig{AllowedEIPIDs: []string{"e1"}, Tenants: map[string]TenantGuard{"a": {AllowedEIPIDs: []string{"e9"}}}}, `ucloud.tenant "a".allowed_eip_ids: e9 is not in this client's ucloud.allowed_eip_ids`},
		{"one EIP, two tenants", UCloudConfig{Tenants: map[string]TenantGuard{"a": {AllowedEIPIDs: []string{"e1"}}, "b": {AllowedEIPIDs: []string{"e1"}}}}, `e1 is also given to namespace "a"`},
		{"one ULB, two tenants", UCloudConfig{Tenants: map[string]TenantGuard{"a": {AllowedULBIDs: []string{"u"}}, "b": {AllowedULBIDs: []string{"u"}}}}, `ucloud.tenant "b".allowed_ulb_ids: u is also given`},
	} {
		err := validateTenants(&tc.uc)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestCheckTenant(t *testing.T) {
	uc := &UCloudConfig{Tenants: map[string]TenantGuard{
		"team-a":  {AllowedEIPIDs: []string{"eip-a"}, AllowedULBIDs: []string{"ulb-a"}, Clusters: []string{"orders"}},
		"default": {AllowedEIPIDs: []string{"eip-d"}},
	}}
	broker := &RocketMQConfig{Cluster: "orders", Role: RoleBroker}
	ns := &RocketMQConfig{Cluster: "orders", Role: RoleNameServer, ULB: &ULBConfig{ULBID: "ulb-a", VServerID: "vs"}}
	for _, tc := range []struct {
		name, namespace string
		rmq             *RocketMQConfig
		eip, want       string
	}{
		{"own eip", "team-a", broker, "eip-a", ""},
		{"own ulb", "team-a", ns, "", ""},
		{"another tenant's eip", "team-a", broker, "eip-d", `EIP eip-d is not in namespace "team-a"'s allowed EIP ids`},
		{"default namespace by empty name", "", broker, "eip-d", ""},
		{"ulb of another tenant", "default", ns, "", `ULB ulb-a is not in namespace "default"'s allowed ULB ids`},
		{"namespace without a block", "team-z", broker, "eip-a", `namespace "team-z" has no tenant block`},
		{"cluster not the tenant's", "team-a", &RocketMQConfig{Cluster: "payments", Role: RoleBroker}, "eip-a", `cluster "payments" is not one of namespace "team-a"'s clusters`},
	} {
		err := checkTenant(uc, tc.namespace, tc.rmq, tc.eip)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// No tenant blocks: every namespace is allowed (the client-wide lists
	// still apply in the binders).
	if err := checkTenant(&UCloudConfig{}, "anything", broker, "eip-x"); err != nil {
		t.Errorf("without tenant blocks: %v", err)
	}
}

// TestExampleClientConfig: the plugin block of examples/jobs/client.hcl
// parses against the plugin's schema and its settings are valid.
func TestExampleClientConfig(t *testing.T) {
	b, err := os.ReadFile("../examples/jobs/client.hcl")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	start := strings.Index(src, `plugin "rmq-driver" {`)
	if start < 0 {
		t.Fatal(`no plugin "rmq-driver" block`)
	}
	// The block's body: from after its "{" to its matching "}".
	body, depth := "", 0
	for i := start + len(`plugin "rmq-driver" `); i < len(src); i++ {
		switch src[i] {
		case '{':
			depth++
		case '}':
			depth--
		}
		if depth == 0 {
			body = src[start+len(`plugin "rmq-driver" {`) : i]
			break
		}
	}
	body = strings.TrimSpace(body)
	if !strings.HasPrefix(body, "config {") {
		t.Fatalf("plugin block does not start with config: %.40q", body)
	}
	d := New(context.Background(), hclog.NewNullLogger())
	spec, err := d.ConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	dspec, _ := d.Driver.ConfigSchema()
	raw := parse(t, spec, strings.TrimSuffix(strings.TrimPrefix(body, "config {"), "}"))
	ours, _, _, err := splitPluginConfig(raw, dspec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseReconcile(ours, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if ours.UCloud == nil || len(ours.UCloud.AllowedEIPIDs) == 0 || ours.Nomad == nil || ours.ReconcileInterval != "30s" {
		t.Fatalf("example settings not decoded: ucloud %+v nomad %+v interval %q", ours.UCloud, ours.Nomad, ours.ReconcileInterval)
	}
	if err := validateTenants(ours.UCloud); err != nil {
		t.Fatal(err)
	}
}
