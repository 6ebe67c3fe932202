package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

// Binding kinds.
const (
	BindingEIP     = "eip"
	BindingBackend = "backend"
)

// Binding is what a task holds in the cloud, kept in our driver state so it
// can be re-checked after a restart and released on stop without the task
// config.
type Binding struct {
	Kind      string
	UHostID   string
	PrivateIP string
	EIPID     string
	EIPIP     string
	ULBID     string
	VServerID string
	BackendID string
	Port      int
	Owner     ownership.Owner
	Released  bool
}

func (b *Binding) eipRequest() eipbind.Request {
	return eipbind.Request{EIPID: b.EIPID, UHostID: b.UHostID, Owner: b.Owner}
}

func (b *Binding) ulbRequest() ulbbind.Request {
	return ulbbind.Request{ULBID: b.ULBID, VServerID: b.VServerID, UHostID: b.UHostID, PrivateIP: b.PrivateIP, Port: b.Port, Owner: b.Owner}
}

// ownershipKey is the kind and key of the binding's owner record.
func ownershipKey(b *Binding) (string, string) {
	if b.Kind == BindingBackend {
		return ownership.KindBackend, ulbbind.RecordKey(b.ulbRequest())
	}
	return ownership.KindEIP, b.EIPID
}

// cloudOrErr returns the cloud side, or an error telling how to configure it.
func (d *Driver) cloudOrErr(rmq *RocketMQConfig) (*cloud, error) {
	d.mu.RLock()
	c, err := d.cloud, d.cloudErr
	d.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("rocketmq.mode: %s mode needs UCloud, whose plugin config is invalid: %w", rmq.Mode, err)
	}
	if c == nil && !rmq.PublicFacing() && rmq.ULB != nil {
		return nil, fmt.Errorf(`rocketmq.ulb: a %s behind an internal ULB needs UCloud access: set the ucloud block (region, project_id, public_key, private_key_file) in the client's plugin "rmq-driver" config or the UCLOUD_* environment variables, or remove the ulb block`, rmq.Role)
	}
	if c == nil {
		return nil, fmt.Errorf(`rocketmq.mode: %s mode needs UCloud access: set the ucloud block (region, project_id, public_key, private_key_file) in the client's plugin "rmq-driver" config or the UCLOUD_* environment variables, or use mode = "private"`, rmq.Mode)
	}
	return c, nil
}

// resolveEIP returns the EIP id an allocation binds. Its errors are
// classified for Nomad: fatal when the job or the key is wrong, recoverable
// (the task is restarted) when Consul cannot be read.
func resolveEIP(ctx context.Context, c *cloud, rmq *RocketMQConfig, allocIndex int) (string, error) {
	e := rmq.EIP
	switch {
	case e.ID != "":
		return e.ID, nil
	case len(e.IDs) > 0:
		if allocIndex < 0 || allocIndex >= len(e.IDs) {
			return "", fatal(fmt.Errorf("rocketmq.eip.ids: allocation index %d has no EIP (the list has %d); list one EIP per allocation of the group", allocIndex, len(e.IDs)))
		}
		return e.IDs[allocIndex], nil
	default:
		if c.owners == nil {
			return "", fatal(fmt.Errorf("rocketmq.eip.consul_key: needs Consul; set the consul block in the client's plugin config"))
		}
		id, err := c.owners.EIPIDFromSeedLayout(ctx, rmq.Cluster, allocIndex)
		var bad *ownership.SeedKeyError
		switch {
		case errors.As(err, &bad):
			return "", fatal(fmt.Errorf("rocketmq.eip.consul_key: %w", err))
		case err != nil:
			return "", recoverable(fmt.Errorf("rocketmq.eip.consul_key: cannot read consul now (the restart policy retries the task): %w", err))
		}
		return id, nil
	}
}

