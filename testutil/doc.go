// Package testutil holds helpers shared by the project's tests: starting the
// real agents (Consul, Nomad, Docker) the tests run against, on free loopback
// ports, with their output kept in the test's temporary directory and printed
// when the test fails.
//
// Agents are built by `make tools` (scripts/tools.sh) into
// $HOME/.cache/rmq-nomad-driver/bin. When a binary is missing a test is
// skipped with a loud reason, unless RMQ_REQUIRE_AGENTS=1 (set by `make
// test`), in which case it fails.
//
// Tests with several Nomad clients give each its own Consul agent, as on real
// hosts: StartConsulCluster (a dev server plus one client agent per host)
// and NomadOptions.Consul. With one shared agent each Nomad client's service
// sync deregisters the others' services once its first minute is over
// (TestSharedConsulAgentLosesServices shows it). NomadCluster.KillHost
// simulates a host's sudden death, ReviveHost brings it back.
package testutil
