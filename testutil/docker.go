package testutil

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// RepoRoot returns the repository's top directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// requireOrSkip fails the test when `make test` demands the agents
// (RMQ_REQUIRE_AGENTS=1) and skips it loudly otherwise.
func requireOrSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("RMQ_REQUIRE_AGENTS") == "1" {
		t.Fatalf("%s (RMQ_REQUIRE_AGENTS=1: `make test` requires it)", msg)
	}
	t.Skipf("SKIPPED: %s; run `make test` (which builds the agents and starts dockerd) to run this test", msg)
}

// EnsureDocker makes sure a Docker engine answers, starting it with
// scripts/dockerd.sh (which installs Debian's docker.io when missing).
func EnsureDocker(t testing.TB) {
	t.Helper()
	if exec.Command("docker", "info").Run() == nil {
		return
	}
	script := filepath.Join(RepoRoot(t), "scripts", "dockerd.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if err != nil {
		requireOrSkip(t, "no Docker engine and %s failed: %v\n%s", script, err, out)
	}
}

// Docker runs the docker CLI and returns its trimmed stdout.
func Docker(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// BuildTestImage builds e2e/testapp as a static binary and imports it as a
// FROM-scratch image. The tag is the binary's hash, so a changed app gives a
// new tag and an unchanged one is not imported again. It returns the image.
func BuildTestImage(t testing.TB) string {
	t.Helper()
	EnsureDocker(t)
	root := RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "testapp")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./e2e/testapp")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testapp: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("read testapp: %v", err)
	}
	sum := sha256.Sum256(data)
	image := "rmq-nomad/testapp:" + hex.EncodeToString(sum[:6])
	if _, err := Docker("image", "inspect", image); err == nil {
		return image
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "testapp", Mode: 0o755, Size: int64(len(data))}); err != nil {
		t.Fatalf("tar: %v", err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatalf("tar: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatalf("tar: %v", err)
	}
	imp := exec.Command("docker", "import", "--change", `ENTRYPOINT ["/testapp"]`, "--change", `CMD ["serve"]`, "-", image)
	imp.Stdin = &buf
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import %s: %v\n%s", image, err, out)
	}
	return image
}

// BuildPlugin builds cmd/rmq-driver and installs it into a fresh plugin dir
// with scripts/install.sh (the script `make install` and the Packer template
// use), and returns the dir.
func BuildPlugin(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "build", "rmq-driver")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/rmq-driver")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plugin: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "plugins")
	inst := exec.Command("bash", filepath.Join(root, "scripts", "install.sh"), bin, dir)
	if out, err := inst.CombinedOutput(); err != nil {
		t.Fatalf("install plugin: %v\n%s", err, out)
	}
	return dir
}

// BridgeIP returns the IPv4 address of the docker0 bridge: reachable from
// this machine and from inside containers on the default bridge network.
func BridgeIP(t testing.TB) string {
	t.Helper()
	ifc, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("docker0: %v", err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatalf("docker0 addresses: %v", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Fatalf("docker0 has no IPv4 address")
	return ""
}
