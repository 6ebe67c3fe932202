package driver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/rmqnomad/rocketmq-nomad-driver/nsaddr"
	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

// The keeper of a running broker (docs/topics.md): every keepInterval it
// observes the broker (its config, topic and group tables, where it is
// registered), decides what differs from the desired state, and applies
// only that.

const (
	// settleInterval is the re-check pace while something is pending: the
	// broker not yet registered with every NameServer after its start or a
	// NameServer change (which it applies within 5 s).
	settleInterval = time.Second
	// startPoll is the pace at which a starting broker is asked whether
	// it answers yet.
	startPoll = 100 * time.Millisecond
	// startPatience is how long a broker is polled at startPoll; a store
	// recovery can take longer, then keepInterval applies.
	startPatience = 5 * time.Minute
	// settleTimeout bounds a pending registration; then the keeper warns
	// and goes back to keepInterval.
	settleTimeout = 30 * time.Second
)

// startKeeper starts keeping a broker task's desired state while it runs.
func (d *Driver) startKeeper(taskID string, rec *taskRecord) {
	if rec.state.RocketMQ.Role != RoleBroker || rec.state.Keep == nil || rec.state.Keep.Admin == "" {
		return
	}
	go d.keepBroker(taskID, rec)
}

// keeper is one broker's re-check state.
type keeper struct {
	d          *Driver
	taskID     string
	rec        *taskRecord
	keep       brokerKeep
	rmq        RocketMQConfig
	advertised string

	mu     sync.Mutex
	warned map[string]bool // problems already logged
	passes int
	// pendingSince is when a registration became pending (zero: none).
	pendingSince time.Time
	// wake makes the keeper re-check at once (the NameServers changed).
	wake chan struct{}
	// next, when set, is when something is due (an empty store's
	// read-only grace ends).
	next time.Time
	seen bool // the broker name is recorded in Consul
	// rw is a replicated broker's replica watch (replicawatch.go).
	rw      replicaWatch
	started time.Time
}

// keepBroker re-checks the broker until its task stops: as soon as it
// answers, then every keepInterval (jittered by up to 20%), and every
// settleInterval while a registration is pending.
func (d *Driver) keepBroker(taskID string, rec *taskRecord) {
	k := &keeper{d: d, taskID: taskID, rec: rec, keep: *rec.state.Keep, rmq: rec.state.RocketMQ,
		advertised: rec.state.Advertised.String(), warned: map[string]bool{}, pendingSince: time.Now(),
		wake: make(chan struct{}, 1), started: time.Now()}
	ctx, started := rec.ctx, k.started
	if k.keep.Namesrv {
		go k.watchNameServers(ctx)
	}
	wait := startPoll
	for {
		settled, err := k.pass(ctx)
		if err != nil {
			d.logger.Trace("broker not answering", "task_id", taskID, "error", err)
		}
		switch {
		case err != nil && k.passes == 0 && time.Since(started) < startPatience:
			// Not up yet (JVM start, store recovery): ask often, so the
			// broker is registered and complete right after it starts.
			wait = startPoll
		case err != nil:
			wait = keepInterval
		case !settled:
			wait = settleInterval
		default:
			wait = keepInterval - time.Duration(rand.Int64N(int64(keepInterval)/5+1))
		}
		if !k.next.IsZero() {
			wait = max(min(wait, time.Until(k.next)), 50*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-k.wake:
		}
	}
}

// watchNameServers wakes the keeper when the cluster's passing NameServers
// change (a Consul blocking query), so a new list reaches the broker
// within a second or so instead of at the next keepInterval.
func (k *keeper) watchNameServers(ctx context.Context) {
	c := k.d.stateConsul()
	if c == nil {
		return
	}
	k.d.mu.RLock()
	pattern := ""
	if k.d.config.NSAddr != nil {
		pattern = k.d.config.NSAddr.ServiceName
	}
	k.d.mu.RUnlock()
	service, err := nsaddr.ServiceName(pattern, k.rmq.Cluster)
	if err != nil {
		return
	}
	var index uint64
	last, backoff := "", 100*time.Millisecond
	for ctx.Err() == nil {
		q := (&consulapi.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Minute}).WithContext(ctx)
		entries, meta, err := c.Health().Service(service, "", true, q)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if meta.LastIndex < index {
			index = 0 // Consul's index went backwards: start over
		} else {
			index = meta.LastIndex
		}
		list, _ := nsaddr.List(entries, false)
		if list != last {
			if last != "" {
				select {
				case k.wake <- struct{}{}:
				default:
				}
			}
			last = list
		}
	}
}

