package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/drivers"
)

// stateVersion is the version of taskState. Bump it, and keep decoding the
// old one, whenever the envelope changes shape.
const stateVersion = 1

// taskState is our driver state envelope: docker's own state bytes and what
// we need to recover and release a task without its task config, which
// Nomad does not hand back after a client restart.
type taskState struct {
	Version     int
	DockerState []byte
	ContainerID string
	NodeID      string
	AllocIndex  int
	RocketMQ    RocketMQConfig
	Advertised  Address
	Binding     *Binding
	StartedAt   time.Time
	// TaskName names the task in the events of later re-checks.
	TaskName string
	// Keep is a broker's desired-state keeping (brokerstate.go).
	Keep *brokerKeep
}

// Address is what a RocketMQ process advertises to its clients.
type Address struct {
	IP   string
	Port int
}

func (a Address) String() string { return net.JoinHostPort(a.IP, strconv.Itoa(a.Port)) }

// dockerHandleState mirrors the fields of docker's private handle state that
// we read (msgpack ignores the rest).
type dockerHandleState struct {
	ContainerID string
}

// Environment variables the driver sets in every rocketmq task.
const (
	EnvCluster        = "ROCKETMQ_CLUSTER"
	EnvRole           = "ROCKETMQ_ROLE"
	EnvAdvertisedIP   = "ROCKETMQ_ADVERTISED_IP"
	EnvAdvertisedPort = "ROCKETMQ_ADVERTISED_PORT"
	EnvListenPort     = "ROCKETMQ_LISTEN_PORT"
)

// brokerConfPath is where, relative to the task dir's local/, the driver
// writes the broker config fragment.
const brokerConfPath = "rocketmq/broker.conf"

// fatal marks err as not recoverable: restarting the task with the same job
// spec would fail the same way.
func fatal(err error) error { return structs.NewRecoverableError(err, false) }

// recoverable marks err as worth a restart of the task (Nomad's restart
// policy applies). Nomad treats an unmarked error from StartTask as fatal.
func recoverable(err error) error { return structs.NewRecoverableError(err, true) }

