//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

func dockerJobSpec(job, image string) string {
	return fmt.Sprintf(`
job %[1]q {
  datacenters = ["dc1"]
  group "g" {
    network {
      port "http" {}
    }
    task "app" {
      driver = "docker"
      config {
        image = %[2]q
        args  = ["serve"]
        ports = ["http"]
      }
      env {
        PORT = "${NOMAD_PORT_http}"
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
`, job, image)
}

// TestCoexistWithBuiltinDocker runs a built-in docker task and a rocketmq
// task on one client, with the documented setup (built-in reaper off, ours
// on with a 5 s grace), and checks that neither container is removed, while
// a genuinely dangling rocketmq container of that node is.
func TestCoexistWithBuiltinDocker(t *testing.T) {
	e := setup(t)
	c := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return reaperHCL }})

	c.RunJob(t, dockerJobSpec("builtin", e.image))
	c.RunJob(t, jobSpec("ours", e.image, brokerBlock))
	builtin := c.WaitRunning(t, "builtin", 1, 90*time.Second)[0]
	ours := c.WaitRunning(t, "ours", 1, 90*time.Second)[0]
	builtinCID, oursCID := containerOf(t, builtin.ID), containerOf(t, ours.ID)

	// A container that looks like one of ours for this node but that no
	// task tracks: our reaper must remove it.
	dangling, err := testutil.Docker("run", "-d",
		"--label", "com.hashicorp.nomad.alloc_id=00000000-0000-0000-0000-000000000000",
		"--label", "com.github.rmqnomad.driver=rocketmq",
		"--label", "com.github.rmqnomad.node_id="+ours.NodeID,
		e.image, "serve")
	if err != nil {
		t.Fatalf("start dangling container: %v", err)
	}
	t.Cleanup(func() { _, _ = testutil.Docker("rm", "-f", dangling) })
	// And one labelled for another node sharing the engine: left alone.
	otherNode, err := testutil.Docker("run", "-d",
		"--label", "com.hashicorp.nomad.alloc_id=00000000-0000-0000-0000-000000000001",
		"--label", "com.github.rmqnomad.driver=rocketmq",
		"--label", "com.github.rmqnomad.node_id=some-other-node",
		e.image, "serve")
	if err != nil {
		t.Fatalf("start other node's container: %v", err)
	}
	t.Cleanup(func() { _, _ = testutil.Docker("rm", "-f", otherNode) })

	waitFor(t, 60*time.Second, "our reaper removes the dangling rocketmq container", func() bool {
		out, err := testutil.Docker("ps", "-aq", "--filter", "id="+dangling)
		return err == nil && out == ""
	})
	// Several more reaper periods past the grace.
	time.Sleep(6 * time.Second)

	for name, id := range map[string]string{"built-in docker task": builtinCID, "rocketmq task": oursCID, "other node's container": otherNode} {
		out, err := testutil.Docker("inspect", "-f", "{{.State.Running}}", id)
		if err != nil || out != "true" {
			t.Fatalf("%s container %s was removed or stopped (running=%q, err=%v)", name, id, out, err)
		}
	}
	c.WaitRunning(t, "builtin", 1, 10*time.Second)
	c.WaitRunning(t, "ours", 1, 10*time.Second)
}
