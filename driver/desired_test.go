package driver

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/plugins/base"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

// The desired-state fields parse from HCL against the driver's own schema
// and decode into the embedded BrokerDesired.
func TestDesiredStateFieldsDecode(t *testing.T) {
	d := New(context.Background(), hclog.NewNullLogger())
	spec, err := d.TaskConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	raw := parse(t, spec, `
image = "img:1"
rocketmq {
  cluster = "c1"
  role    = "broker"
  port    = "rmq"
  topics  = ["orders", "payments"]
  subscription_groups = ["orders-consumer"]
  namesrv_source = "task"
  topic "audit" {
    queues = 4
    perm   = 4
  }
}`)
	var tc TaskConfig
	if err := base.MsgPackDecode(raw, &tc); err != nil {
		t.Fatal(err)
	}
	got := tc.RocketMQ.BrokerDesired
	want := BrokerDesired{
		Topics: []string{"orders", "payments"}, SubscriptionGroups: []string{"orders-consumer"}, NamesrvSource: "task",
		Topic: map[string]TopicSpec{"audit": {Queues: 4, Perm: 4}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if tc.RocketMQ.Cluster != "c1" || tc.RocketMQ.Port != "rmq" {
		t.Fatalf("the block's other fields: %+v", tc.RocketMQ)
	}
	if err := tc.RocketMQ.Validate(); err != nil {
		t.Fatal(err)
	}
	if g := got.emptyStoreReadOnly(); g != defaultEmptyStoreReadOnly {
		t.Fatalf("default grace %s", g)
	}
	if g := (BrokerDesired{EmptyStoreReadOnly: "0s"}).emptyStoreReadOnly(); g != 0 {
		t.Fatalf("grace off: %s", g)
	}
	set := got.declared()
	if set.Topics["orders"] != (rmqadmin.Topic{Name: "orders", ReadQueueNums: 8, WriteQueueNums: 8, Perm: 6}) ||
		set.Topics["audit"] != (rmqadmin.Topic{Name: "audit", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 4}) || !set.Groups["orders-consumer"] {
		t.Fatalf("declared set %+v", set)
	}
}

func TestDesiredStateValidate(t *testing.T) {
	ok := RocketMQConfig{Cluster: "c1", Role: RoleBroker, Mode: ModePrivate, Port: "rmq"}
	cases := []struct {
		name string
		mod  func(c *RocketMQConfig)
		want []string
	}{
		{"valid", func(c *RocketMQConfig) {
			c.Topics = []string{"a", "b-1", "C_2"}
			c.Topic = map[string]TopicSpec{"d": {Queues: 16, Perm: 6}}
			c.SubscriptionGroups = []string{"g"}
		}, nil},
		{"bad topic name", func(c *RocketMQConfig) { c.Topics = []string{"a.b"} }, []string{"rocketmq.topics[0]", `"a.b"`, "letters, digits"}},
		{"topic too long", func(c *RocketMQConfig) { c.Topics = []string{strings.Repeat("t", 128)} }, []string{"rocketmq.topics[0]", "1-127"}},
		{"topic twice", func(c *RocketMQConfig) { c.Topics = []string{"a", "a"} }, []string{"rocketmq.topics[1]", "twice"}},
		{"topic in both forms", func(c *RocketMQConfig) {
			c.Topics, c.Topic = []string{"a"}, map[string]TopicSpec{"a": {Queues: 2}}
		}, []string{`rocketmq.topic "a"`, "keep one"}},
		{"bad perm", func(c *RocketMQConfig) { c.Topic = map[string]TopicSpec{"a": {Perm: 7}} }, []string{`rocketmq.topic "a"`, "perm = 7", "6 (read and write)"}},
		{"bad queues", func(c *RocketMQConfig) { c.Topic = map[string]TopicSpec{"a": {Queues: -1}} }, []string{`rocketmq.topic "a"`, "queues = -1"}},
		{"bad group", func(c *RocketMQConfig) { c.SubscriptionGroups = []string{"g g"} }, []string{"rocketmq.subscription_groups[0]"}},
		{"bad source", func(c *RocketMQConfig) { c.NamesrvSource = "dns" }, []string{"rocketmq.namesrv_source", `"dns"`, `"consul"`}},
		{"grace off", func(c *RocketMQConfig) { c.EmptyStoreReadOnly = "0s" }, nil},
		{"bad grace", func(c *RocketMQConfig) { c.EmptyStoreReadOnly = "45" }, []string{"rocketmq.empty_store_read_only", `"45"`, `"45s"`}},
		{"grace too long", func(c *RocketMQConfig) { c.EmptyStoreReadOnly = "2h" }, []string{"rocketmq.empty_store_read_only", "0-1h"}},
		{"topics on a namesrv", func(c *RocketMQConfig) { c.Role, c.Topics = RoleNameServer, []string{"a"} }, []string{"broker settings", "namesrv task"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDesiredFromKV(t *testing.T) {
	pairs := consulapi.KVPairs{
		{Key: "rocketmq/c1/topics/plain"},
		{Key: "rocketmq/c1/topics/sized", Value: []byte(`{"queues": 4, "perm": 6}`)},
		{Key: "rocketmq/c1/topics/bad.name"},
		{Key: "rocketmq/c1/topics/badvalue", Value: []byte(`{"queue": 4}`)},
		{Key: "rocketmq/c1/topics/badperm", Value: []byte(`{"perm": 3}`)},
		{Key: "rocketmq/c1/topics/"},
		{Key: "rocketmq/c1/topics/a/b"},
		{Key: "rocketmq/c1/groups/g1"},
		{Key: "rocketmq/c1/other/x"},
		{Key: "rocketmq/c2/topics/elsewhere"},
	}
	s, probs := fromKV("c1", pairs)
	if got := strings.Join(sortedKeys(s.Topics), ","); got != "plain,sized" {
		t.Fatalf("topics %s", got)
	}
	if s.Topics["sized"].ReadQueueNums != 4 || s.Topics["plain"].ReadQueueNums != 8 || !s.Groups["g1"] || len(s.Groups) != 1 {
		t.Fatalf("set %+v", s)
	}
	var keys []string
	for _, p := range probs {
		keys = append(keys, p.Key)
	}
	if got := strings.Join(keys, ","); got != "rocketmq/c1/topics/bad.name,rocketmq/c1/topics/badvalue,rocketmq/c1/topics/badperm" {
		t.Fatalf("problems %v", probs)
	}

	job := BrokerDesired{Topic: map[string]TopicSpec{"sized": {Queues: 16}}}.declared()
	if conflicts := job.merge(s); !reflect.DeepEqual(conflicts, []string{"sized"}) {
		t.Fatalf("conflicts %v", conflicts)
	}
	if job.Topics["sized"].ReadQueueNums != 16 || job.Topics["plain"].ReadQueueNums != 8 {
		t.Fatalf("merged %+v: the job's declaration must win", job.Topics)
	}
}

// The seed files decode the way RocketMQ's TopicConfigSerializeWrapper and
// SubscriptionGroupManager read them (field names and shapes).
func TestSeedFiles(t *testing.T) {
	s := BrokerDesired{Topics: []string{"t1"}, SubscriptionGroups: []string{"g1"}}.declared()
	topics, groups, err := s.seedFiles(time.UnixMilli(1700000000000))
	if err != nil {
		t.Fatal(err)
	}
	var tw struct {
		TopicConfigTable map[string]map[string]any `json:"topicConfigTable"`
		DataVersion      map[string]any            `json:"dataVersion"`
	}
	if err := json.Unmarshal(topics, &tw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"topicName": "t1", "readQueueNums": float64(8), "writeQueueNums": float64(8), "perm": float64(6),
		"topicFilterType": "SINGLE_TAG", "topicSysFlag": float64(0), "order": false, "attributes": map[string]any{}}
	if !reflect.DeepEqual(tw.TopicConfigTable["t1"], want) || tw.DataVersion["timestamp"] != float64(1700000000000) {
		t.Fatalf("topics.json %s", topics)
	}
	var gw struct {
		SubscriptionGroupTable map[string]map[string]any `json:"subscriptionGroupTable"`
	}
	if err := json.Unmarshal(groups, &gw); err != nil {
		t.Fatal(err)
	}
	if g := gw.SubscriptionGroupTable["g1"]; g["groupName"] != "g1" || g["consumeEnable"] != true || g["retryMaxTimes"] != float64(16) {
		t.Fatalf("subscriptionGroup.json %s", groups)
	}
	none, nog, err := desiredSet{Topics: map[string]rmqadmin.Topic{}, Groups: map[string]bool{}}.seedFiles(time.Now())
	if err != nil || none != nil || nog != nil {
		t.Fatalf("empty set: %q %q %v", none, nog, err)
	}
}
