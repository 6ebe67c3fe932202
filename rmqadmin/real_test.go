package rmqadmin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestAgainstRocketMQ makes every call against a real RocketMQ 5.3.3
// NameServer and broker (the project's image).
func TestAgainstRocketMQ(t *testing.T) {
	image := testutil.RocketMQImage(t)
	r := testutil.StartRocketMQ(t, image, testutil.RocketMQOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	topics, err := rmqadmin.Topics(ctx, r.Broker)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := topics["TBW102"]; !ok {
		t.Fatalf("no system topic TBW102 in %v", topics)
	}
	want := rmqadmin.Topic{Name: "AdminT", ReadQueueNums: 3, WriteQueueNums: 3, Perm: rmqadmin.PermRW}
	if err := rmqadmin.CreateTopic(ctx, r.Broker, want); err != nil {
		t.Fatal(err)
	}
	topics, err = rmqadmin.Topics(ctx, r.Broker)
	if err != nil || topics["AdminT"] != want {
		t.Fatalf("AdminT = %+v (%v), want %+v", topics["AdminT"], err, want)
	}
	// The NameServer routes the new topic once the broker registers it: at
	// once when the broker has registered before, else with its first
	// registration (the broker's port answers before that).
	var route *rmqadmin.Route
	for {
		route, err = rmqadmin.TopicRoute(ctx, r.NameServer, "AdminT")
		if err == nil || !rmqadmin.IsCode(err, rmqadmin.CodeTopicNotExist) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no route of AdminT after 90 s: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(route.BrokerNames(), ","); got != r.BrokerName || route.MasterAddr(r.BrokerName) != r.Broker {
		t.Fatalf("route %+v, want %s at %s", route, r.BrokerName, r.Broker)
	}
	if _, err := rmqadmin.TopicRoute(ctx, r.NameServer, "NoSuchTopic"); !rmqadmin.IsCode(err, rmqadmin.CodeTopicNotExist) {
		t.Fatalf("route of a missing topic: %v", err)
	}

	if err := rmqadmin.CreateGroup(ctx, r.Broker, rmqadmin.DefaultGroup("admin-g")); err != nil {
		t.Fatal(err)
	}
	groups, err := rmqadmin.Groups(ctx, r.Broker)
	if err != nil || !groups["admin-g"] {
		t.Fatalf("groups %v (%v), want admin-g", groups, err)
	}

	cfg, err := rmqadmin.BrokerConfig(ctx, r.Broker)
	if err != nil || cfg["namesrvAddr"] != r.NameServer || cfg["brokerName"] != r.BrokerName {
		t.Fatalf("namesrvAddr=%q brokerName=%q (%v)", cfg["namesrvAddr"], cfg["brokerName"], err)
	}
	next := r.NameServer + ";127.0.0.1:1"
	if err := rmqadmin.UpdateBrokerConfig(ctx, r.Broker, map[string]string{"namesrvAddr": next}); err != nil {
		t.Fatal(err)
	}
	if cfg, err = rmqadmin.BrokerConfig(ctx, r.Broker); err != nil || cfg["namesrvAddr"] != next {
		t.Fatalf("namesrvAddr after update = %q (%v), want %q", cfg["namesrvAddr"], err, next)
	}
}
