package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/nomadstate"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/status"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// nomadHCL enables raw_exec (the test's jobs are plain processes) and
// keeps both reapers (ours and the built-in docker driver's) off, so this
// client never removes containers of other tests sharing the Docker
// engine.
const nomadHCL = `
plugin "rmq-driver" {
  config {
    docker {
      gc {
        dangling_containers {
          enabled = false
        }
      }
    }
  }
}

plugin "raw_exec" {
  config {
    enabled = true
  }
}

plugin "docker" {
  config {
    gc {
      dangling_containers {
        enabled = false
      }
    }
  }
}
`

func rawJob(id, typ, command, args string) string {
	return `
job "` + id + `" {
  datacenters = ["dc1"]
  type        = "` + typ + `"
  group "broker" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "` + command + `"
        args    = [` + args + `]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
`
}

// TestStatusWithNomad asks a real Nomad agent: a running allocation keeps
// its EIP, a complete one and one Nomad never knew are collected; a
// cluster's claim is kept while one of its jobs exists (the others purged)
// and collected when none exists and it holds no bindings; a job of
// another namespace is refused the cluster.
func TestStatusWithNomad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Nomad agent")
	}
	testutil.EnsureDocker(t) // the plugin's fingerprint needs the engine
	consul := testutil.StartConsul(t)
	nomad := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: testutil.BuildPlugin(t), ClientHCL: func(int) string { return nomadHCL }})
	sim := simtest.Start(t, ucloudsim.Config{})

	nomad.RunJob(t, rawJob("rmq-orders", "service", "/bin/sleep", `"600"`))
	nomad.RunJob(t, rawJob("rmq-done", "batch", "/bin/true", ""))
	live := nomad.WaitRunning(t, "rmq-orders", 1, 90*time.Second)[0]
	var done testutil.Alloc
	deadline := time.Now().Add(90 * time.Second)
	for done.ClientStatus != "complete" {
		if time.Now().After(deadline) {
			t.Fatalf("batch allocation did not complete: %+v", done)
		}
		time.Sleep(250 * time.Millisecond)
		if allocs, err := nomad.JobAllocs("rmq-done"); err == nil && len(allocs) == 1 {
			done = allocs[0]
		}
	}

	ctx := context.Background()
	client, err := nomadstate.New(nomadstate.Config{Address: nomad.Addr})
	if err != nil {
		t.Fatal(err)
	}
	store := ownership.New(consul.Client, "status-nomad")
	// orders: rmq-orders runs, rmq-done completed (its job still exists),
	// rmq-gone was never known to this Nomad. purged: none of its jobs is.
	for _, c := range []struct{ cluster, job string }{
		{"orders", "rmq-orders"}, {"orders", "rmq-done"}, {"orders", "rmq-gone"},
		{"purged", "rmq-purged-namesrv"}, {"purged", "rmq-purged-broker"},
	} {
		if err := store.ClaimCluster(ctx, c.cluster, "default", c.job, client.JobExists); err != nil {
			t.Fatalf("claim %s for %s: %v", c.cluster, c.job, err)
		}
	}
	err = store.ClaimCluster(ctx, "orders", "team-a", "rmq-orders-a", client.JobExists)
	if !errors.Is(err, ownership.ErrClusterTaken) || !strings.Contains(err.Error(), `cluster "orders" belongs to namespace "default" (job "rmq-orders" uses it)`) {
		t.Errorf("claim of orders by namespace team-a: %v, want it refused (rmq-orders exists)", err)
	}
	eips := eipbind.New(sim.API, store, eipbind.Guard{}, eipbind.Options{Liveness: client, PollInterval: time.Millisecond,
		Retry: eipbind.RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 10, Deadline: 20 * time.Second}})
	for _, b := range []struct {
		eip, alloc, uhost string
		index             int
	}{{"eip-a", live.ID, "uhost-a", 0}, {"eip-b", done.ID, "uhost-b", 1}, {"eip-plain", "4f1c2d3e-0000-4000-8000-00000000dead", "uhost-c", 2}} {
		if _, err := eips.Bind(ctx, eipbind.Request{EIPID: b.eip, UHostID: b.uhost, Owner: slotOwner(b.alloc, "broker", b.index, b.uhost)}); err != nil {
			t.Fatalf("bind %s: %v", b.eip, err)
		}
	}

	getenv := func(k string) string {
		return map[string]string{"UCLOUD_PUBLIC_KEY": simtest.PublicKey, "UCLOUD_PRIVATE_KEY": simtest.PrivateKey,
			"UCLOUD_REGION": simtest.Region, "UCLOUD_API_BASE_URL": sim.Sim.URL()}[k]
	}
	var out, errOut bytes.Buffer
	code := runStatus(ctx, []string{"-json", "-consul-addr", consul.HTTPAddr, "-kv-prefix", "status-nomad", "-nomad-addr", nomad.Addr},
		&out, &errOut, statusEnv{getenv: getenv})
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out.String(), errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), simtest.PrivateKey) {
		t.Error("the private key appears in the output")
	}
	var rep status.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{ // key -> nomad state, binding state
		"status-nomad/owners/eip/eip-a":     {"running", status.StateOK},
		"status-nomad/owners/eip/eip-b":     {"complete", status.StateCollect},
		"status-nomad/owners/eip/eip-plain": {"unknown to nomad", status.StateCollect},
	}
	tenants := map[string]string{}
	for _, c := range rep.Clusters {
		if c.Tenant != nil {
			desc := c.Tenant.Namespace
			for _, j := range c.Tenant.Jobs {
				switch {
				case j.Error != "":
					desc += " " + j.JobID + "=error"
				case j.Exists != nil:
					desc += fmt.Sprintf(" %s=%v", j.JobID, *j.Exists)
				}
			}
			tenants[c.Name] = desc + " " + c.Tenant.State
		}
		for _, b := range c.Bindings {
			w, ok := want[b.Key]
			if !ok {
				t.Errorf("unexpected binding %s", b.Key)
				continue
			}
			if b.Nomad != w[0] || b.State != w[1] {
				t.Errorf("%s: nomad %q state %q, want %q %q", b.Key, b.Nomad, b.State, w[0], w[1])
			}
			delete(want, b.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing from the report: %v", want)
	}
	if want := "default rmq-orders=true rmq-done=true rmq-gone=false ok"; tenants["orders"] != want {
		t.Errorf("orders tenant = %q, want %q", tenants["orders"], want)
	}
	if want := "default rmq-purged-namesrv=false rmq-purged-broker=false collect"; tenants["purged"] != want {
		t.Errorf("purged tenant = %q, want %q", tenants["purged"], want)
	}
	if rep.Counts.ClaimsCollect != 1 {
		t.Errorf("counts = %+v, want one claim to collect", rep.Counts)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors = %+v", rep.Errors)
	}
}