// StartTask validates the rocketmq block, works out the address the process
// must advertise, tells the process, then starts the container through the
// docker driver.
func (d *Driver) StartTask(cfg *drivers.TaskConfig) (*drivers.TaskHandle, *drivers.DriverNetwork, error) {
	// Start timings, for the "started rocketmq task" log line: our work
	// before docker's StartTask (prepare), docker's StartTask itself, and
	// our work after it (finish). bench: driver start latency reads them.
	begin := time.Now()
	var tc TaskConfig
	if err := cfg.DecodeDriverConfig(&tc); err != nil {
		return nil, nil, fatal(fmt.Errorf("failed to decode driver config: %w", err))
	}
	rmq := tc.RocketMQ
	if err := rmq.Validate(); err != nil {
		return nil, nil, fatal(err)
	}
	listen, err := listenPort(cfg, &rmq)
	if err != nil {
		return nil, nil, fatal(err)
	}
	if rmq.Role == RoleProxy {
		// Checked before anything is bound for the task.
		if _, _, err := proxyNamesrv(cfg, &rmq); err != nil {
			return nil, nil, fatal(err)
		}
	}
	allocIndex, _ := strconv.Atoi(cfg.Env["NOMAD_ALLOC_INDEX"])

	// The task's record is tracked only once its container runs, but bind
	// and the rollback hold its binding lock all the same. A failed start
	// releases what bind took; the bind's context may have run out by then
	// (a long image pull), so the rollback gets a budget of its own.
	rec := newTaskRecord(d.ctx)
	ok := false
	defer func() {
		if ok {
			return
		}
		if err := d.releaseBinding(cfg.ID, rec, d.bindTimeout(), true); err != nil {
			d.logUnreleased(cfg.ID, rec.state.Binding, "failed start", err)
		}
	}()
	ctx, cancel := context.WithTimeout(d.ctx, d.bindTimeout())
	rec.mu.Lock()
	binding, boundIP, err := d.bind(ctx, cfg, &rmq, allocIndex, listen.Value)
	rec.state.Binding = binding
	rec.mu.Unlock()
	cancel()
	if err != nil {
		d.metrics.tasks.WithLabelValues(rmq.Role, "bind_failed").Inc()
		return nil, nil, err
	}

	adv := Address{IP: rmq.AdvertiseIP, Port: listen.Value}
	if adv.IP == "" {
		adv.IP = boundIP
	}
	if adv.IP == "" {
		adv.IP = listen.HostIP
	}
	if adv.IP == "" {
		adv.IP = cfg.Env["NOMAD_IP_"+rmq.Port]
	}

	cfg = cfg.Copy()
	cfg.Env[EnvCluster] = rmq.Cluster
	cfg.Env[EnvRole] = rmq.Role
	cfg.Env[EnvAdvertisedIP] = adv.IP
	cfg.Env[EnvAdvertisedPort] = strconv.Itoa(adv.Port)
	cfg.Env[EnvListenPort] = strconv.Itoa(containerPort(listen))
	var keep *brokerKeep
	switch rmq.Role {
	case RoleBroker:
		replication, haAddr := "", ""
		if err := fastPort(cfg, &rmq, listen); err != nil {
			return nil, nil, fatal(err)
		}
		if rmq.HAPort != "" {
			ha, err := haPort(cfg, &rmq)
			if err != nil {
				return nil, nil, fatal(err)
			}
			cfg.Env[EnvHAPort] = strconv.Itoa(ha.Value)
			haIP := privateIP(cfg, ha, rmq.HAPort)
			replication = brokerReplicationConf(&rmq, haIP, ha.Value)
			haAddr = net.JoinHostPort(haIP, strconv.Itoa(ha.Value))
		}
		if err := writeBrokerConf(cfg, &rmq, adv, replication); err != nil {
			return nil, nil, err
		}
		var err error
		if keep, err = d.prepareBroker(cfg, &rmq, listen); err != nil {
			return nil, nil, err
		}
		keep.HAAddr = haAddr
	case RoleController:
		self, err := controllerSelf(&rmq, adv)
		if err != nil {
			return nil, nil, fatal(err)
		}
		if err := writeControllerConf(cfg, &rmq, self, adv.Port); err != nil {
			return nil, nil, err
		}
		d.logger.Info("controller peers", "task_id", cfg.ID, "cluster", rmq.Cluster, "self_id", self, "peers", controllerPeers(&rmq))
	case RoleProxy:
		if err := writeProxyConf(cfg, &rmq, containerPort(listen)); err != nil {
			return nil, nil, err
		}
	}
	if err := addLabels(cfg, map[string]string{
		labelDriver:  PluginName,
		labelNodeID:  cfg.NodeID,
		labelCluster: rmq.Cluster,
		labelRole:    rmq.Role,
	}); err != nil {
		return nil, nil, fatal(err)
	}

	// The event goes out before the container starts, not after: the
	// client persists every task event under the task runner's state lock,
	// which the Started transition also needs, so an event sent as
	// StartTask returns delays Started by one state write. Sent here, that
	// write overlaps docker's create and start. What it says is already
	// true: the process gets this address in its environment.
	d.emit(cfg, fmt.Sprintf("rocketmq %s advertises %s", rmq.Role, adv), map[string]string{
		"advertised_ip": adv.IP, "advertised_port": strconv.Itoa(adv.Port),
	})
	dockerBegin := time.Now()
	h, dnet, err := d.Driver.StartTask(cfg)
	if err != nil {
		return nil, nil, err
	}
	dockerEnd := time.Now()
	var dhs dockerHandleState
	if err := h.GetDriverState(&dhs); err != nil {
		d.cleanupFailedStart(cfg.ID)
		return nil, nil, fmt.Errorf("failed to read docker state of task %s: %w", cfg.ID, err)
	}
	st := taskState{
		Version:     stateVersion,
		DockerState: h.DriverState,
		ContainerID: dhs.ContainerID,
		NodeID:      cfg.NodeID,
		AllocIndex:  allocIndex,
		RocketMQ:    rmq,
		Advertised:  adv,
		Binding:     binding,
		StartedAt:   time.Now(),
		TaskName:    cfg.Name,
		Keep:        keep,
	}
	handle := drivers.NewTaskHandle(h.Version)
	handle.Config = h.Config
	handle.State = h.State
	if err := handle.SetDriverState(&st); err != nil {
		d.cleanupFailedStart(cfg.ID)
		return nil, nil, fmt.Errorf("failed to store driver state of task %s: %w", cfg.ID, err)
	}
	rec.mu.Lock()
	rec.state = st
	rec.mu.Unlock()
	d.track(cfg.ID, rec)
	ok = true
	d.startKeeper(cfg.ID, rec)
	d.metrics.tasks.WithLabelValues(rmq.Role, "started").Inc()
	d.logger.Info("started rocketmq task", "task_id", cfg.ID, "cluster", rmq.Cluster, "role", rmq.Role,
		"mode", rmq.Mode, "advertised", adv.String(), "container_id", dhs.ContainerID,
		"prepare", dockerBegin.Sub(begin), "docker_start", dockerEnd.Sub(dockerBegin), "finish", time.Since(dockerEnd))
	return handle, dnet, nil
}

