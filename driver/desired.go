package driver

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/nomad/plugins/shared/hclspec"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

// A broker's desired state, declared in the rocketmq block (these fields
// join rocketmqTaskSpec in init below) and in Consul KV:
//
//	rocketmq {
//	  topics              = ["orders", "payments"]  # 8 read/write queues, perm 6 (rw)
//	  subscription_groups = ["orders-consumer"]     # RocketMQ's default group settings
//	  topic "audit" {                               # a topic with its own settings
//	    queues = 4
//	    perm   = 6                                  # 6 rw, 4 read only, 2 write only
//	  }
//	  namesrv_source = "consul"   # or "task"
//	  empty_store_read_only = "45s" # a replacement with an empty store starts read-only
//	}
//
//	rocketmq/<cluster>/topics/<name>   value "" or {"queues": 4, "perm": 6}
//	rocketmq/<cluster>/groups/<name>   value ignored
//
// Every broker of the cluster gets every topic and group (created when
// missing, updated when its queues or perm differ); nothing is ever
// deleted. See docs/topics.md.
var desiredStateSpec = map[string]*hclspec.Spec{
	"topics": hclspec.NewAttr("topics", "list(string)", false),
	"topic": hclspec.NewBlockMap("topic", []string{"name"}, hclspec.NewObject(map[string]*hclspec.Spec{
		"queues": hclspec.NewAttr("queues", "number", false),
		"perm":   hclspec.NewAttr("perm", "number", false),
	})),
	"subscription_groups":   hclspec.NewAttr("subscription_groups", "list(string)", false),
	"namesrv_source":        hclspec.NewAttr("namesrv_source", "string", false),
	"empty_store_read_only": hclspec.NewAttr("empty_store_read_only", "string", false),
}

func init() {
	attrs := rocketmqTaskSpec.GetBlockValue().GetNested().GetObject().GetAttributes()
	for k, v := range desiredStateSpec {
		attrs[k] = v
	}
}

// BrokerDesired is the desired-state part of the rocketmq block, embedded
// in RocketMQConfig.
type BrokerDesired struct {
	Topics             []string             `codec:"topics"`
	Topic              map[string]TopicSpec `codec:"topic"`
	SubscriptionGroups []string             `codec:"subscription_groups"`
	// NamesrvSource is where a broker's NameServer list comes from:
	// "consul" (the default: the driver writes namesrvAddr from the
	// cluster's passing NameServers at start and keeps it current) or
	// "task" (the task's own NAMESRV_ADDR, ROCKETMQ_NAMESRV_DOMAIN or config
	// file decide; in address-server mode the broker registers ~20 s after
	// it starts).
	NamesrvSource string `codec:"namesrv_source"`
	// EmptyStoreReadOnly is how long a broker that comes back with an
	// empty store, under a name that ran in the cluster before, refuses
	// writes (default 45s, "0s" never): consumers that still hold offsets
	// of the lost store must first pull from it once, which resets them
	// to 0; a write before that is skipped by them (see docs/moves.md).
	EmptyStoreReadOnly string `codec:"empty_store_read_only"`
}

// defaultEmptyStoreReadOnly covers the clients' route refresh (30 s) and
// a pull retry.
const defaultEmptyStoreReadOnly = 45 * time.Second

// emptyStoreReadOnly returns the read-only grace of an empty store.
func (d BrokerDesired) emptyStoreReadOnly() time.Duration {
	if d.EmptyStoreReadOnly == "" {
		return defaultEmptyStoreReadOnly
	}
	v, _ := time.ParseDuration(d.EmptyStoreReadOnly)
	return v
}

// TopicSpec is a `topic "<name>" {}` block, or a Consul KV value.
type TopicSpec struct {
	Queues int `codec:"queues" json:"queues"`
	Perm   int `codec:"perm" json:"perm"`
}

// Where a broker's NameServer list comes from.
const (
	NamesrvFromConsul = "consul"
	NamesrvFromTask   = "task"
)

// defaultTopicQueues is what mqadmin updateTopic creates by default.
const defaultTopicQueues = 8

// maxQueues bounds a declared topic's queue count (a typo guard, far above
// what one broker group serves).
const maxQueues = 1024

// validName is RocketMQ's rule for topic and group names
// (TopicValidator.isTopicOrGroupIllegal: letters, digits, %, -, _, |).
func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("%-_|", c) >= 0) {
			return false
		}
	}
	return true
}

