package testutil

import (
	"fmt"
	"testing"
	"time"
)

// ConsulCluster is a Consul datacenter on loopback: one server agent (a dev
// agent, as StartConsul starts) and one client agent (server = false) per
// simulated host, each with its own node name, data directory and ports,
// joined to the server's LAN gossip. As on real hosts, each Nomad agent
// talks to its own Consul agent (NomadOptions.Consul): a Nomad client's
// service sync then only touches the services registered through its own
// agent.
//
// The server runs with the dev agent's fast LAN gossip (100 ms probes), so
// a killed client agent's serfHealth turns critical about 2 s after the
// kill; with Consul's default gossip it takes about 5-7 s.
//
// Every agent is stopped on t.Cleanup, the clients first.
type ConsulCluster struct {
	// Server is the server agent (node "rmq-test"), the leader.
	Server *ConsulAgent
	// Clients are the client agents, Clients[i] with node name "client-i"
	// (the name StartNomad gives Nomad client i).
	Clients []*ConsulAgent
}

// StartConsulCluster starts the server agent and n client agents and waits
// until every client has joined, its node is in the catalog with a passing
// serfHealth check, and every agent sees all the others alive (so the
// syncs the joins trigger are done before the test starts). Without a
// Consul binary the test is skipped, or failed when RMQ_REQUIRE_AGENTS=1.
func StartConsulCluster(t testing.TB, n int) *ConsulCluster {
	t.Helper()
	c := &ConsulCluster{Server: StartConsul(t)}
	for i := 0; i < n; i++ {
		c.Clients = append(c.Clients, startConsulAgent(t, consulAgentSpec{
			nodeName: fmt.Sprintf("client-%d", i),
			join:     c.Server.SerfLANAddr,
		}))
	}
	for _, a := range append([]*ConsulAgent{c.Server}, c.Clients...) {
		a.waitMembers(t, n+1, consulStartTimeout)
	}
	return c
}

// waitMembers waits until the agent sees n LAN members alive.
func (a *ConsulAgent) waitMembers(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	alive := 0
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		members, err := a.Client.Agent().Members(false)
		if err != nil {
			continue
		}
		alive = 0
		for _, m := range members {
			if m.Status == 1 { // serf.StatusAlive
				alive++
			}
		}
		if alive >= n {
			return
		}
	}
	t.Fatalf("consul agent %s sees %d members alive after %s, want %d", a.NodeName, alive, timeout, n)
}
