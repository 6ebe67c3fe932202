package ucloudsim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ucloud/ucloud-sdk-go/services/unet"
	"github.com/ucloud/ucloud-sdk-go/ucloud"
	"github.com/ucloud/ucloud-sdk-go/ucloud/auth"
	sdklog "github.com/ucloud/ucloud-sdk-go/ucloud/log"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMain_ServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	faults := filepath.Join(dir, "faults.json")
	mustOK(t, os.WriteFile(faults, []byte(`{"rules":[{"action":"BindEIP","ret_code":5000,"count":1}]}`), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{
			"-listen", "127.0.0.1:0", "-seed", filepath.Join("..", "examples", "ucloudsim", "demo.json"),
			"-faults", faults, "-seed-random", "9", "-keypair", "extra=extra-secret", "-log-level", "debug",
		}, &stdout, &stderr)
	}()

	var url string
	waitFor(t, func() bool {
		line, ok := strings.CutPrefix(stdout.String(), "ucloud-sim listening on ")
		url = strings.TrimSpace(line)
		return ok && strings.HasSuffix(stdout.String(), "\n")
	}, func() string { return "no listening line; stderr: " + stderr.String() })

	cfg := ucloud.NewConfig()
	cfg.BaseUrl, cfg.Region, cfg.ProjectId, cfg.LogLevel = url, "cn-bj2", "org-demo", sdklog.PanicLevel
	cred := auth.NewCredential()
	cred.PublicKey, cred.PrivateKey = "extra", "extra-secret"
	c := unet.NewClient(&cfg, &cred)
	bind := func() error {
		req := c.NewBindEIPRequest()
		req.EIPId, req.ResourceType, req.ResourceId = ptr("eip-demo-broker-0"), ptr("uhost"), ptr("uhost-demo-1")
		_, err := c.BindEIP(req)
		return err
	}
	wantCode(t, bind(), 5000) // the -faults file is in force
	mustOK(t, bind())
	if code, body := get(t, url+"/metadata/uhost-demo-2/meta-data/latest/uhost/uhost-id"); code != 200 || body != "uhost-demo-2" {
		t.Fatalf("metadata: %d %q", code, body)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d; stderr: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Main did not return after cancel")
	}
	for _, secret := range []string{"extra-secret", "demo-private-key-not-a-secret"} {
		if strings.Contains(stderr.String(), secret) || strings.Contains(stdout.String(), secret) {
			t.Fatalf("a private key was logged")
		}
	}
}

func TestMain_Errors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	mustOK(t, os.WriteFile(bad, []byte(`{"nope":1}`), 0o600))
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"help", []string{"-h"}, 0},
		{"unknown flag", []string{"-frobnicate"}, 2},
		{"stray argument", []string{"-listen", "127.0.0.1:0", "extra"}, 2},
		{"bad log level", []string{"-log-level", "loud"}, 2},
		{"non-loopback listen", []string{"-listen", "0.0.0.0:0"}, 2},
		{"bad keypair flag", []string{"-keypair", "nokey"}, 2},
		{"missing seed file", []string{"-listen", "127.0.0.1:0", "-seed", filepath.Join(dir, "missing.json")}, 1},
		{"bad seed file", []string{"-listen", "127.0.0.1:0", "-seed", bad}, 1},
		{"bad faults file", []string{"-listen", "127.0.0.1:0", "-faults", bad}, 1},
		{"unusable listen address", []string{"-listen", "127.0.0.1:99999"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a run that gets as far as serving stops at once
			var out, errb syncBuffer
			if got := Main(ctx, tt.args, &out, &errb); got != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", got, tt.code, errb.String())
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:80": true, "localhost:1": true, "[::1]:8": true, "127.1.2.3:0": true,
		":80": false, "0.0.0.0:1": false, "10.0.0.1:80": false, "example.com:80": false, "nonsense": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}