const (
	topicNameRule = "1-127 letters, digits, '-', '_', '|' or '%'"
	groupNameRule = "1-255 letters, digits, '-', '_', '|' or '%'"
)

func (s TopicSpec) topic(name string) rmqadmin.Topic {
	q, p := s.Queues, s.Perm
	if q == 0 {
		q = defaultTopicQueues
	}
	if p == 0 {
		p = rmqadmin.PermRW
	}
	return rmqadmin.Topic{Name: name, ReadQueueNums: q, WriteQueueNums: q, Perm: p}
}

func (s TopicSpec) check() string {
	switch {
	case s.Queues < 0 || s.Queues > maxQueues:
		return fmt.Sprintf("queues = %d is out of range; set 1-%d (or leave it out for %d)", s.Queues, maxQueues, defaultTopicQueues)
	case s.Perm != 0 && s.Perm != rmqadmin.PermRW && s.Perm != rmqadmin.PermRead && s.Perm != rmqadmin.PermWrite:
		return fmt.Sprintf("perm = %d is not a topic permission; set 6 (read and write), 4 (read only) or 2 (write only)", s.Perm)
	}
	return ""
}

// validateDesired checks the desired-state fields; every message names
// the field and the fix.
func (c *RocketMQConfig) validateDesired() []string {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	d := c.BrokerDesired
	if c.Role != RoleBroker && (len(d.Topics) > 0 || len(d.Topic) > 0 || len(d.SubscriptionGroups) > 0 || d.NamesrvSource != "" || d.EmptyStoreReadOnly != "") {
		add(`rocketmq: topics, topic, subscription_groups, namesrv_source and empty_store_read_only are broker settings; remove them from this %s task`, c.Role)
	}
	seen := map[string]string{}
	for i, name := range d.Topics {
		if !validName(name, 127) {
			add(`rocketmq.topics[%d]: %q is not a topic name; use %s`, i, name, topicNameRule)
		} else if seen[name] != "" {
			add(`rocketmq.topics[%d]: %q is declared twice`, i, name)
		}
		seen[name] = "topics"
	}
	for _, name := range sortedKeys(d.Topic) {
		if !validName(name, 127) {
			add(`rocketmq.topic %q: not a topic name; use %s`, name, topicNameRule)
		} else if seen[name] != "" {
			add(`rocketmq.topic %q: also listed in rocketmq.topics; keep one of the two`, name)
		}
		if msg := d.Topic[name].check(); msg != "" {
			add(`rocketmq.topic %q: %s`, name, msg)
		}
	}
	groups := map[string]bool{}
	for i, g := range d.SubscriptionGroups {
		if !validName(g, 255) {
			add(`rocketmq.subscription_groups[%d]: %q is not a group name; use %s`, i, g, groupNameRule)
		} else if groups[g] {
			add(`rocketmq.subscription_groups[%d]: %q is declared twice`, i, g)
		}
		groups[g] = true
	}
	if d.EmptyStoreReadOnly != "" {
		if v, err := time.ParseDuration(d.EmptyStoreReadOnly); err != nil || v < 0 || v > time.Hour {
			add(`rocketmq.empty_store_read_only: %q is not a duration of 0-1h; e.g. "45s", or "0s" to let a broker with an empty store take writes at once`, d.EmptyStoreReadOnly)
		}
	}
	switch d.NamesrvSource {
	case "", NamesrvFromConsul, NamesrvFromTask:
	default:
		add(`rocketmq.namesrv_source: %q is not a source; set "consul" (the driver writes namesrvAddr from Consul) or "task" (the task's own settings)`, d.NamesrvSource)
	}
	return errs
}

// desiredSet is what every broker of a cluster must have.
type desiredSet struct {
	Topics map[string]rmqadmin.Topic
	Groups map[string]bool
}

// declared is the job's part of the desired set.
func (d BrokerDesired) declared() desiredSet {
	s := desiredSet{Topics: map[string]rmqadmin.Topic{}, Groups: map[string]bool{}}
	for _, name := range d.Topics {
		s.Topics[name] = TopicSpec{}.topic(name)
	}
	for name, spec := range d.Topic {
		s.Topics[name] = spec.topic(name)
	}
	for _, g := range d.SubscriptionGroups {
		s.Groups[g] = true
	}
	return s
}

