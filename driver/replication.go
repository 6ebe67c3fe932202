package driver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/drivers"
)

// Replicated broker groups run in RocketMQ's controller mode: a set of
// controllers (DLedger, role = "controller") elects each broker group's
// master from its SyncStateSet. See docs/replication.md.

// defaultMinInSyncReplicas is what an ack waits for unless the job says
// otherwise: the master and at least one slave.
const defaultMinInSyncReplicas = 2

// controllerConfPath is where, relative to the task dir's local/, the driver
// writes a controller's config fragment.
const controllerConfPath = "rocketmq/controller.conf"

// EnvHAPort tells a broker the host port of its HA label.
const EnvHAPort = "ROCKETMQ_HA_PORT"

// Replicated reports whether a broker runs in controller mode.
func (c *RocketMQConfig) Replicated() bool {
	return c.Role == RoleBroker && len(c.Controllers) > 0
}

// validateReplication checks the replication fields; messages name the
// field and the fix, like Validate's.
func (c *RocketMQConfig) validateReplication() []string {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	if c.Role != RoleController && len(c.Peers) > 0 {
		add(`rocketmq.peers: only controllers have peers; a broker lists them in controllers = [...]`)
	}
	if c.Role != RoleBroker {
		if c.FastPort != "" {
			add(`rocketmq.fast_port: only brokers have a fast channel; remove it from this %s`, c.Role)
		}
		if c.HAPort != "" {
			add(`rocketmq.ha_port: only brokers replicate; remove it from this %s`, c.Role)
		}
		if len(c.Controllers) > 0 {
			add(`rocketmq.controllers: only brokers talk to controllers; remove it from this %s`, c.Role)
		}
		if c.MinInSyncReplicas != 0 {
			add(`rocketmq.min_in_sync_replicas: only replicated brokers wait for replicas; remove it from this %s`, c.Role)
		}
	}
	switch c.Role {
	case RoleController:
		if c.Mode != ModePrivate {
			add(`rocketmq.mode: a controller is reached by brokers and by its peers over private IPs; set mode = "private"`)
		}
		if c.EIP != nil || c.ULB != nil {
			add(`rocketmq: a controller binds no EIP and no ULB; remove the eip/ulb block`)
		}
		if len(c.Peers) == 0 {
			add(`rocketmq.peers: a controller needs the ip:port of every controller (itself included), in the same order on each, e.g. peers = ["10.0.0.1:9878", "10.0.0.2:9878", "10.0.0.3:9878"]`)
		}
		errs = append(errs, checkAddrList("rocketmq.peers", c.Peers)...)
		if n := len(c.Peers); n > 0 && n%2 == 0 {
			add(`rocketmq.peers: %d controllers tolerate no more failures than %d; use an odd number (3 or 5)`, n, n-1)
		}
	case RoleBroker:
		errs = append(errs, checkAddrList("rocketmq.controllers", c.Controllers)...)
		if len(c.Controllers) > 0 && c.HAPort == "" {
			add(`rocketmq.ha_port: a replicated broker (controllers set) needs a second port label its slaves replicate from; add network { port "ha" {} }, list it in ports and set ha_port = "ha"`)
		}
		if c.HAPort != "" && c.HAPort == c.Port {
			add(`rocketmq.ha_port: %q is also rocketmq.port; the HA server needs a port of its own`, c.HAPort)
		}
		if len(c.Controllers) > 0 && c.FastPort == "" {
			add(`rocketmq.fast_port: a replicated broker needs its fast channel (listenPort-2) reachable: slaves copy the master's topics through it; use static ports, e.g. port "rmq" { static = 30911 } and port "fast" { static = 30909 }, list both in ports and set fast_port = "fast"`)
		}
		if c.FastPort != "" && (c.FastPort == c.Port || c.FastPort == c.HAPort) {
			add(`rocketmq.fast_port: %q is also rocketmq.port or rocketmq.ha_port; it needs a port of its own`, c.FastPort)
		}
		if c.MinInSyncReplicas != 0 && len(c.Controllers) == 0 {
			add(`rocketmq.min_in_sync_replicas: only applies in controller mode; set controllers = [...] or remove it`)
		}
		if c.MinInSyncReplicas < 0 {
			add(`rocketmq.min_in_sync_replicas: %d is not a replica count; set 1 (master only), 2 (master and a slave) or more`, c.MinInSyncReplicas)
		}
	}
	return errs
}

