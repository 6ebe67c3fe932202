package rmqadmin

import (
	"context"
	"testing"
	"time"
)

func TestElectMasterFrom(t *testing.T) {
	seen := make(chan header, 10)
	answer := func(code int, ext map[string]string) func(header, []byte) (header, []byte) {
		return func(h header, _ []byte) (header, []byte) {
			seen <- h
			return header{Code: code, ExtFields: ext}, []byte(`{"syncStateSet":[2]}`)
		}
	}
	follower := fakeServer(t, answer(CodeControllerNotLeader, nil))
	leader := fakeServer(t, answer(CodeSuccess, map[string]string{
		"masterBrokerId": "2", "masterAddress": "10.0.0.12:30911", "masterEpoch": "4", "syncStateSetEpoch": "7"}))
	refusing := fakeServer(t, answer(CodeControllerElectMasterFailed, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	el, from, err := ElectMasterFrom(ctx, []string{follower, leader}, "", "orders", "broker-0", 2, 3*time.Second)
	if err != nil || from != leader || el != (Elected{MasterBrokerID: 2, MasterAddress: "10.0.0.12:30911", MasterEpoch: 4, SyncStateSetEpoch: 7}) {
		t.Fatalf("ElectMasterFrom = %+v %s %v", el, from, err)
	}
	for i, want := range []string{"follower", "leader"} {
		h := <-seen
		f := h.ExtFields
		if h.Code != 1002 || f["clusterName"] != "orders" || f["brokerName"] != "broker-0" || f["brokerId"] != "2" ||
			f["designateElect"] != "true" || f["invokeTime"] == "" {
			t.Fatalf("request %d (%s): code %d, fields %v", i, want, h.Code, f)
		}
	}
	// The leader's refusal is final: the next controller is not asked.
	if _, from, err := ElectMasterFrom(ctx, []string{refusing, leader}, "", "orders", "broker-0", 3, 3*time.Second); !IsCode(err, CodeControllerElectMasterFailed) || from != refusing {
		t.Fatalf("a refusal: from %s, %v", from, err)
	}
	<-seen
	select {
	case h := <-seen:
		t.Fatalf("asked another controller after a refusal: %+v", h)
	default:
	}
	// Only followers (and first first): no leader.
	if _, _, err := ElectMasterFrom(ctx, []string{follower}, follower, "orders", "broker-0", 2, 3*time.Second); !IsCode(err, CodeControllerNotLeader) {
		t.Fatalf("only a follower: %v", err)
	}
	if h := <-seen; h.Code != 1002 {
		t.Fatalf("code %d", h.Code)
	}
	select {
	case h := <-seen:
		t.Fatalf("the follower was asked twice: %+v", h)
	default:
	}
}