// warnOnce logs a problem the first time it is seen.
func (k *keeper) warnOnce(msg, key string, kv ...any) {
	k.mu.Lock()
	seen := k.warned[msg+"\x00"+key]
	k.warned[msg+"\x00"+key] = true
	k.mu.Unlock()
	if !seen {
		k.d.logger.Warn(msg, append([]any{"task_id", k.taskID, "cluster", k.rmq.Cluster}, kv...)...)
	}
}

func (k *keeper) event(msg string, annotations map[string]string) {
	k.d.emit(&drivers.TaskConfig{ID: k.taskID, Name: k.rec.state.TaskName, AllocID: k.keep.AllocID}, "rocketmq broker: "+msg, annotations)
}

// pass is one re-check. It fails while the broker does not answer, and
// reports whether nothing is pending.
func (k *keeper) pass(parent context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(parent, keepCallTimeout)
	defer cancel()
	broker := k.keep.Admin
	conf, err := rmqadmin.BrokerConfig(ctx, broker)
	if err != nil {
		return false, err
	}
	first := k.passes == 0
	k.passes++

	// Registration first: right after a start it is what clients wait for.
	settled := k.ensureRegistered(ctx, broker, conf)
	if k.keep.Namesrv {
		if changed, err := k.keepNamesrv(ctx, broker, conf["namesrvAddr"]); err != nil {
			k.d.metrics.desired.WithLabelValues("error").Inc()
			k.warnOnce("failed to keep the broker's NameServer list current", err.Error(), "error", err)
		} else if changed != "" {
			// Registered with the new ones on the next passes.
			k.pendingSince, settled = time.Now(), false
		}
	}
	k.next = k.endReadOnly(ctx, broker, conf)
	if !k.seen {
		k.seen = k.markSeen(ctx, conf["brokerName"])
	}
	if k.rmq.Replicated() && !k.watchReplica(ctx, broker, conf) && time.Since(k.started) < replicaSettle {
		// Look again soon: the controllers are about to give a starting
		// replica its id and role.
		settled = false
	}

	var applied []string
	// A slave takes its topics and groups from its master.
	if conf["brokerRole"] != "SLAVE" {
		set, probs, err := k.d.desired(ctx, &k.rmq)
		if err != nil {
			k.warnOnce("consul KV unreadable; applying the job's topics and groups only", "", "error", err)
		}
		for _, p := range probs {
			k.warnOnce("consul key left out of the desired topics and groups", p.Key, "key", p.Key, "reason", p.Reason)
		}
		done, err := k.applyTopics(ctx, broker, set)
		applied = append(applied, done...)
		if err != nil {
			k.d.metrics.desired.WithLabelValues("error").Inc()
			k.d.logger.Warn("failed to apply the desired topics and groups", "task_id", k.taskID, "cluster", k.rmq.Cluster, "error", err)
		}
	}
	if len(applied) > 0 {
		k.d.logger.Info("applied the broker's desired state", "task_id", k.taskID, "cluster", k.rmq.Cluster,
			"changes", applied, "first_check", first)
		k.event(strings.Join(applied, "; "), nil)
	}
	return settled, nil
}

