package testutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stopGracefully sends SIGINT to cmd and waits for done (closed when cmd
// has exited); after grace it kills the process and waits again.
func stopGracefully(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// killProcessesUsing kills every process whose executable path starts with
// prefix: the plugin and its docker_logger children.
func killProcessesUsing(prefix string) {
	for _, p := range procsWithPrefix(prefix) {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

type procInfo struct{ pid, ppid int }

// procsWithPrefix lists processes whose argv[0] starts with prefix.
func procsWithPrefix(prefix string) []procInfo {
	var out []procInfo
	for _, p := range allProcs() {
		if strings.HasPrefix(p.cmdline, prefix) {
			out = append(out, p.procInfo)
		}
	}
	return out
}

type procEntry struct {
	procInfo
	cmdline string // NUL-separated argv
}

// allProcs lists the processes this user can see.
func allProcs() []procEntry {
	entries, _ := os.ReadDir("/proc")
	var out []procEntry
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		ppid := 0
		if len(fields) > 1 {
			fmt.Sscanf(fields[1], "%d", &ppid)
		}
		out = append(out, procEntry{procInfo: procInfo{pid: pid, ppid: ppid}, cmdline: string(cmdline)})
	}
	return out
}

// descendants returns the pids of every process below root in the process
// tree (not root itself).
func descendants(root int) []int {
	children := map[int][]int{}
	for _, p := range allProcs() {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, ch := range children[pid] {
			out = append(out, ch)
			queue = append(queue, ch)
		}
	}
	return out
}

// PluginPID returns the pid of the rmq-driver plugin process this client
// agent started (0 when none runs).
func (c *NomadCluster) PluginPID(a *NomadAgent) int {
	pid := a.pid()
	if pid == 0 {
		return 0
	}
	for _, p := range procsWithPrefix(filepath.Join(a.PluginDir, "rmq-driver")) {
		if p.ppid == pid {
			return p.pid
		}
	}
	return 0
}

// linkDir makes dst a directory with a hard link (a copy where linking
// fails) to every regular file of src, keeping the modes.
func linkDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if err := os.Link(from, to); err == nil {
			continue
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("open %s: %w", from, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", from, err)
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return fmt.Errorf("create %s: %w", to, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", from, to, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write %s: %w", to, err)
	}
	return nil
}