// desiredKVPrefix is where a cluster's desired topics and groups live in Consul.
func desiredKVPrefix(cluster string) string { return "rocketmq/" + cluster + "/" }

// kvProblem is a Consul key left out of the desired set, and why.
type kvProblem struct{ Key, Reason string }

// fromKV reads a cluster's topics and groups from the pairs under
// kvPrefix(cluster). Keys that are not topics/<name> or groups/<name>
// are ignored; a bad name or value is reported and left out.
func fromKV(cluster string, pairs consulapi.KVPairs) (desiredSet, []kvProblem) {
	s := desiredSet{Topics: map[string]rmqadmin.Topic{}, Groups: map[string]bool{}}
	var probs []kvProblem
	prefix := desiredKVPrefix(cluster)
	for _, p := range pairs {
		rest, ok := strings.CutPrefix(p.Key, prefix)
		if !ok {
			continue
		}
		kind, name, ok := strings.Cut(rest, "/")
		if !ok || name == "" || strings.Contains(name, "/") {
			continue
		}
		switch kind {
		case "topics":
			if !validName(name, 127) {
				probs = append(probs, kvProblem{p.Key, "not a topic name: use " + topicNameRule})
				continue
			}
			var spec TopicSpec
			if v := strings.TrimSpace(string(p.Value)); v != "" {
				dec := json.NewDecoder(strings.NewReader(v))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&spec); err != nil {
					probs = append(probs, kvProblem{p.Key, `value is not {"queues": N, "perm": 6|4|2}: ` + err.Error()})
					continue
				}
			}
			if msg := spec.check(); msg != "" {
				probs = append(probs, kvProblem{p.Key, msg})
				continue
			}
			s.Topics[name] = spec.topic(name)
		case "groups":
			if !validName(name, 255) {
				probs = append(probs, kvProblem{p.Key, "not a group name: use " + groupNameRule})
				continue
			}
			s.Groups[name] = true
		}
	}
	return s, probs
}

// merge adds other's topics and groups; for a topic in both, s (the job's
// declaration) wins, and the names of such topics are returned.
func (s desiredSet) merge(other desiredSet) []string {
	var conflicts []string
	for name, t := range other.Topics {
		if cur, ok := s.Topics[name]; ok {
			if cur != t {
				conflicts = append(conflicts, name)
			}
			continue
		}
		s.Topics[name] = t
	}
	for g := range other.Groups {
		s.Groups[g] = true
	}
	sort.Strings(conflicts)
	return conflicts
}

// seedFiles renders the desired set as the broker's own config files
// (store/config/topics.json and subscriptionGroup.json; TopicConfigManager
// and SubscriptionGroupManager decode them at start), which the image's
// entrypoint copies into a store that has none: a broker with an empty
// store then registers its topics in its very first registration. Either
// is nil when the set has none.
func (s desiredSet) seedFiles(now time.Time) (topics, groups []byte, err error) {
	version := map[string]int64{"counter": 1, "stateVersion": 0, "timestamp": now.UnixMilli()}
	type topicConfig struct {
		rmqadmin.Topic
		TopicFilterType string            `json:"topicFilterType"`
		Attributes      map[string]string `json:"attributes"`
	}
	if len(s.Topics) > 0 {
		table := map[string]topicConfig{}
		for name, t := range s.Topics {
			table[name] = topicConfig{Topic: t, TopicFilterType: "SINGLE_TAG", Attributes: map[string]string{}}
		}
		if topics, err = json.MarshalIndent(map[string]any{"topicConfigTable": table, "dataVersion": version}, "", "  "); err != nil {
			return nil, nil, err
		}
	}
	if len(s.Groups) > 0 {
		table := map[string]rmqadmin.Group{}
		for g := range s.Groups {
			table[g] = rmqadmin.DefaultGroup(g)
		}
		if groups, err = json.MarshalIndent(map[string]any{"subscriptionGroupTable": table, "forbiddenTable": map[string]any{}, "dataVersion": version}, "", "  "); err != nil {
			return nil, nil, err
		}
	}
	return topics, groups, nil
}

// names returns the set's topic and group names, sorted.
func (s desiredSet) names() (topics, groups []string) {
	return sortedKeys(s.Topics), sortedKeys(s.Groups)
}