// ensureRegistered checks, while a registration is pending, that every
// NameServer of the broker's namesrvAddr routes the broker's own topic
// (its brokerName, always registered) to its advertised address. Where
// one does not, it makes the broker register at once by setting
// brokerPermission to the value it has: RocketMQ 5.3.3 re-registers with
// every NameServer on that change (AdminBrokerProcessor.updateBrokerConfig).
// Without it a broker registers at start only if its NameServer scan
// (NettyRemotingClient.scanAvailableNameSrv, started with the broker)
// connected first, else 10 s later at its first periodic registration;
// and a NameServer added to its list waits for the next one.
func (k *keeper) ensureRegistered(ctx context.Context, broker string, conf map[string]string) bool {
	if k.pendingSince.IsZero() {
		return true
	}
	list, name := conf["namesrvAddr"], conf["brokerName"]
	if list == "" || name == "" || conf["enableControllerMode"] == "true" {
		// Address-server mode: the broker's list is its own. Controller
		// mode: the broker registers once the controllers gave it its id
		// and role (ReplicasManager); a registration before would carry
		// no id.
		k.pendingSince = time.Time{}
		return true
	}
	missing := k.unregistered(ctx, list, name)
	if len(missing) > 0 {
		perm := conf["brokerPermission"]
		if _, err := strconv.Atoi(perm); err != nil {
			return false
		}
		k.d.logger.Debug("broker not registered with every NameServer; asking it to register", "task_id", k.taskID,
			"cluster", k.rmq.Cluster, "missing", missing)
		// registerBrokerAll runs before the broker answers: look again.
		if err := rmqadmin.UpdateBrokerConfig(ctx, broker, map[string]string{"brokerPermission": perm}); err != nil {
			k.warnOnce("failed to make the broker register", err.Error(), "error", err)
			return false
		}
		k.d.metrics.desired.WithLabelValues("register_nudged").Inc()
		missing = k.unregistered(ctx, list, name)
	}
	if len(missing) == 0 {
		k.d.logger.Info("broker registered with every NameServer", "task_id", k.taskID, "cluster", k.rmq.Cluster,
			"namesrv", list, "after", time.Since(k.pendingSince).Round(time.Millisecond).String())
		k.pendingSince = time.Time{}
		return true
	}
	if time.Since(k.pendingSince) > settleTimeout {
		k.warnOnce("broker not registered with every NameServer; it keeps registering every registerNameServerPeriod",
			strings.Join(missing, ";"), "missing", missing, "waited", settleTimeout.String())
		k.pendingSince = time.Time{}
		return true
	}
	return false
}

// unregistered returns the NameServers of list that answer but do not
// route broker group name to the broker's advertised address.
func (k *keeper) unregistered(ctx context.Context, list, name string) []string {
	var missing []string
	for _, ns := range strings.Split(list, ";") {
		if ns = strings.TrimSpace(ns); ns == "" {
			continue
		}
		route, err := rmqadmin.TopicRoute(ctx, ns, name)
		if err != nil && !rmqadmin.IsCode(err, rmqadmin.CodeTopicNotExist) {
			continue // a NameServer that does not answer cannot be registered with
		}
		if err != nil || !routesTo(route, name, k.advertised) {
			missing = append(missing, ns)
		}
	}
	return missing
}

// endReadOnly makes a broker that the entrypoint started read-only (an
// empty store under a name that ran in the cluster before) writable once
// its grace is over; setting brokerPermission also makes it register at
// once with its topics writable. It returns when to look again, zero when
// nothing is pending.
func (k *keeper) endReadOnly(ctx context.Context, broker string, conf map[string]string) time.Time {
	path := filepath.Join(k.keep.LocalDir, readOnlyUntilPath)
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		_ = os.Remove(path)
		return time.Time{}
	}
	if until := time.Unix(sec, 0); time.Now().Before(until) {
		return until
	}
	if conf["brokerPermission"] == strconv.Itoa(rmqadmin.PermRead) {
		if err := rmqadmin.UpdateBrokerConfig(ctx, broker, map[string]string{"brokerPermission": strconv.Itoa(rmqadmin.PermRW)}); err != nil {
			k.warnOnce("failed to make the broker writable after its empty-store grace", err.Error(), "error", err)
			return time.Now().Add(settleInterval)
		}
		k.d.metrics.desired.WithLabelValues("read_only_ended").Inc()
		k.d.logger.Info("broker with an empty store takes writes now", "task_id", k.taskID, "cluster", k.rmq.Cluster)
		k.event("empty store: writable again after its read-only grace", nil)
	}
	_ = os.Remove(path)
	return time.Time{}
}

// markSeen records in Consul that the broker name has run in the cluster
// (brokerSeenKey), once; it reports whether the key is there.
func (k *keeper) markSeen(ctx context.Context, name string) bool {
	c := k.d.stateConsul()
	if c == nil || name == "" {
		return true
	}
	key := brokerSeenKey(k.rmq.Cluster, name)
	// ModifyIndex 0: only if the key does not exist yet.
	body := fmt.Sprintf(`{"first_seen":%q,"alloc_id":%q}`, time.Now().UTC().Format(time.RFC3339), k.keep.AllocID)
	if _, _, err := c.KV().CAS(&consulapi.KVPair{Key: key, Value: []byte(body)}, (&consulapi.WriteOptions{}).WithContext(ctx)); err != nil {
		k.warnOnce("cannot record the broker name in consul", key, "key", key, "error", err)
		return false
	}
	return true
}

