// Command ucloud-sim runs the local UCloud API simulator (package ucloudsim):
// the UNet EIP, ULB and UHost APIs the SDK talks to through its BaseUrl, the
// per-host instance metadata, and an admin API under /_sim/.
//
//	ucloud-sim -listen 127.0.0.1:8790 -seed examples/ucloudsim/demo.json
//
// See docs/ucloudsim.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ucloudsim.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
