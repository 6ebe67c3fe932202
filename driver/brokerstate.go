package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/rmqnomad/rocketmq-nomad-driver/nsaddr"
)

// A running broker's desired state (docs/topics.md): its cluster's topics
// and subscription groups exist on it, and its namesrvAddr is the list of
// the cluster's passing NameServers. At start the driver seeds both into
// the task dir (prepareBroker); while the broker runs, keepBroker checks
// them every keepInterval and applies what is missing.

// Files the driver and the image's entrypoint share, under local/.
const (
	topicsSeedPath = "rocketmq/topics.json"
	groupsSeedPath = "rocketmq/subscriptionGroup.json"
	// readOnlyGracePath: seconds an empty store stays read-only (driver
	// to entrypoint); readOnlyUntilPath: the Unix time it ends (written by
	// the entrypoint when it started the broker read-only).
	readOnlyGracePath = "rocketmq/read-only-grace"
	readOnlyUntilPath = "rocketmq/read-only-until"
)

// brokerSeenKey is the Consul key that says a broker name has run in a
// cluster: a later start of that name with an empty store is a
// replacement, whose consumers may hold offsets of the lost store.
func brokerSeenKey(cluster, broker string) string {
	return desiredKVPrefix(cluster) + "brokers/" + broker
}

const (
	// keepInterval is how often a running broker's state is re-checked.
	keepInterval = 10 * time.Second
	// startLookupTimeout bounds the Consul reads of a broker's start.
	startLookupTimeout = 3 * time.Second
	// keepCallTimeout bounds one re-check.
	keepCallTimeout = 10 * time.Second
)

// brokerKeep is what the driver keeps of a broker task, in its state.
type brokerKeep struct {
	// Admin is where this host reaches the broker: the host IP and port
	// its listen port is mapped to (never the EIP).
	Admin string
	// Namesrv is set when the driver wrote namesrvAddr at start, and so
	// keeps it current: RocketMQ 5.3.3 then re-reads namesrvAddr from its
	// config every updateNameServerAddrPeriod and never asks an address
	// server (BrokerController.initializeScheduledTasks).
	Namesrv bool
	AllocID string
	// LocalDir is the task's local/ dir on the host.
	LocalDir string
	// Namespace, JobID, Group and NodeName name the allocation in the
	// replica record of a replicated broker; HAAddr is its
	// brokerIP2:haListenPort ("" without ha_port).
	Namespace, JobID, Group, NodeName string
	HAAddr                            string
}

// stateConsul returns the Consul client of the desired state and the
// NameServer lists, nil when the plugin has no Consul (no consul block and
// no CONSUL_HTTP_ADDR).
func (d *Driver) stateConsul() *consulapi.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.desiredConsul != nil || d.desiredConsulErr != nil {
		return d.desiredConsul
	}
	if d.config.Consul == nil && os.Getenv("CONSUL_HTTP_ADDR") == "" {
		d.desiredConsulErr = errors.New("no consul configured")
		return nil
	}
	c, err := consulClient(d.config.Consul)
	if err != nil {
		d.desiredConsulErr = err
		d.logger.Warn("no desired state from consul: client config is unusable", "error", err)
		return nil
	}
	d.desiredConsul = c
	return c
}

