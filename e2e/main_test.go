//go:build e2e

// Package e2e holds end-to-end tests against real Nomad, Consul and Docker
// agents. Run them with `make e2e` (or `make test`), which builds the agents
// and starts dockerd first.
package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// env is what every e2e test shares: the plugin and test image are built
// once per test binary.
type env struct {
	pluginDir string
	image     string
}

func setup(t *testing.T) env {
	t.Helper()
	testutil.EnsureDocker(t)
	return env{pluginDir: testutil.BuildPlugin(t), image: testutil.BuildTestImage(t)}
}

// reaperHCL is the client config every e2e client uses: our reaper on with a
// short grace, docker's built-in reaper off (the documented safe setup; see
// README "Running beside the built-in docker driver").
const reaperHCL = `
plugin "rmq-driver" {
  config {
    docker {
      gc {
        dangling_containers {
          enabled        = true
          period         = "1s"
          creation_grace = "5s"
        }
      }
    }
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

// jobSpec renders a service job with one rocketmq task running the test app.
func jobSpec(job, image, rocketmqBlock string) string {
	return appJob(job, image, "rocketmq", rocketmqBlock)
}

// appJob is a one-task service job running the test app, the same shape
// for every driver; rocketmqBlock is "" for the docker driver, which sets
// no ROCKETMQ_LISTEN_PORT: the app then listens on PORT.
func appJob(job, image, driver, rocketmqBlock string) string {
	return fmt.Sprintf(`
job %[1]q {
  datacenters = ["dc1"]
  group "g" {
    network {
      port "rmq" {}
    }
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "app" {
      driver = %[3]q
      config {
        image = %[2]q
        args  = ["serve"]
        ports = ["rmq"]
        %[4]s
      }
      env {
        PORT = "${NOMAD_PORT_rmq}"
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
`, job, image, driver, rocketmqBlock)
}

const brokerBlock = `rocketmq {
          cluster = "c1"
          role    = "broker"
          port    = "rmq"
        }`

func nomadOK(t *testing.T, c *testutil.NomadCluster, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := c.Nomad(ctx, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// containerOf returns the id of the running container of alloc.
func containerOf(t *testing.T, allocID string) string {
	t.Helper()
	id, err := testutil.Docker("ps", "-q", "--no-trunc", "--filter", "label=com.hashicorp.nomad.alloc_id="+allocID)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("alloc %s: want one running container, got %q", allocID, id)
	}
	return id
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
