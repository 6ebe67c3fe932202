package clusterid_test

import (
	"strings"
	"testing"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/clusterid"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
)

// TestValidIDsMakeConsulKeys: every valid id fits the Consul keys the
// project writes with it (no agent is needed to form a key).
func TestValidIDsMakeConsulKeys(t *testing.T) {
	client, err := consulapi.NewClient(consulapi.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	store := ownership.New(client, "")
	for _, id := range []string{"A", "orders", "rmq-prod_01", "orders.prod", "a..b", "a-", "0", strings.Repeat("z", clusterid.MaxLen)} {
		if !clusterid.Valid(id) {
			t.Fatalf("%q is not valid", id)
		}
		if _, err := store.ClusterKey(id); err != nil {
			t.Errorf("cluster id %q: tenant record key: %v", id, err)
		}
		if _, err := store.Key(ownership.KindBackend, "ulb-x/vserver-y/"+id+"/namesrv/0"); err != nil {
			t.Errorf("cluster id %q: backend owner record key: %v", id, err)
		}
		o := ownership.Owner{AllocID: "a", Cluster: id, Role: "broker"}
		if err := o.Validate(); err != nil {
			t.Errorf("cluster id %q: owner record: %v", id, err)
		}
		if k := ownership.SeedEIPKey(id, 0); !strings.HasPrefix(k, "brokerEip/"+id+"/") {
			t.Errorf("cluster id %q: seed key %q", id, k)
		}
	}
}