// cleanupFailedStart removes a container docker started for a task we then
// could not track, so nothing runs that Nomad does not know about.
func (d *Driver) cleanupFailedStart(taskID string) {
	if err := d.Driver.DestroyTask(taskID, true); err != nil {
		d.logger.Warn("failed to remove container of a failed start", "task_id", taskID, "error", err)
	}
}

// RecoverTask recovers a task from our envelope alone.
func (d *Driver) RecoverTask(handle *drivers.TaskHandle) error {
	if handle == nil {
		return errors.New("failed to recover task: handle is nil")
	}
	if _, ok := d.taskRecord(handle.Config.ID); ok {
		// Already running in this plugin process: nothing to recover.
		return nil
	}
	var st taskState
	if err := handle.GetDriverState(&st); err != nil {
		return fmt.Errorf("failed to decode driver state of task %s: %w", handle.Config.ID, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("failed to recover task %s: driver state version %d is not supported (want %d)", handle.Config.ID, st.Version, stateVersion)
	}
	dh := handle.Copy()
	dh.DriverState = st.DockerState
	if err := d.Driver.RecoverTask(dh); err != nil {
		return fmt.Errorf("failed to recover container %s of task %s: %w", st.ContainerID, handle.Config.ID, err)
	}
	if st.NodeID == "" {
		st.NodeID = handle.Config.NodeID
	}
	if st.TaskName == "" {
		st.TaskName = handle.Config.Name
	}
	rec := newTaskRecord(d.ctx)
	rec.state = st
	d.track(handle.Config.ID, rec)
	d.logger.Info("recovered rocketmq task", "task_id", handle.Config.ID, "cluster", st.RocketMQ.Cluster,
		"role", st.RocketMQ.Role, "container_id", st.ContainerID)
	if st.Binding != nil && !st.Binding.Released {
		go d.verify(handle.Config, rec)
	}
	d.startKeeper(handle.Config.ID, rec)
	return nil
}

// StopTask stops the container. It first marks the task stopping, so that
// no re-check binds for it again. A name server's backend is released
// before the container is signalled, so the load balancer stops sending
// clients to a process that is going away; a replica that is the master of
// a controller-mode group first hands the master role to an in-sync replica
// (handoff.go); a broker's EIP is released after its process stopped.
func (d *Driver) StopTask(taskID string, timeout time.Duration, signal string) error {
	rec, tracked := d.taskRecord(taskID)
	if tracked {
		rec.beginStop()
		if rec.kind() == BindingBackend {
			if err := d.releaseBinding(taskID, rec, d.bindTimeout(), false); err != nil {
				d.logger.Warn("failed to release backend before stop; will retry after it", "task_id", taskID, "error", err)
			}
		}
		// A replica that is its group's master hands the role over first
		// (handoff.go), within a bounded share of the kill timeout.
		d.handOff(taskID, rec, handoffBudget(timeout))
	}
	if err := d.Driver.StopTask(taskID, timeout, signal); err != nil {
		return err
	}
	if tracked {
		if err := d.releaseBinding(taskID, rec, d.bindTimeout(), true); err != nil {
			d.logger.Warn("failed to release binding after stop; will retry on destroy", "task_id", taskID, "error", err)
		}
	}
	return nil
}

// DestroyTask removes the container, releases what the task still holds in
// the cloud and forgets the task. Nomad calls it once and ignores its error,
// so the release is retried here, within the bind timeout; a binding still
// in place after that is logged at Error (see logUnreleased).
func (d *Driver) DestroyTask(taskID string, force bool) error {
	rec, tracked := d.taskRecord(taskID)
	if tracked {
		rec.beginStop()
	}
	if err := d.Driver.DestroyTask(taskID, force); err != nil {
		return err
	}
	if !tracked {
		return nil
	}
	defer d.untrack(taskID)
	if err := d.releaseBinding(taskID, rec, d.bindTimeout(), true); err != nil {
		d.logUnreleased(taskID, rec.state.Binding, "destroy", err)
		return fmt.Errorf("container of task %s removed, but its binding is still in place: %w", taskID, err)
	}
	return nil
}

func (d *Driver) track(taskID string, rec *taskRecord) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tasks[taskID] = rec
	if rec.state.NodeID != "" {
		d.nodes[rec.state.NodeID] = struct{}{}
	}
}

