package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/nomadstate"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/status"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

// testNomad stands in for the scheduler through the command's Nomad
// interface: allocation id -> client status, and the jobs that exist.
type testNomad struct {
	allocs map[string]string
	jobs   map[string]bool
}

func (n *testNomad) Alloc(_ context.Context, ns, id string) (nomadstate.Alloc, error) {
	st, ok := n.allocs[id]
	if !ok {
		return nomadstate.Alloc{}, fmt.Errorf("read nomad allocation %s: %w", id, nomadstate.ErrNotFound)
	}
	return nomadstate.Alloc{ID: id, Namespace: ns, ClientStatus: st, DesiredStatus: "run"}, nil
}

func (n *testNomad) JobExists(_ context.Context, ns, id string) (bool, error) {
	return n.jobs[ns+"/"+id], nil
}

type alive struct{}

func (alive) Gone(context.Context, ownership.Owner) (bool, string, error) {
	return false, "running", nil
}

// slotOwner is an allocation of the role's job of namespace default:
// cluster orders is two jobs, rmq-namesrv and rmq-broker, as in the
// examples.
func slotOwner(alloc, role string, index int, uhost string) ownership.Owner {
	return ownership.Owner{AllocID: alloc, UHostID: uhost, Namespace: "default", JobID: "rmq-" + role, Group: role,
		Cluster: "orders", Role: role, AllocIndex: index}
}

type statusRun struct {
	code           int
	stdout, stderr string
}

// statusFixture is a real Consul agent and the UCloud simulator holding
// the bindings of cluster orders, made by the real binders.
type statusFixture struct {
	t       *testing.T
	consul  *testutil.ConsulAgent
	sim     *simtest.Env
	store   *ownership.Store
	nomad   *testNomad
	keyFile string
	prefix  string
	outputs []string
}