// checkAddrList checks a list of controller addresses: IP:port each, no
// duplicates.
func checkAddrList(field string, addrs []string) []string {
	var errs []string
	seen := map[string]int{}
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(strings.TrimSpace(a))
		p, perr := strconv.Atoi(port)
		switch {
		case err != nil || perr != nil || p < 1 || p > 65535:
			errs = append(errs, fmt.Sprintf(`%s[%d]: %q is not ip:port, e.g. "10.0.0.1:9878"`, field, i, a))
			continue
		case net.ParseIP(host) == nil:
			errs = append(errs, fmt.Sprintf(`%s[%d]: %q must be an IP, not a host name: controllers are matched by address`, field, i, a))
			continue
		}
		key := net.JoinHostPort(host, port)
		if j, dup := seen[key]; dup {
			errs = append(errs, fmt.Sprintf(`%s[%d]: %s is also entry %d; list each controller once`, field, i, key, j))
		}
		seen[key] = i
	}
	return errs
}

// haPort finds the port mapping named by rocketmq.ha_port. Slaves connect
// to brokerIP2:haListenPort, so the HA server must listen on the host port.
func haPort(cfg *drivers.TaskConfig, rmq *RocketMQConfig) (structs.AllocatedPortMapping, error) {
	if cfg.Resources != nil && cfg.Resources.Ports != nil {
		if m, ok := cfg.Resources.Ports.Get(rmq.HAPort); ok {
			if m.To > 0 && m.To != m.Value {
				return m, fmt.Errorf("rocketmq.ha_port: port %q maps host port %d to container port %d, but slaves connect to the port the broker advertises as haListenPort; remove `to` from the port", rmq.HAPort, m.Value, m.To)
			}
			return m, nil
		}
	}
	return structs.AllocatedPortMapping{}, fmt.Errorf("rocketmq.ha_port: port label %q is not in the task's ports; add `network { port %q {} }` to the group and list it in the task's `ports`", rmq.HAPort, rmq.HAPort)
}

// fastPort checks the port mapping named by rocketmq.fast_port: RocketMQ
// serves its fast (VIP) channel at listenPort-2, always, and a slave reads
// the master's topic config there (brokerIP1:listenPort-2), so the host port
// listenPort-2 must reach the container's listenPort-2. Nomad cannot
// allocate two dynamic ports two apart: both must be static.
func fastPort(cfg *drivers.TaskConfig, rmq *RocketMQConfig, listen structs.AllocatedPortMapping) error {
	if rmq.FastPort == "" {
		return nil
	}
	var m structs.AllocatedPortMapping
	ok := false
	if cfg.Resources != nil && cfg.Resources.Ports != nil {
		m, ok = cfg.Resources.Ports.Get(rmq.FastPort)
	}
	if !ok {
		return fmt.Errorf("rocketmq.fast_port: port label %q is not in the task's ports; add `network { port %q { static = %d } }` (listenPort-2) to the group and list it in the task's `ports`", rmq.FastPort, rmq.FastPort, listen.Value-2)
	}
	if m.Value != listen.Value-2 || (m.To > 0 && m.To != m.Value) {
		return fmt.Errorf("rocketmq.fast_port: port %q is host port %d (container %d), but RocketMQ serves its fast channel at listenPort-2 = %d and slaves read the master's topics there; give %q and %q static ports two apart, e.g. static = %d and static = %d, without `to`",
			rmq.FastPort, m.Value, containerPort(m), listen.Value-2, rmq.Port, rmq.FastPort, listen.Value, listen.Value-2)
	}
	return nil
}

