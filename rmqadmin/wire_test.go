package rmqadmin

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeServer answers each frame with handle's response, first sending
// an unrelated request and a response for another opaque (which the
// client must skip).
func fakeServer(t *testing.T, handle func(h header, body []byte) (header, []byte)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				h, b, err := readFrame(c)
				if err != nil {
					return
				}
				_ = writeFrame(c, header{Code: 99, Opaque: 7777}, nil)                            // a request
				_ = writeFrame(c, header{Code: 1, Flag: flagResponse, Opaque: h.Opaque + 1}, nil) // not ours
				rh, rb := handle(h, b)
				rh.Flag |= flagResponse
				rh.Opaque = h.Opaque
				_ = writeFrame(c, rh, rb)
			}(c)
		}
	}()
	return ln.Addr().String()
}

func TestFrameLayout(t *testing.T) {
	var buf strings.Builder
	if err := writeFrame(&buf, header{Code: 17, Language: "GO", Opaque: 3}, []byte("body")); err != nil {
		t.Fatal(err)
	}
	b := []byte(buf.String())
	length := binary.BigEndian.Uint32(b[0:4])
	mark := binary.BigEndian.Uint32(b[4:8])
	if int(length) != len(b)-4 {
		t.Fatalf("length %d, frame %d bytes", length, len(b))
	}
	if mark>>24 != 0 {
		t.Fatalf("serialize type %d, want JSON (0)", mark>>24)
	}
	hlen := mark & 0xFFFFFF
	var h map[string]any
	if err := json.Unmarshal(b[8:8+hlen], &h); err != nil {
		t.Fatal(err)
	}
	if h["code"] != float64(17) || h["language"] != "GO" || h["opaque"] != float64(3) {
		t.Fatalf("header %v", h)
	}
	if string(b[8+hlen:]) != "body" {
		t.Fatalf("body %q", b[8+hlen:])
	}
}

func TestInvokeSkipsOthersAndReportsCodes(t *testing.T) {
	addr := fakeServer(t, func(h header, body []byte) (header, []byte) {
		switch h.Code {
		case reqGetAllTopicConfig:
			return header{}, []byte(`{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicFilterType":"SINGLE_TAG"}},"dataVersion":{"counter":3}}`)
		case reqUpdateAndCreateTopic:
			if h.ExtFields["topic"] != "T2" || h.ExtFields["readQueueNums"] != "2" || h.ExtFields["perm"] != "6" {
				return header{Code: 1, Remark: "bad ext fields"}, nil
			}
			return header{}, nil
		case reqGetRouteInfoByTopic:
			if h.ExtFields["acceptStandardJsonOnly"] != "true" {
				return header{Code: 1, Remark: "not standard"}, nil
			}
			if h.ExtFields["topic"] == "none" {
				return header{Code: CodeTopicNotExist, Remark: "No topic route info"}, nil
			}
			return header{}, []byte(`{"queueDatas":[{"brokerName":"b1","readQueueNums":4,"writeQueueNums":4,"perm":6},{"brokerName":"b0","readQueueNums":4,"writeQueueNums":4,"perm":6}],"brokerDatas":[{"cluster":"c","brokerName":"b0","brokerAddrs":{"0":"10.0.0.1:10911"}}]}`)
		case reqGetBrokerConfig:
			return header{}, []byte("namesrvAddr=1.2.3.4:9876;1.2.3.5:9876\nbrokerName=b0\n")
		case reqUpdateBrokerConfig:
			if string(body) != "namesrvAddr=a;b\n" {
				return header{Code: 1, Remark: "body " + string(body)}, nil
			}
			return header{}, nil
		}
		return header{Code: 1, Remark: "unexpected"}, nil
	})
	ctx := context.Background()
	topics, err := Topics(ctx, addr)
	if err != nil || topics["T"].ReadQueueNums != 4 || topics["T"].Perm != 6 {
		t.Fatalf("Topics = %v, %v", topics, err)
	}
	if err := CreateTopic(ctx, addr, Topic{Name: "T2", ReadQueueNums: 2, WriteQueueNums: 2, Perm: PermRW}); err != nil {
		t.Fatal(err)
	}
	r, err := TopicRoute(ctx, addr, "T")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.BrokerNames(), ","); got != "b0,b1" || r.MasterAddr("b0") != "10.0.0.1:10911" || r.MasterAddr("b1") != "" {
		t.Fatalf("route %+v", r)
	}
	if _, err := TopicRoute(ctx, addr, "none"); !IsCode(err, CodeTopicNotExist) {
		t.Fatalf("route of a missing topic: %v", err)
	}
	cfg, err := BrokerConfig(ctx, addr)
	if err != nil || cfg["namesrvAddr"] != "1.2.3.4:9876;1.2.3.5:9876" {
		t.Fatalf("BrokerConfig = %v, %v", cfg, err)
	}
	if err := UpdateBrokerConfig(ctx, addr, map[string]string{"namesrvAddr": "a;b"}); err != nil {
		t.Fatal(err)
	}
}

func TestInvokeHonoursTheContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never answers
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Topics(ctx, ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestReadFrameRejectsGarbage(t *testing.T) {
	for name, b := range map[string][]byte{
		"short length":  {0, 0, 0, 2, 0, 0, 0, 0},
		"too long":      {0x7f, 0, 0, 0, 0, 0, 0, 0},
		"not json":      {0, 0, 0, 8, 1, 0, 0, 0},
		"header beyond": {0, 0, 0, 8, 0, 0, 0, 9, 0, 0, 0, 0},
	} {
		if _, _, err := readFrame(strings.NewReader(string(b))); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