func (d *Driver) untrack(taskID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.tasks, taskID)
}

// trackedContainers returns the ids of the containers of the tasks we track.
func (d *Driver) trackedContainers() map[string]struct{} {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string]struct{}, len(d.tasks))
	for _, t := range d.tasks {
		out[t.state.ContainerID] = struct{}{}
	}
	return out
}

// knownNodes returns the Nomad node ids of every task this plugin process
// has started or recovered: the reaper only touches containers of these
// nodes, so several Nomad clients sharing one Docker engine never reap each
// other's containers.
func (d *Driver) knownNodes() map[string]struct{} {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make(map[string]struct{}, len(d.nodes))
	for n := range d.nodes {
		out[n] = struct{}{}
	}
	return out
}

// listenPort finds the port mapping named by rocketmq.port.
func listenPort(cfg *drivers.TaskConfig, rmq *RocketMQConfig) (structs.AllocatedPortMapping, error) {
	if cfg.Resources != nil && cfg.Resources.Ports != nil {
		if m, ok := cfg.Resources.Ports.Get(rmq.Port); ok {
			if rmq.Role != RoleNameServer && rmq.Role != RoleProxy && m.To > 0 && m.To != m.Value {
				return m, fmt.Errorf("rocketmq.port: port %q maps host port %d to container port %d, but a %s advertises the port it listens on; remove `to` from the port so the %s listens on the host port", rmq.Port, m.Value, m.To, rmq.Role, rmq.Role)
			}
			return m, nil
		}
	}
	return structs.AllocatedPortMapping{}, fmt.Errorf("rocketmq.port: port label %q is not in the task group's network block; add `network { port %q {} }` and list it in the task's `ports`", rmq.Port, rmq.Port)
}

func containerPort(m structs.AllocatedPortMapping) int {
	if m.To > 0 {
		return m.To
	}
	return m.Value
}

// writeBrokerConf writes the broker config fragment the image merges into
// the broker's config: RocketMQ has no "advertised listener", a broker
// registers brokerIP1:listenPort, so both must be the reachable address.
// replication holds a replica's keys (brokerReplicationConf), if any.
func writeBrokerConf(cfg *drivers.TaskConfig, rmq *RocketMQConfig, adv Address, replication string) error {
	body := fmt.Sprintf("# written by the rocketmq Nomad driver; do not edit\nbrokerClusterName=%s\nbrokerIP1=%s\nlistenPort=%d\n%s",
		rmq.Cluster, adv.IP, adv.Port, replication)
	return writeTaskFile(cfg, brokerConfPath, body, "broker config")
}

// addLabels adds container labels to the docker part of the task config.
func addLabels(cfg *drivers.TaskConfig, labels map[string]string) error {
	var raw map[string]interface{}
	if err := cfg.DecodeDriverConfig(&raw); err != nil {
		return fmt.Errorf("failed to decode driver config: %w", err)
	}
	if raw == nil {
		raw = map[string]interface{}{}
	}
	merged := map[string]interface{}{}
	if list, ok := raw["labels"].([]interface{}); ok {
		for _, item := range list {
			if m, ok := item.(map[string]interface{}); ok {
				for k, v := range m {
					merged[k] = v
				}
			}
		}
	}
	for k, v := range labels {
		merged[k] = v
	}
	raw["labels"] = []interface{}{merged}
	if err := cfg.EncodeConcreteDriverConfig(raw); err != nil {
		return fmt.Errorf("failed to encode driver config: %w", err)
	}
	return nil
}