// bind makes the task reachable before its container starts: it binds the
// broker's EIP to this host or registers the name server with the ULB. It
// returns the binding and the IP to advertise ("" to keep the host IP).
func (d *Driver) bind(ctx context.Context, cfg *drivers.TaskConfig, rmq *RocketMQConfig, allocIndex, hostPort int) (*Binding, string, error) {
	if !rmq.bindsCloud() {
		return nil, "", nil
	}
	c, err := d.cloudOrErr(rmq)
	if err != nil {
		return nil, "", fatal(err)
	}
	id, err := c.Identity(ctx)
	if err != nil {
		return nil, "", recoverable(fmt.Errorf("failed to learn which uhost this client is: %w", err))
	}
	b := &Binding{
		UHostID:   id.UHostID,
		PrivateIP: id.PrivateIP,
		Port:      hostPort,
		Owner: ownership.Owner{
			AllocID: cfg.AllocID, NodeID: cfg.NodeID, UHostID: id.UHostID,
			Namespace: cfg.Namespace, JobID: jobID(cfg), Group: cfg.TaskGroupName, Job: cfg.JobName,
			Cluster: rmq.Cluster, Role: rmq.Role, AllocIndex: allocIndex,
		},
	}
	switch rmq.Role {
	case RoleBroker:
		b.Kind = BindingEIP
		if b.EIPID, err = resolveEIP(ctx, c, rmq, allocIndex); err != nil {
			return nil, "", err
		}
		if err := checkTenant(&c.cfg, cfg.Namespace, rmq, b.EIPID); err != nil {
			return nil, "", fatal(err)
		}
		if err := checkSeedEIP(ctx, c, rmq, b.EIPID); err != nil {
			return nil, "", err
		}
		if err := d.claimCluster(ctx, c, cfg, rmq); err != nil {
			return nil, "", err
		}
		start := time.Now()
		res, err := c.eips.Bind(ctx, b.eipRequest())
		if err != nil {
			d.emit(cfg, fmt.Sprintf("failed to bind EIP %s to %s: %v", b.EIPID, b.UHostID, err), nil)
			return nil, "", d.bindError(err)
		}
		b.EIPIP = res.IP
		msg := fmt.Sprintf("bound EIP %s (%s) to %s", b.EIPID, res.IP, b.UHostID)
		if !res.Changed {
			msg = fmt.Sprintf("EIP %s (%s) already bound to %s", b.EIPID, res.IP, b.UHostID)
		}
		if res.PreviousUHost != "" {
			msg += " (moved from " + res.PreviousUHost + ")"
		}
		d.emit(cfg, msg, map[string]string{"eip_id": b.EIPID, "eip": res.IP, "uhost_id": b.UHostID})
		d.logger.Info("bound eip", "eip_id", b.EIPID, "ip", res.IP, "uhost_id", b.UHostID,
			"previous_uhost_id", res.PreviousUHost, "changed", res.Changed, "duration", time.Since(start))
		return b, res.IP, nil
	default:
		b.Kind = BindingBackend
		b.ULBID, b.VServerID = rmq.ULB.ULBID, rmq.ULB.VServerID
		if err := checkTenant(&c.cfg, cfg.Namespace, rmq, ""); err != nil {
			return nil, "", fatal(err)
		}
		if err := d.claimCluster(ctx, c, cfg, rmq); err != nil {
			return nil, "", err
		}
		res, err := c.ulbs.Register(ctx, b.ulbRequest())
		if err != nil {
			d.emit(cfg, fmt.Sprintf("failed to register %s:%d with %s/%s: %v", b.PrivateIP, b.Port, b.ULBID, b.VServerID, err), nil)
			return nil, "", d.bindError(err)
		}
		b.BackendID = res.BackendID
		for _, old := range res.Released {
			d.emit(cfg, fmt.Sprintf("released backend %s of a previous allocation from %s/%s", old, b.ULBID, b.VServerID), nil)
		}
		d.emit(cfg, fmt.Sprintf("registered backend %s (%s:%d) with %s/%s", res.BackendID, b.PrivateIP, b.Port, b.ULBID, b.VServerID),
			map[string]string{"backend_id": res.BackendID, "ulb_id": b.ULBID, "vserver_id": b.VServerID})
		d.logger.Info("registered backend", "backend_id", res.BackendID, "ulb_id", b.ULBID, "vserver_id", b.VServerID,
			"uhost_id", b.UHostID, "port", b.Port, "changed", res.Changed)
		return b, "", nil
	}
}