// routesTo reports whether route has broker group name at addr.
func routesTo(route *rmqadmin.Route, name, addr string) bool {
	for _, b := range route.Brokers {
		if b.BrokerName != name {
			continue
		}
		for _, a := range b.Addrs {
			if a == addr {
				return true
			}
		}
	}
	return false
}

// applyTopics creates the missing topics and groups, grows topics with
// fewer queues than declared and sets their declared perm. It never
// shrinks a topic: queues removed would strand their messages.
func (k *keeper) applyTopics(ctx context.Context, broker string, set desiredSet) ([]string, error) {
	var done []string
	if len(set.Topics) > 0 {
		have, err := rmqadmin.Topics(ctx, broker)
		if err != nil {
			return nil, err
		}
		for _, name := range sortedKeys(set.Topics) {
			want := set.Topics[name]
			cur, ok := have[name]
			action := ""
			switch {
			case !ok:
				action = "created topic " + name
			case cur.WriteQueueNums > want.WriteQueueNums || cur.ReadQueueNums > want.ReadQueueNums:
				k.warnOnce("topic has more queues than declared; shrinking is left to an operator (mqadmin updateTopic, write queues first)",
					name+"/"+strconv.Itoa(cur.ReadQueueNums), "topic", name, "queues", cur.ReadQueueNums, "declared", want.ReadQueueNums)
				if cur.Perm == want.Perm {
					continue
				}
				want.ReadQueueNums, want.WriteQueueNums = cur.ReadQueueNums, cur.WriteQueueNums
				action = fmt.Sprintf("set perm %d on topic %s", want.Perm, name)
			case cur.ReadQueueNums != want.ReadQueueNums || cur.WriteQueueNums != want.WriteQueueNums || cur.Perm != want.Perm:
				action = fmt.Sprintf("updated topic %s to %d queues, perm %d", name, want.ReadQueueNums, want.Perm)
			default:
				continue
			}
			want.TopicSysFlag, want.Order = cur.TopicSysFlag, cur.Order
			if err := rmqadmin.CreateTopic(ctx, broker, want); err != nil {
				return done, fmt.Errorf("topic %s: %w", name, err)
			}
			metric := "topic_updated"
			if !ok {
				metric = "topic_created"
			}
			k.d.metrics.desired.WithLabelValues(metric).Inc()
			done = append(done, action)
		}
	}
	if len(set.Groups) > 0 {
		have, err := rmqadmin.Groups(ctx, broker)
		if err != nil {
			return done, err
		}
		for _, g := range sortedKeys(set.Groups) {
			if have[g] {
				continue
			}
			if err := rmqadmin.CreateGroup(ctx, broker, rmqadmin.DefaultGroup(g)); err != nil {
				return done, fmt.Errorf("subscription group %s: %w", g, err)
			}
			k.d.metrics.desired.WithLabelValues("group_created").Inc()
			done = append(done, "created subscription group "+g)
		}
	}
	return done, nil
}

// keepNamesrv sets the broker's namesrvAddr to the cluster's passing
// NameServers when they differ, and returns the new list ("" when
// unchanged). The broker applies it at its next updateNameServerAddrPeriod
// tick (the driver sets 1 s) and connects to the new ones at its next
// scan (NettyRemotingClient.scanAvailableNameSrv, every 3 s); the keeper
// then makes it register at once (ensureRegistered). An empty list (Consul has none passing, or
// is unreachable) leaves the broker's list as it is, as RocketMQ does with
// a blank address-server answer.
func (k *keeper) keepNamesrv(ctx context.Context, broker, current string) (string, error) {
	list, err := k.d.nameServers(ctx, k.rmq.Cluster)
	if err != nil || list == "" || list == current {
		return "", err
	}
	if err := rmqadmin.UpdateBrokerConfig(ctx, broker, map[string]string{"namesrvAddr": list}); err != nil {
		return "", err
	}
	k.d.metrics.desired.WithLabelValues("namesrv_updated").Inc()
	k.d.logger.Info("updated the broker's NameServer list", "task_id", k.taskID, "cluster", k.rmq.Cluster, "from", current, "to", list)
	k.event("NameServers now "+list, map[string]string{"namesrv": list})
	return list, nil
}
