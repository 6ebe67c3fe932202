package testutil

import (
	"os"
	"os/exec"
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