// bindError marks binding errors that retrying cannot fix as fatal, and
// the others as recoverable: Nomad restarts a task only on an error marked
// so.
func (d *Driver) bindError(err error) error {
	if ucloudapi.IsPermanent(err) {
		return fatal(err)
	}
	return recoverable(err)
}

// release undoes a task's binding: the backend is released and the EIP
// unbound, each only while this allocation still owns it. It is idempotent.
func (d *Driver) release(ctx context.Context, taskID string, b *Binding) error {
	if b == nil || b.Released {
		return nil
	}
	c, err := d.cloudOrErr(&RocketMQConfig{Mode: ModePublic})
	if err != nil {
		return err
	}
	switch b.Kind {
	case BindingEIP:
		if err := c.eips.Release(ctx, b.eipRequest()); err != nil {
			return fmt.Errorf("failed to release EIP %s from %s: %w", b.EIPID, b.UHostID, err)
		}
		d.logger.Info("released eip", "task_id", taskID, "eip_id", b.EIPID, "uhost_id", b.UHostID)
	case BindingBackend:
		if err := c.ulbs.Release(ctx, b.ulbRequest()); err != nil {
			return fmt.Errorf("failed to release backend %s from %s: %w", b.BackendID, b.ULBID, err)
		}
		d.logger.Info("released backend", "task_id", taskID, "backend_id", b.BackendID, "ulb_id", b.ULBID)
	}
	b.Released = true
	return nil
}

// verify re-checks a recovered task's binding and repairs it, retrying
// until it succeeds, fails for good, or the task's stop begins. Each attempt
// runs under the task's binding lock (withBinding), so it never overlaps a
// release, and never starts once the task is stopping.
func (d *Driver) verify(cfg *drivers.TaskConfig, rec *taskRecord) {
	c, err := d.cloudOrErr(&RocketMQConfig{Mode: ModePublic})
	if err != nil {
		d.logger.Error("cannot re-check binding of recovered task", "task_id", cfg.ID, "error", err)
		return
	}
	kind := rec.kind()
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		var msg string
		err := d.withBinding(cfg.ID, func(ctx context.Context, b *Binding) error {
			if b == nil {
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, d.bindTimeout())
			defer cancel()
			var err error
			msg, err = d.verifyOnce(ctx, c, b)
			return err
		})
		switch {
		case errors.Is(err, errBindingClosed) || (err != nil && rec.stopping()):
			d.logger.Info("stopped re-checking binding: the task is stopping", "task_id", cfg.ID, "kind", kind, "attempt", attempt)
			return
		case err == nil:
			if msg != "" {
				d.emit(cfg, msg, nil)
			}
			d.logger.Info("verified binding", "task_id", cfg.ID, "kind", kind, "attempt", attempt)
			return
		case ucloudapi.IsPermanent(err):
			// Another allocation owns it now, or it is bound elsewhere:
			// waiting cannot fix that, and taking it back would be wrong.
			d.emit(cfg, fmt.Sprintf("binding no longer ours after recovery: %v", err), nil)
			d.logger.Error("binding of recovered task is no longer ours", "task_id", cfg.ID, "kind", kind, "error", err)
			return
		}
		d.logger.Warn("failed to re-check binding", "task_id", cfg.ID, "kind", kind, "attempt", attempt, "error", err)
		select {
		case <-rec.ctx.Done():
			d.logger.Info("stopped re-checking binding: the task is stopping", "task_id", cfg.ID, "kind", kind, "attempt", attempt)
			return
		case <-time.After(backoff):
		}
		if backoff < 30*time.Second {
			backoff *= 2
		}
	}
}

