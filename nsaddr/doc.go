// Package nsaddr serves RocketMQ's "name server address server" protocol from
// Consul: GET /rocketmq/<subgroup> answers the cluster's NameServer list as
// exactly "ip:port;ip:port" (200 text/plain, one line, sorted, no
// duplicates), the way RocketMQ's Java and Go clients (and brokers with
// fetchNamesrvAddrByAddressServer=true) read it. It replaces the seed's
// go-run container re-rendered by consul-template behind fabio.
//
// The subgroup is the cluster id; the clients' default subgroup "nsaddr"
// maps to Config.DefaultCluster. A cluster's NameServers are the passing
// instances of the Consul service named by Config.ServiceNamePattern
// (default "nameServer{{cluster}}"). Each watched cluster has one goroutine
// running Consul blocking health queries (passing only); it starts with the
// first request for the cluster and stops after Config.IdleTimeout without
// one. Its answer is rendered once per change and swapped atomically, so a
// request does no Consul call, takes no lock and allocates little.
//
// Answers: 200 with the list; 404 for a cluster whose service is not in
// Consul's catalog; 503 when no instance passes (never an empty 200), and
// when Consul is unreachable and no list is known yet or the last known one
// is older than Config.StaleAfter. In between the last known list is served
// with the headers X-Nsaddr-Stale: true and X-Nsaddr-Stale-Since. 400 for a
// malformed subgroup, 405 for methods other than GET and HEAD, 413 for a
// request with a body.
//
// Also: GET /healthz (liveness), /metrics (Prometheus, the Server's own
// registry) and /clusters (JSON view of all clusters for operators). See
// docs/nsaddr.md.
package nsaddr
