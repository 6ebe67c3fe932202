package nsaddr

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

func TestMainServesUntilCanceled(t *testing.T) {
	agent := testutil.StartConsul(t)
	registerNS(t, agent.Client, "ns-A-svc", "a1", "10.0.0.1", 9876)
	// Consul settings from the standard environment variables.
	t.Setenv("CONSUL_HTTP_ADDR", agent.HTTPAddr)
	t.Setenv("CONSUL_HTTP_TOKEN", "env-70ken-not-in-logs")

	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, []string{"-listen", "127.0.0.1:0", "-default-cluster", "A", "-service-name", "ns-{{cluster}}-svc", "-log-level", "debug"}, stdout, stderr)
	}()

	re := regexp.MustCompile(`^nsaddr listening on http://(127\.0\.0\.1:\d+)\n$`)
	var base string
	deadline := time.Now().Add(converge)
	for base == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = "http://" + m[1]
			break
		}
		select {
		case c := <-code:
			t.Fatalf("Main exited with %d before listening; stderr:\n%s", c, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line on stdout (%q); stderr:\n%s", stdout, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, path := range []string{"/rocketmq/A", "/rocketmq/nsaddr"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "10.0.0.1:9876" {
			t.Errorf("GET %s = %d %q", path, resp.StatusCode, body)
		}
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d after cancel, want 0; stderr:\n%s", c, stderr)
		}
	case <-time.After(converge):
		t.Fatal("Main did not return after cancel")
	}
	if strings.Contains(stderr.String(), "env-70ken") {
		t.Error("token from CONSUL_HTTP_TOKEN in the log")
	}
}

func TestMainUsageErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"help", []string{"-h"}, 0, "Usage: rmq-driver nsaddr"},
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined"},
		{"stray argument", []string{"extra"}, 2, "unexpected arguments"},
		{"bad pattern", []string{"-service-name", "nameServer"}, 2, "{{cluster}}"},
		{"bad default cluster", []string{"-default-cluster", "../x"}, 2, "invalid default cluster"},
		{"negative stale-after", []string{"-stale-after", "-1s"}, 2, "stale_after"},
		{"bad log level", []string{"-log-level", "loud"}, 2, "log-level"},
		{"address in use", []string{"-listen", busy.Addr().String(), "-consul", "127.0.0.1:1"}, 1, "listen on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr syncBuffer
			if c := Main(t.Context(), tc.args, &stdout, &stderr); c != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", c, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.msg)
			}
		})
	}
}