// verifyOnce re-checks the binding once and returns the event to report.
// The caller holds the task's binding lock.
func (d *Driver) verifyOnce(ctx context.Context, c *cloud, b *Binding) (string, error) {
	switch b.Kind {
	case BindingEIP:
		res, err := c.eips.Verify(ctx, b.eipRequest())
		if err != nil {
			return "", err
		}
		if res.Changed {
			return fmt.Sprintf("repaired EIP %s (%s) binding to %s after recovery", b.EIPID, res.IP, b.UHostID), nil
		}
		return fmt.Sprintf("re-checked EIP %s (%s) on %s after recovery", b.EIPID, res.IP, b.UHostID), nil
	case BindingBackend:
		res, err := c.ulbs.Verify(ctx, b.ulbRequest())
		if err != nil {
			return "", err
		}
		b.BackendID = res.BackendID
		if res.Changed {
			return fmt.Sprintf("repaired backend %s (%s:%d) on %s/%s after recovery", res.BackendID, b.PrivateIP, b.Port, b.ULBID, b.VServerID), nil
		}
		return fmt.Sprintf("re-checked backend %s on %s/%s after recovery", res.BackendID, b.ULBID, b.VServerID), nil
	}
	return "", ucloudapi.Permanent(fmt.Errorf("binding kind %q is unknown", b.Kind))
}

func (d *Driver) bindTimeout() time.Duration {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.cloud != nil {
		return durationOr(d.cloud.cfg.BindTimeout, 60*time.Second) + 5*time.Second
	}
	return 65 * time.Second
}

// jobID is the task's Nomad job id (its name when the id is not given).
func jobID(cfg *drivers.TaskConfig) string {
	if cfg.JobID != "" {
		return cfg.JobID
	}
	return cfg.JobName
}

// claimCluster makes the task's cluster id belong to its namespace, or
// refuses the task when it belongs to another namespace (see
// docs/binding.md, "Tenancy").
func (d *Driver) claimCluster(ctx context.Context, c *cloud, cfg *drivers.TaskConfig, rmq *RocketMQConfig) error {
	if c.owners == nil || jobID(cfg) == "" {
		return nil
	}
	err := c.owners.ClaimCluster(ctx, rmq.Cluster, cfg.Namespace, jobID(cfg), c.nomad.JobExists)
	switch {
	case errors.Is(err, ownership.ErrClusterTaken):
		d.emit(cfg, err.Error(), nil)
		return fatal(err)
	case err != nil:
		return recoverable(fmt.Errorf("rocketmq.cluster: cannot record that cluster %s belongs to this namespace now (the restart policy retries the task): %w", rmq.Cluster, err))
	}
	return nil
}

// checkSeedEIP refuses an EIP named in the job that the seed's layout lists
// for another cluster.
func checkSeedEIP(ctx context.Context, c *cloud, rmq *RocketMQConfig, eipID string) error {
	if c.owners == nil || (rmq.EIP.ID == "" && len(rmq.EIP.IDs) == 0) {
		return nil
	}
	cluster, index, found, err := c.owners.SeedEIPOwner(ctx, eipID)
	switch {
	case err != nil:
		return recoverable(fmt.Errorf("rocketmq.eip: cannot check which cluster EIP %s is listed for (the restart policy retries the task): %w", eipID, err))
	case found && cluster != rmq.Cluster:
		return fatal(fmt.Errorf("rocketmq.eip: EIP %s is listed for cluster %q at consul key %s, not for this cluster %q: use one of this cluster's EIPs",
			eipID, cluster, ownership.SeedEIPKey(cluster, index), rmq.Cluster))
	}
	return nil
}