func newStatusFixture(t *testing.T) *statusFixture {
	consul := testutil.StartConsul(t)
	env := simtest.Start(t, ucloudsim.Config{})
	f := &statusFixture{t: t, consul: consul, sim: env, prefix: "status-test",
		nomad: &testNomad{allocs: map[string]string{"a1": "running", "a2": "running", "n1": "running"},
			jobs: map[string]bool{"default/rmq-namesrv": true, "default/rmq-broker": true}}}
	f.store = ownership.New(consul.Client, f.prefix)
	ctx := context.Background()
	for _, job := range []string{"rmq-namesrv", "rmq-broker"} {
		if err := f.store.ClaimCluster(ctx, "orders", "default", job, nil); err != nil {
			t.Fatal(err)
		}
	}
	retry := eipbind.RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 10, Deadline: 20 * time.Second}
	eips := eipbind.New(env.API, f.store, eipbind.Guard{}, eipbind.Options{Retry: retry, PollInterval: time.Millisecond, Liveness: alive{}})
	for _, b := range []struct {
		eip, alloc, uhost string
		index             int
	}{{"eip-a", "a1", "uhost-a", 0}, {"eip-b", "a2", "uhost-b", 1}} {
		if _, err := eips.Bind(ctx, eipbind.Request{EIPID: b.eip, UHostID: b.uhost, Owner: slotOwner(b.alloc, "broker", b.index, b.uhost)}); err != nil {
			t.Fatalf("bind %s: %v", b.eip, err)
		}
	}
	ulbs := ulbbind.New(env.API, f.store, ulbbind.Guard{}, ulbbind.Options{Retry: retry, PollInterval: time.Millisecond, Liveness: alive{}})
	if _, err := ulbs.Register(ctx, ulbbind.Request{ULBID: "ulb-ns", VServerID: "vserver-ns", UHostID: "uhost-a", PrivateIP: "10.9.0.11",
		Port: 30001, Owner: slotOwner("n1", "namesrv", 0, "uhost-a")}); err != nil {
		t.Fatalf("register backend: %v", err)
	}
	if err := consul.Client.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
		ID: "ns-0", Name: "nameServerorders", Address: "10.9.0.11", Port: 30001}); err != nil {
		t.Fatal(err)
	}
	f.keyFile = filepath.Join(t.TempDir(), "ucloud.key")
	if err := os.WriteFile(f.keyFile, []byte(simtest.PrivateKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// env is the command's environment: UCloud access from UCLOUD_* (the
// private key only in the file), Nomad replaced by f.nomad.
func (f *statusFixture) env() statusEnv {
	vars := map[string]string{
		"UCLOUD_PUBLIC_KEY": simtest.PublicKey, "UCLOUD_REGION": simtest.Region, "UCLOUD_PROJECT_ID": simtest.Project,
		"UCLOUD_API_BASE_URL": f.sim.Sim.URL(), "CONSUL_HTTP_ADDR": f.consul.HTTPAddr,
	}
	return statusEnv{
		getenv: func(k string) string { return vars[k] },
		nomad:  func(nomadstate.Config) (statusNomad, error) { return f.nomad, nil },
	}
}

func (f *statusFixture) run(env statusEnv, args ...string) statusRun {
	var out, errOut bytes.Buffer
	base := []string{"-kv-prefix", f.prefix, "-ucloud-private-key-file", f.keyFile}
	code := runStatus(context.Background(), append(base, args...), &out, &errOut, env)
	f.outputs = append(f.outputs, out.String(), errOut.String())
	return statusRun{code: code, stdout: out.String(), stderr: errOut.String()}
}

func (f *statusFixture) report(r statusRun) status.Report {
	f.t.Helper()
	var rep status.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		f.t.Fatalf("stdout is not the json report: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return rep
}

func bindingsByKey(rep status.Report) map[string]status.Binding {
	out := map[string]status.Binding{}
	for _, c := range rep.Clusters {
		for _, b := range c.Bindings {
			out[b.Key] = b
		}
	}
	for _, b := range rep.Unowned {
		out[b.Kind+":"+b.Resource] = b
	}
	return out
}

func TestStatusCommand(t *testing.T) {
	f := newStatusFixture(t)
	t.Cleanup(func() {
		for _, o := range f.outputs {
			if strings.Contains(o, simtest.PrivateKey) || strings.Contains(o, "wrong-private-key-7f3a") {
				t.Errorf("a private key appears in the command's output:\n%s", o)
			}
		}
	})
	env := f.env()

	// Negative control: the converged world exits 0 and shows no drift.
	r := f.run(env, "-json", "-eip-ids", "eip-a,eip-b,eip-x", "-vservers", "ulb-other/vserver-other")
	if r.code != 0 {
		t.Fatalf("converged world: exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep := f.report(r)
	if !rep.Converged || rep.Counts.OK != 3 || rep.Counts.Drift+rep.Counts.Orphan+rep.Counts.Collect != 0 || rep.Counts.Free != 1 || len(rep.Errors) != 0 {
		t.Errorf("converged world: counts %+v errors %q", rep.Counts, rep.Errors)
	}
	if len(rep.Clusters) != 1 || rep.Clusters[0].Tenant == nil {
		t.Fatalf("clusters = %+v", rep.Clusters)
	}
	if ten := rep.Clusters[0].Tenant; ten.Namespace != "default" || ten.State != status.StateOK || len(ten.Jobs) != 2 ||
		ten.Jobs[0].JobID != "rmq-namesrv" || ten.Jobs[1].JobID != "rmq-broker" || ten.Jobs[1].Exists == nil || !*ten.Jobs[1].Exists {
		t.Errorf("tenant = %+v", ten)
	}
	if ns := rep.Clusters[0].NameServers; ns == nil || len(ns.Instances) != 1 || ns.Instances[0].Address != "10.9.0.11" {
		t.Errorf("nameservers = %+v", ns)
	}
	b := bindingsByKey(rep)
	if x := b[f.prefix+"/owners/eip/eip-b"]; x.State != status.StateOK || x.Cloud.BoundID != "uhost-b" || x.Nomad != "running" || x.Slot != "default/rmq-broker/broker/orders/broker/1" {
		t.Errorf("eip-b = %+v", x)
	}
	if x := b[f.prefix+"/owners/backend/ulb-ns/vserver-ns/orders/namesrv/0"]; x.State != status.StateOK || x.Resource == "" || x.Cloud.Enabled == nil || !*x.Cloud.Enabled {
		t.Errorf("backend = %+v", x)
	}
	human := f.run(env)
	if human.code != 0 || strings.Contains(human.stdout, "drift:") || !strings.Contains(human.stdout, "\nconverged\n") ||
		!strings.Contains(human.stdout, "cluster orders: namespace default, jobs rmq-namesrv (exists), rmq-broker (exists)\n") {
		t.Errorf("converged world, table: exit %d\n%s\n%s", human.code, human.stdout, human.stderr)
	}

	// Drift: eip-b unbound by hand, a1's allocation lost, a record with a
	// bad key, and unrecorded resources on the asked ids.
	ctx := context.Background()
	if err := f.sim.API.UnBindEIP(ctx, "eip-b", "uhost-b"); err != nil {
		t.Fatal(err)
	}
	f.nomad.allocs["a1"] = "lost"
	if ok, err := f.store.Claim(ctx, ownership.KindBackend, "ulb-ns/orders/0", slotOwner("n9", "namesrv", 9, "uhost-c"), 0); err != nil || !ok {
		t.Fatalf("plant bad record: %v %v", ok, err)
	}
	// A live record of a job of another namespace naming cluster orders
	// (as if written around the claim): drift nobody repairs.
	other := slotOwner("x1", "broker", 5, "uhost-x")
	other.Namespace, other.Resource = "team-b", "eip-t"
	f.nomad.allocs["x1"] = "running"
	if ok, err := f.store.Claim(ctx, ownership.KindEIP, "eip-t", other, 0); err != nil || !ok {
		t.Fatalf("plant record of another namespace: %v %v", ok, err)
	}
	r = f.run(env, "-json", "-eip-ids", "eip-c", "-vservers", "ulb-ns/vserver-ns")
	if r.code != 1 {
		t.Fatalf("drifted world: exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep = f.report(r)
	b = bindingsByKey(rep)
	checks := []struct {
		key, state, decision, action string
	}{
		{f.prefix + "/owners/eip/eip-b", status.StateDrift, "keep", status.RepairAction},
		{f.prefix + "/owners/eip/eip-a", status.StateCollect, "collect", "the collector unbinds eip eip-a from uhost uhost-a"},
		{f.prefix + "/owners/backend/ulb-ns/orders/0", status.StateOrphan, "orphan", "consul kv delete"},
		{f.prefix + "/owners/eip/eip-t", status.StateDrift, "keep", "jobs of two namespaces name cluster id orders"},
		{f.prefix + "/owners/backend/ulb-ns/vserver-ns/orders/namesrv/0", status.StateOK, "keep", ""},
		{"eip:eip-c", status.StateOrphan, "", "never touches a resource without its record"},
		{"backend:backend-seed", status.StateOrphan, "", "release it by hand"},
	}
	for _, c := range checks {
		x, ok := b[c.key]
		if !ok {
			t.Errorf("%s missing from the report", c.key)
			continue
		}
		if x.State != c.state || x.Decision != c.decision || !strings.Contains(x.Action, c.action) {
			t.Errorf("%s: state %q decision %q action %q; want %q %q %q", c.key, x.State, x.Decision, x.Action, c.state, c.decision, c.action)
		}
	}
	if x := b[f.prefix+"/owners/eip/eip-t"]; !strings.Contains(x.Reason, "record names job rmq-broker of namespace team-b, cluster orders belongs to namespace default") {
		t.Errorf("eip-t reason = %q", x.Reason)
	}
	if rep.Converged || rep.Counts.Drift != 2 || rep.Counts.Collect != 1 || rep.Counts.Orphan != 3 {
		t.Errorf("drifted world: counts %+v", rep.Counts)
	}
	human = f.run(env, "-eip-ids", "eip-c")
	if human.code != 1 || !strings.Contains(human.stdout, "drift: default/rmq-broker/broker/orders/broker/1 eip eip-b") ||
		!strings.Contains(human.stdout, "-> "+status.RepairAction) {
		t.Errorf("drifted world, table: exit %d\n%s\n%s", human.code, human.stdout, human.stderr)
	}
	t.Logf("table:\n%s", human.stdout)

	// Tokens from files reach the clients and never the output.
	dir := t.TempDir()
	for name, tok := range map[string]string{"consul.token": "consul-secret-token-51c2", "nomad.token": "nomad-secret-token-0d9e"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var got nomadstate.Config
	tokEnv := env
	tokEnv.nomad = func(c nomadstate.Config) (statusNomad, error) { got = c; return f.nomad, nil }
	r = f.run(tokEnv, "-consul-token-file", filepath.Join(dir, "consul.token"), "-nomad-token-file", filepath.Join(dir, "nomad.token"), "-nomad-addr", "http://127.0.0.1:4999")
	if r.code != 1 || got.Token != "nomad-secret-token-0d9e" || got.Address != "http://127.0.0.1:4999" {
		t.Errorf("token files: exit %d, nomad config address %q token set %v", r.code, got.Address, got.Token != "")
	}
	for _, o := range f.outputs {
		if strings.Contains(o, "secret-token") {
			t.Errorf("a token appears in the command's output:\n%s", o)
		}
	}

	// -cluster filters: another cluster's view is empty and converged.
	if r := f.run(env, "-json", "-cluster", "payments"); r.code != 0 || len(f.report(r).Clusters) != 0 {
		t.Errorf("-cluster payments: exit %d\n%s", r.code, r.stdout)
	}
}

func TestStatusCommandErrors(t *testing.T) {
	f := newStatusFixture(t)
	env := f.env()
	t.Cleanup(func() {
		for _, o := range f.outputs {
			if strings.Contains(o, simtest.PrivateKey) || strings.Contains(o, "wrong-private-key-7f3a") {
				t.Errorf("a private key appears in the command's output:\n%s", o)
			}
		}
	})
	// A wrong key: UCloud refuses every call; exit 2, stderr says ucloud.
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	if err := os.WriteFile(wrong, []byte("wrong-private-key-7f3a"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.run(env, "-ucloud-private-key-file", wrong)
	t.Logf("wrong key, stderr:\n%s", r.stderr)
	if r.code != 2 || !strings.Contains(r.stderr, "could not read everything from ucloud") || !strings.Contains(r.stderr, "describe eip") {
		t.Errorf("wrong key: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// Consul unreachable: exit 2, stderr names consul.
	r = f.run(env, "-consul-addr", "127.0.0.1:1")
	if r.code != 2 || !strings.Contains(r.stderr, "consul at 127.0.0.1:1") {
		t.Errorf("consul down: exit %d\n%s", r.code, r.stderr)
	}
	// Nomad unreachable (the real client): exit 2, records kept, stderr
	// names nomad.
	down := env
	down.nomad = nil
	r = f.run(down, "-nomad-addr", "http://127.0.0.1:1")
	if r.code != 2 || !strings.Contains(r.stderr, "could not read everything from nomad at http://127.0.0.1:1") ||
		!strings.Contains(r.stdout, "none until nomad answers") {
		t.Errorf("nomad down: exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	// Usage errors.
	noCloud := statusEnv{getenv: func(k string) string {
		if k == "CONSUL_HTTP_ADDR" {
			return f.consul.HTTPAddr
		}
		return ""
	}, nomad: env.nomad}
	for _, tc := range []struct {
		name string
		env  statusEnv
		args []string
		want string
	}{
		{"unknown flag", env, []string{"-bogus"}, "flag provided but not defined"},
		{"argument", env, []string{"extra"}, "unexpected arguments"},
		{"bad vserver", env, []string{"-vservers", "ulb-ns"}, "not <ulb id>/<vserver id>"},
		{"bad pattern", env, []string{"-service-name", "ns"}, "{{cluster}} exactly once"},
		{"missing key file", env, []string{"-ucloud-private-key-file", "/nonexistent/key"}, "read ucloud private key file"},
		{"half ucloud", statusEnv{getenv: func(k string) string {
			return map[string]string{"UCLOUD_PUBLIC_KEY": "pk"}[k]
		}, nomad: env.nomad}, []string{"-ucloud-private-key-file", ""}, "UCLOUD_PRIVATE_KEY (or -ucloud-private-key-file), UCLOUD_REGION not set"},
		{"asked ids without ucloud", noCloud, []string{"-ucloud-private-key-file", "", "-eip-ids", "eip-a"}, "need UCloud access"},
	} {
		r := f.run(tc.env, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.name, r.code, r.stderr, tc.want)
		}
	}
	// Without UCloud access: cloud unknown, still an answer.
	r = f.run(noCloud, "-json", "-ucloud-private-key-file", "")
	if r.code != 0 {
		t.Errorf("no ucloud: exit %d\n%s", r.code, r.stderr)
	} else if rep := f.report(r); rep.CloudAccess || rep.Clusters[0].Bindings[0].Cloud.Summary != "unknown (no UCloud access)" {
		t.Errorf("no ucloud: %+v", rep.Clusters)
	}
}
