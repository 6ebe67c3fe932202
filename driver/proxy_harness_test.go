package driver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// proxyRMQ is a public-mode proxy on the simulator's second ULB.
func proxyRMQ() RocketMQConfig {
	return RocketMQConfig{Cluster: "orders", Role: RoleProxy, Mode: ModePublic, Port: "rmq",
		ULB: &ULBConfig{ULBID: "ulb-other", VServerID: "vserver-other"}}
}

// A public proxy is registered with its VServer before it starts, under an
// owner record whose role is "proxy", gets the config the proxy needs
// (cluster mode, the address server, the port the client dialled), and
// its backend is gone after its stop. A proxy without an address server
// fails before anything is bound.
func TestHarnessProxyBackend(t *testing.T) {
	image := dockerImage(t)
	env := newCloudEnv(t)
	h := newHarness(t, env.pluginConfig(pluginOpts{}))

	// Negative control first: no address server, nothing registered.
	bad := newTask(t, image, proxyRMQ())
	defer h.MkAllocDir(bad, false)()
	var seq int64
	if reqs := env.sim.Sim.Requests(); len(reqs) > 0 {
		seq = reqs[len(reqs)-1].Seq
	}
	if _, _, err := h.StartTask(bad); err == nil {
		h.DestroyTask(bad.ID, true)
		t.Fatal("a proxy without ROCKETMQ_NAMESRV_DOMAIN started")
	} else if !strings.Contains(err.Error(), "env.ROCKETMQ_NAMESRV_DOMAIN") {
		t.Fatalf("want an error naming env.ROCKETMQ_NAMESRV_DOMAIN, got %v", err)
	}
	if calls := env.actionsSince("AllocateBackend", seq); len(calls) != 0 {
		t.Fatalf("a proxy that cannot start registered a backend: %+v", calls)
	}

	task := newTask(t, image, proxyRMQ())
	task.Env[EnvNamesrvDomain] = "10.9.0.50:8080"
	defer h.MkAllocDir(task, false)()
	if _, _, err := h.StartTask(task); err != nil {
		t.Fatalf("StartTask proxy: %v", err)
	}
	port := listenPortOf(task)
	conf := readTaskFile(t, task, proxyConfPath)
	for _, want := range []string{
		"proxyMode=cluster\n", "rocketMQClusterName=orders\n", fmt.Sprintf("grpcServerPort=%d\n", port),
		"useEndpointPortFromRequest=true\n", "namesrvDomain=10.9.0.50:8080\n", "namesrvDomainSubgroup=orders\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("proxy.conf lacks %q:\n%s", want, conf)
		}
	}
	var mine []string
	for _, b := range env.sim.Backends(t, "ulb-other", "vserver-other") {
		if b.ResourceID == testUHost && b.Port == port {
			mine = append(mine, b.ID)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("want one backend %s:%d on vserver-other, got %v", testUHost, port, env.sim.Backends(t, "ulb-other", "vserver-other"))
	}
	key := kvPrefix + "/owners/backend/ulb-other/vserver-other/orders/proxy/0"
	kv, _, err := env.consul.Client.KV().Get(key, nil)
	if err != nil || kv == nil {
		t.Fatalf("owner record %s: %v %v (have %v)", key, kv, err, env.ownerRecords(t))
	}
	var owner struct {
		Role    string `json:"role"`
		AllocID string `json:"alloc_id"`
	}
	if err := json.Unmarshal(kv.Value, &owner); err != nil || owner.Role != RoleProxy || owner.AllocID != task.AllocID {
		t.Fatalf("owner record %s = %s (%v), want role proxy and alloc %s", key, kv.Value, err, task.AllocID)
	}

	if err := h.StopTask(task.ID, 5*time.Second, "SIGTERM"); err != nil {
		t.Fatalf("StopTask: %v", err)
	}
	if err := h.DestroyTask(task.ID, true); err != nil {
		t.Fatalf("DestroyTask: %v", err)
	}
	for _, b := range env.sim.Backends(t, "ulb-other", "vserver-other") {
		if b.ResourceID == testUHost && b.Port == port {
			t.Fatalf("backend %s of the stopped proxy is still registered", b.ID)
		}
	}
	if kv, _, _ := env.consul.Client.KV().Get(key, nil); kv != nil {
		t.Fatalf("owner record %s left after the stop: %s", key, kv.Value)
	}
}

// In private mode a proxy registers with the internal ULB its ulb block
// names, and without the block it binds nothing; on a client without
// UCloud access the internal ULB is refused naming rocketmq.ulb.
func TestHarnessPrivateProxy(t *testing.T) {
	image := dockerImage(t)
	env := newCloudEnv(t)
	h := newHarness(t, env.pluginConfig(pluginOpts{}))

	internal := proxyRMQ()
	internal.Mode = ModePrivate
	task := newTask(t, image, internal)
	task.Env[EnvNamesrvDomain] = "10.9.0.50:8080"
	defer h.MkAllocDir(task, false)()
	if _, _, err := h.StartTask(task); err != nil {
		t.Fatalf("StartTask private proxy with an internal ULB: %v", err)
	}
	port := listenPortOf(task)
	found := false
	for _, b := range env.sim.Backends(t, "ulb-other", "vserver-other") {
		found = found || (b.ResourceID == testUHost && b.Port == port)
	}
	if !found {
		t.Fatalf("private proxy %s:%d not registered with its internal ULB: %v", testUHost, port, env.sim.Backends(t, "ulb-other", "vserver-other"))
	}
	if err := h.DestroyTask(task.ID, true); err != nil {
		t.Fatalf("DestroyTask: %v", err)
	}

	plain := internal
	plain.ULB = nil
	var seq int64
	if reqs := env.sim.Sim.Requests(); len(reqs) > 0 {
		seq = reqs[len(reqs)-1].Seq
	}
	bare := newTask(t, image, plain)
	bare.Env[EnvNamesrvDomain] = "10.9.0.50:8080"
	defer h.MkAllocDir(bare, false)()
	if _, _, err := h.StartTask(bare); err != nil {
		t.Fatalf("StartTask private proxy: %v", err)
	}
	defer h.DestroyTask(bare.ID, true)
	if calls := env.actionsSince("AllocateBackend", seq); len(calls) != 0 {
		t.Fatalf("a private proxy without a ulb block registered a backend: %+v", calls)
	}
	if !strings.Contains(readTaskFile(t, bare, proxyConfPath), "namesrvDomain=10.9.0.50:8080\n") {
		t.Fatalf("private proxy config lacks the address server")
	}

	// A client without UCloud: the internal ULB cannot be used.
	noCloud := env.pluginConfig(pluginOpts{})
	delete(noCloud, "ucloud")
	h2 := newHarness(t, noCloud)
	orphan := newTask(t, image, internal)
	orphan.Env[EnvNamesrvDomain] = "10.9.0.50:8080"
	defer h2.MkAllocDir(orphan, false)()
	if _, _, err := h2.StartTask(orphan); err == nil {
		h2.DestroyTask(orphan.ID, true)
		t.Fatal("a private proxy with a ulb block started on a client without UCloud access")
	} else if !strings.Contains(err.Error(), "rocketmq.ulb: a proxy behind an internal ULB needs UCloud access") {
		t.Fatalf("want an error naming rocketmq.ulb, got %v", err)
	}
}