// privateIP is the address other hosts reach this task's port at: the
// allocated port's host IP, else NOMAD_IP_<label>. In public mode this is
// not the EIP: replication stays on the private network.
func privateIP(cfg *drivers.TaskConfig, m structs.AllocatedPortMapping, label string) string {
	if m.HostIP != "" {
		return m.HostIP
	}
	return cfg.Env["NOMAD_IP_"+label]
}

// brokerReplicationConf returns the broker.conf lines that make a broker a
// replica: its HA address, and in controller mode the controller keys.
// ackReplicas is min_in_sync_replicas with its default applied.
func brokerReplicationConf(rmq *RocketMQConfig, haIP string, haHostPort int) string {
	if rmq.HAPort == "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "brokerIP2=%s\nhaListenPort=%d\n", haIP, haHostPort)
	if !rmq.Replicated() {
		return b.String()
	}
	minISR := rmq.MinInSyncReplicas
	if minISR == 0 {
		minISR = defaultMinInSyncReplicas
	}
	addrs := make([]string, len(rmq.Controllers))
	for i, a := range rmq.Controllers {
		addrs[i] = strings.TrimSpace(a)
	}
	// brokerId -1 and role SLAVE: the controller assigns the id (kept in
	// the store's brokerIdentity file) and elects the master. An ack waits
	// for every replica of the SyncStateSet, and for at least minISR.
	fmt.Fprintf(&b, "enableControllerMode=true\ncontrollerAddr=%s\nbrokerId=-1\nbrokerRole=SLAVE\nallAckInSyncStateSet=true\nminInSyncReplicas=%d\n",
		strings.Join(addrs, ";"), minISR)
	return b.String()
}

// controllerSelf finds this controller's DLedger id, n<i> for the peers
// entry i that is this task's address.
func controllerSelf(rmq *RocketMQConfig, self Address) (string, error) {
	for i, p := range rmq.Peers {
		host, port, err := net.SplitHostPort(strings.TrimSpace(p))
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.Equal(net.ParseIP(self.IP)) && port == strconv.Itoa(self.Port) {
			return "n" + strconv.Itoa(i), nil
		}
	}
	return "", fmt.Errorf("rocketmq.peers: this controller listens at %s, which is none of the peers %v; give each controller group a static port and pin it to the node whose IP its peers entry names (or set advertise_ip)",
		self, rmq.Peers)
}

// controllerPeers renders controllerDLegerPeers: n0-ip:port;n1-ip:port;...
func controllerPeers(rmq *RocketMQConfig) string {
	parts := make([]string, len(rmq.Peers))
	for i, p := range rmq.Peers {
		parts[i] = fmt.Sprintf("n%d-%s", i, strings.TrimSpace(p))
	}
	return strings.Join(parts, ";")
}

// writeControllerConf writes the controller config fragment the image
// merges into the controller's config: the DLedger group, its peers and
// this controller's id. The store path is the image's (the task's data dir).
func writeControllerConf(cfg *drivers.TaskConfig, rmq *RocketMQConfig, selfID string, port int) error {
	body := fmt.Sprintf("# written by the rocketmq Nomad driver; do not edit\ncontrollerType=DLedger\ncontrollerDLegerGroup=%s\ncontrollerDLegerPeers=%s\ncontrollerDLegerSelfId=%s\nlistenPort=%d\nenableElectUncleanMaster=false\n",
		rmq.Cluster, controllerPeers(rmq), selfID, port)
	return writeTaskFile(cfg, controllerConfPath, body, "controller config")
}

// writeTaskFile writes body to local/<rel> of the task.
func writeTaskFile(cfg *drivers.TaskConfig, rel, body, what string) error {
	dir := cfg.TaskDir().LocalDir
	if dir == "" {
		return fmt.Errorf("failed to write %s of task %s: task has no local dir", what, cfg.ID)
	}
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("failed to create %s dir for task %s: %w", what, cfg.ID, err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return fmt.Errorf("failed to write %s of task %s: %w", what, cfg.ID, err)
	}
	return nil
}