// desired returns the job's topics and groups plus the cluster's Consul
// KV ones. A KV read that fails leaves those out and is returned as the
// error: nothing is ever deleted, so a partial set is safe to apply.
func (d *Driver) desired(ctx context.Context, rmq *RocketMQConfig) (desiredSet, []kvProblem, error) {
	s := rmq.BrokerDesired.declared()
	c := d.stateConsul()
	if c == nil {
		return s, nil, nil
	}
	pairs, _, err := c.KV().List(desiredKVPrefix(rmq.Cluster), (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return s, nil, fmt.Errorf("read %s from consul: %w", desiredKVPrefix(rmq.Cluster), err)
	}
	kv, probs := fromKV(rmq.Cluster, pairs)
	if conflicts := s.merge(kv); len(conflicts) > 0 {
		probs = append(probs, kvProblem{desiredKVPrefix(rmq.Cluster) + "topics/" + strings.Join(conflicts, ","),
			"also declared in the job, with other settings; the job's declaration wins"})
	}
	return s, probs, nil
}

// nameServers returns the cluster's passing NameServers as the address
// endpoint serves them, "" when there are none or Consul is not set up.
func (d *Driver) nameServers(ctx context.Context, cluster string) (string, error) {
	c := d.stateConsul()
	if c == nil {
		return "", nil
	}
	d.mu.RLock()
	pattern := ""
	if d.config.NSAddr != nil {
		pattern = d.config.NSAddr.ServiceName
	}
	d.mu.RUnlock()
	service, err := nsaddr.ServiceName(pattern, cluster)
	if err != nil {
		return "", fmt.Errorf("nsaddr.service_name: %w", err)
	}
	entries, _, err := c.Health().Service(service, "", true, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("read passing instances of %s from consul: %w", service, err)
	}
	list, _ := nsaddr.List(entries, false)
	return list, nil
}

// prepareBroker writes, before a broker's container starts, the seed of
// its desired topics and groups (used by the entrypoint only when the
// store has none) and, unless the task finds its NameServers itself, the
// current NameServer list as namesrvAddr in the driver's broker.conf: the
// broker then registers as soon as it has started instead of after its
// first address-server lookup (10 s after start) and the next
// registration tick.
func (d *Driver) prepareBroker(cfg *drivers.TaskConfig, rmq *RocketMQConfig, listen structs.AllocatedPortMapping) (*brokerKeep, error) {
	ctx, cancel := context.WithTimeout(d.ctx, startLookupTimeout)
	defer cancel()
	logger := d.logger.With("task_id", cfg.ID, "cluster", rmq.Cluster)

	set, probs, err := d.desired(ctx, rmq)
	if err != nil {
		logger.Warn("starting the broker with the job's topics only; consul KV is re-read while it runs", "error", err)
	}
	for _, p := range probs {
		logger.Warn("consul key left out of the desired topics and groups", "key", p.Key, "reason", p.Reason)
	}
	topics, groups, err := set.seedFiles(time.Now())
	if err != nil {
		return nil, fmt.Errorf("failed to render the topic seed of task %s: %w", cfg.ID, err)
	}
	for path, body := range map[string][]byte{topicsSeedPath: topics, groupsSeedPath: groups} {
		if err := writeLocal(cfg, path, body); err != nil {
			return nil, err
		}
	}

	// In controller mode an empty replica copies the master's log: its
	// offsets go on, and it must be able to become a writable master.
	grace := rmq.BrokerDesired.emptyStoreReadOnly()
	if rmq.Replicated() {
		grace = 0
	}
	var graceFile []byte
	if name := cfg.Env["ROCKETMQ_BROKER_NAME"]; grace > 0 && name != "" {
		if seen, err := d.brokerSeen(ctx, rmq.Cluster, name); err != nil {
			logger.Warn("cannot tell whether the broker ran before; an empty store takes writes at once", "error", err)
		} else if seen {
			graceFile = []byte(strconv.Itoa(int(grace.Seconds())) + "\n")
		}
	}
	if err := writeLocal(cfg, readOnlyGracePath, graceFile); err != nil {
		return nil, err
	}

	host := listen.HostIP
	if host == "" {
		host = cfg.Env["NOMAD_IP_"+rmq.Port]
	}
	keep := &brokerKeep{Admin: net.JoinHostPort(host, strconv.Itoa(listen.Value)), AllocID: cfg.AllocID, LocalDir: cfg.TaskDir().LocalDir,
		Namespace: cfg.Namespace, JobID: jobID(cfg), Group: cfg.TaskGroupName, NodeName: cfg.NodeName}
	tn, gn := set.names()
	source := rmq.NamesrvSource
	switch {
	case source == NamesrvFromTask:
	case cfg.Env["NAMESRV_ADDR"] != "":
		source = "task's NAMESRV_ADDR"
	default:
		list, err := d.nameServers(ctx, rmq.Cluster)
		switch {
		case err != nil:
			logger.Warn("no NameServer list from consul at start; the broker finds them through its own settings", "error", err)
		case list == "":
			logger.Info("no passing NameServer in consul at start; the broker finds them through its own settings")
		default:
			// The broker re-reads namesrvAddr every
			// updateNameServerAddrPeriod (default 2 min; a string
			// compare): every second, so the keeper's updates apply at
			// once.
			if err := appendLocal(cfg, brokerConfPath, "namesrvAddr="+list+"\nupdateNameServerAddrPeriod=1000\n"); err != nil {
				return nil, err
			}
			keep.Namesrv = true
			source = "consul: " + list
		}
	}
	logger.Info("broker desired state", "topics", tn, "subscription_groups", gn, "namesrv", source, "admin_addr", keep.Admin,
		"empty_store_read_only", graceFile != nil)
	return keep, nil
}

// brokerSeen reports whether a broker name has run in the cluster before
// (brokerSeenKey); false without Consul.
func (d *Driver) brokerSeen(ctx context.Context, cluster, broker string) (bool, error) {
	c := d.stateConsul()
	if c == nil {
		return false, nil
	}
	p, _, err := c.KV().Get(brokerSeenKey(cluster, broker), (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("read %s from consul: %w", brokerSeenKey(cluster, broker), err)
	}
	return p != nil, nil
}

// writeLocal writes body to local/<rel> of the task, or removes the file
// when body is nil (a seed of an earlier start must not linger).
func writeLocal(cfg *drivers.TaskConfig, rel string, body []byte) error {
	dir := cfg.TaskDir().LocalDir
	if dir == "" {
		return fmt.Errorf("failed to write %s of task %s: task has no local dir", rel, cfg.ID)
	}
	path := filepath.Join(dir, rel)
	if body == nil {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("failed to remove %s of task %s: %w", rel, cfg.ID, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("failed to create %s of task %s: %w", filepath.Dir(rel), cfg.ID, err)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return fmt.Errorf("failed to write %s of task %s: %w", rel, cfg.ID, err)
	}
	return nil
}

// appendLocal appends text to local/<rel> of the task.
func appendLocal(cfg *drivers.TaskConfig, rel, text string) error {
	path := filepath.Join(cfg.TaskDir().LocalDir, rel)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("failed to add to %s of task %s: %w", rel, cfg.ID, err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("failed to add to %s of task %s: %w", rel, cfg.ID, err)
	}
	return f.Close()
}
