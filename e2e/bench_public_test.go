//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// Public mode start latency: a broker binding its EIP and a NameServer
// registering its ULB backend, against the simulator answering at once
// (0 ms added latency), with owner records in a Consul agent; each against
// the docker driver starting the same image, in rounds as in
// TestBenchStartup. The difference is our own cost beyond the cloud API's
// time: the binders' calls, the Consul claims and the driver's work.

// publicEnv is the simulator, a Consul agent and one Nomad client running
// as simulated host uhost-demo-1.
type publicEnv struct {
	env
	sim   *ucloudsim.Server
	nomad *testutil.NomadCluster
}

// startPublicEnv starts the simulator with state, a Consul agent and one
// Nomad client whose plugin is configured for both (reaper at its
// defaults, metrics on metricsPort when it is not 0).
func startPublicEnv(t *testing.T, state *ucloudsim.State, metricsPort int) *publicEnv {
	t.Helper()
	e := setup(t)
	sim := simtest.Start(t, ucloudsim.Config{State: state, Seed: 42}).Sim
	consul := testutil.StartConsul(t)
	keyFile := secretFile(t, "ucloud-private-key", demoPrivateKey)
	metrics := ""
	if metricsPort != 0 {
		metrics = fmt.Sprintf("metrics_listen = \"127.0.0.1:%d\"", metricsPort)
	}
	hcl := fmt.Sprintf(`
plugin "rmq-driver" {
  config {
    ucloud {
      region            = "cn-bj2"
      project_id        = "org-demo"
      public_key        = "demo-public-key"
      private_key_file  = %q
      base_url          = %q
      metadata_endpoint = %q
    }
    consul {
      address = %q
    }
    %s
  }
}
%s`, keyFile, sim.URL(), sim.MetadataURL(demoHosts[0]), consul.HTTPAddr, metrics, benchStartHCL)
	buildDockerPlugin(t, e.pluginDir)
	nomad := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return hcl }})
	return &publicEnv{env: e, sim: sim, nomad: nomad}
}

func loadDemoState(t *testing.T) *ucloudsim.State {
	t.Helper()
	state, err := ucloudsim.LoadState(filepath.Join(testutil.RepoRoot(t), "examples", "ucloudsim", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// TestBenchStartupPublic: public mode, broker (EIP) and NameServer (ULB
// backend) against docker.
func TestBenchStartupPublic(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench)")
	}
	pe := startPublicEnv(t, loadDemoState(t), 0)
	ce := &cloudEnv{sim: pe.sim}
	eip := demoEIPs[0]
	cases := []startCase{
		{name: "broker_eip", driver: "rocketmq", block: fmt.Sprintf(`rocketmq {
          cluster = "c1"
          role    = "broker"
          mode    = "public"
          port    = "rmq"
          eip {
            id = %q
          }
        }`, eip), after: func(t *testing.T) {
			waitFor(t, 30*time.Second, "EIP "+eip+" released", func() bool { return ce.eipBindings()[eip] == "" })
		}},
		{name: "namesrv_ulb", driver: "rocketmq", block: fmt.Sprintf(`rocketmq {
          cluster = "c1"
          role    = "namesrv"
          mode    = "public"
          port    = "rmq"
          ulb {
            ulb_id     = %q
            vserver_id = %q
          }
        }`, demoULB, demoVServer), after: func(t *testing.T) {
			waitFor(t, 30*time.Second, "backend released", func() bool { return len(ce.backends()) == 0 })
		}},
		{name: "docker", driver: "docker"},
	}
	runs := runStarts(t, pe.nomad, pe.image, cases, benchRuns())
	reportStarts(t, pe.nomad, "public", runs, cases)
	for _, sc := range cases[:2] {
		for _, r := range runs[sc.name] {
			if !r.own {
				t.Fatalf("%s: a start without our timings in the client log", sc.name)
			}
		}
	}
	// The cloud's share of each start: the simulator's calls inside the
	// start (Task Setup to Started), and their time as the simulator
	// served them; our prepare (which holds the bind) less that time is
	// our own cost beyond the API.
	reqs := pe.sim.Requests()
	for _, sc := range cases[:2] {
		var calls, api, prep, beyond []float64
		for _, r := range runs[sc.name] {
			n, d := 0, time.Duration(0)
			for _, q := range reqs {
				if !q.Time.Before(r.setup) && !q.Time.After(r.started) {
					n++
					d += q.Duration
				}
			}
			calls, api = append(calls, float64(n)), append(api, ms(d))
			prep, beyond = append(prep, ms(r.prepare)), append(beyond, ms(r.prepare-d))
		}
		fmt.Printf("BENCH startup_public_api case=%s sim_latency_ms=0 api_calls_per_start=%.0f api_ms=%.3f prepare_ms=%.2f prepare_beyond_api_ms=%.2f (medians)\n",
			sc.name, testutil.Median(calls), testutil.Median(api), testutil.Median(prep), testutil.Median(beyond))
	}
}
