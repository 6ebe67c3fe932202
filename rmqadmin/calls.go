package rmqadmin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Request codes (RocketMQ 5.3.3 remoting RequestCode).
const (
	reqUpdateAndCreateTopic  = 17
	reqGetAllTopicConfig     = 21
	reqUpdateBrokerConfig    = 25
	reqGetBrokerConfig       = 26
	reqGetRouteInfoByTopic   = 105
	reqUpdateAndCreateGroup  = 200
	reqGetAllSubscriptionGrp = 201
)

// Permissions of a topic (RocketMQ PermName).
const (
	PermWrite = 2
	PermRead  = 4
	PermRW    = PermRead | PermWrite
)

// Topic is the part of a broker's TopicConfig the driver manages.
type Topic struct {
	Name           string `json:"topicName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
	Order          bool   `json:"order"`
}

// Topics returns a broker's topic table (GET_ALL_TOPIC_CONFIG), system
// topics included, by name.
func Topics(ctx context.Context, broker string) (map[string]Topic, error) {
	resp, err := Invoke(ctx, broker, reqGetAllTopicConfig, nil, nil)
	if err != nil {
		return nil, err
	}
	var w struct {
		TopicConfigTable map[string]Topic `json:"topicConfigTable"`
	}
	if err := json.Unmarshal(resp.Body, &w); err != nil {
		return nil, fmt.Errorf("rocketmq %s: topic table: %w", broker, err)
	}
	return w.TopicConfigTable, nil
}

// CreateTopic creates or updates a topic on one broker
// (UPDATE_AND_CREATE_TOPIC). The broker answers at once when nothing
// changes (AdminBrokerProcessor.updateAndCreateTopic compares the configs)
// and otherwise registers the topic with its NameServers before it
// answers.
func CreateTopic(ctx context.Context, broker string, t Topic) error {
	ext := map[string]string{
		"topic":           t.Name,
		"defaultTopic":    "TBW102",
		"readQueueNums":   strconv.Itoa(t.ReadQueueNums),
		"writeQueueNums":  strconv.Itoa(t.WriteQueueNums),
		"perm":            strconv.Itoa(t.Perm),
		"topicFilterType": "SINGLE_TAG",
		"topicSysFlag":    strconv.Itoa(t.TopicSysFlag),
		"order":           strconv.FormatBool(t.Order),
	}
	_, err := Invoke(ctx, broker, reqUpdateAndCreateTopic, ext, nil)
	return err
}

// Groups returns the names of a broker's subscription groups
// (GET_ALL_SUBSCRIPTIONGROUP_CONFIG), system groups included.
func Groups(ctx context.Context, broker string) (map[string]bool, error) {
	resp, err := Invoke(ctx, broker, reqGetAllSubscriptionGrp, nil, nil)
	if err != nil {
		return nil, err
	}
	var w struct {
		SubscriptionGroupTable map[string]json.RawMessage `json:"subscriptionGroupTable"`
	}
	if err := json.Unmarshal(resp.Body, &w); err != nil {
		return nil, fmt.Errorf("rocketmq %s: subscription group table: %w", broker, err)
	}
	out := make(map[string]bool, len(w.SubscriptionGroupTable))
	for name := range w.SubscriptionGroupTable {
		out[name] = true
	}
	return out, nil
}

// Group is a subscription group with RocketMQ's defaults
// (SubscriptionGroupConfig), the fields spelled as the broker reads them.
type Group struct {
	GroupName                      string `json:"groupName"`
	ConsumeEnable                  bool   `json:"consumeEnable"`
	ConsumeFromMinEnable           bool   `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool   `json:"consumeBroadcastEnable"`
	RetryQueueNums                 int    `json:"retryQueueNums"`
	RetryMaxTimes                  int    `json:"retryMaxTimes"`
	BrokerID                       int    `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int    `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool   `json:"notifyConsumerIdsChangedEnable"`
}

// DefaultGroup is the group name with RocketMQ 5.3.3's defaults.
func DefaultGroup(name string) Group {
	return Group{GroupName: name, ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
		RetryQueueNums: 1, RetryMaxTimes: 16, WhichBrokerWhenConsumeSlowly: 1, NotifyConsumerIdsChangedEnable: true}
}

// CreateGroup creates or updates a subscription group on one broker
// (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP; the body is the group's config).
func CreateGroup(ctx context.Context, broker string, g Group) error {
	body, err := json.Marshal(g)
	if err != nil {
		return err
	}
	_, err = Invoke(ctx, broker, reqUpdateAndCreateGroup, nil, body)
	return err
}

// BrokerConfig returns a broker's running configuration (GET_BROKER_CONFIG:
// every key of its config objects, as key=value lines).
func BrokerConfig(ctx context.Context, broker string) (map[string]string, error) {
	resp, err := Invoke(ctx, broker, reqGetBrokerConfig, nil, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(resp.Body))
	sc.Buffer(make([]byte, 64<<10), maxFrame)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}

// UpdateBrokerConfig changes keys of a broker's running configuration
// (UPDATE_BROKER_CONFIG: the body is a properties text; the broker applies
// it to its config objects and persists it to its config file).
func UpdateBrokerConfig(ctx context.Context, broker string, props map[string]string) error {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	_, err := Invoke(ctx, broker, reqUpdateBrokerConfig, nil, []byte(b.String()))
	return err
}

// Route is a topic's route on a NameServer.
type Route struct {
	Queues  []RouteQueue  `json:"queueDatas"`
	Brokers []RouteBroker `json:"brokerDatas"`
}

// RouteQueue is one broker's queues of a topic.
type RouteQueue struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
}

// RouteBroker is one broker group of a route: its addresses by broker id
// (0 is the master).
type RouteBroker struct {
	Cluster    string            `json:"cluster"`
	BrokerName string            `json:"brokerName"`
	Addrs      map[string]string `json:"brokerAddrs"`
}

// BrokerNames returns the broker groups that serve the topic, sorted.
func (r *Route) BrokerNames() []string {
	var out []string
	for _, q := range r.Queues {
		out = append(out, q.BrokerName)
	}
	sort.Strings(out)
	return out
}

// MasterAddr returns the master address of broker group name, "" when the
// route has none.
func (r *Route) MasterAddr(name string) string {
	for _, b := range r.Brokers {
		if b.BrokerName == name {
			return b.Addrs["0"]
		}
	}
	return ""
}

// TopicRoute asks a NameServer for a topic's route (GET_ROUTEINFO_BY_TOPIC,
// standard JSON). A topic the NameServer has no route for is an *Error
// with CodeTopicNotExist.
func TopicRoute(ctx context.Context, namesrv, topic string) (*Route, error) {
	resp, err := Invoke(ctx, namesrv, reqGetRouteInfoByTopic,
		map[string]string{"topic": topic, "acceptStandardJsonOnly": "true"}, nil)
	if err != nil {
		return nil, err
	}
	var r Route
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		return nil, fmt.Errorf("rocketmq %s: route of %s: %w", namesrv, topic, err)
	}
	return &r, nil
}
