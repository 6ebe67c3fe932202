// Command rmq-driver is the `rocketmq` Nomad task driver plugin. Installed in
// a Nomad client's plugin_dir it is started by Nomad; run by hand it offers a
// few standalone sub-commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/plugins"
	"github.com/hashicorp/nomad/plugins/base"

	// docklog's init serves the docker driver's `docker_logger` re-exec of
	// this binary.
	_ "github.com/hashicorp/nomad/drivers/docker/docklog"

	"github.com/rmqnomad/rocketmq-nomad-driver/driver"
	"github.com/rmqnomad/rocketmq-nomad-driver/nsaddr"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
	"github.com/rmqnomad/rocketmq-nomad-driver/version"
)

const usage = `rmq-driver: the "rocketmq" Nomad task driver plugin (version %s).

It runs Apache RocketMQ name servers and brokers as Docker containers and
makes them reachable on UCloud (EIP binding, ULB backends, advertised
address, NameServer address endpoint).

This binary is started by a Nomad client, not by hand. To install it:
  1. copy it into the client's plugin_dir, e.g. /opt/nomad/plugins/rmq-driver
  2. add to the client's config:
       plugin "rmq-driver" {
         config { }
       }
  3. restart the client and use driver = "rocketmq" in job specs.

Sub-commands:
  rmq-driver nsaddr -h      the NameServer address endpoint on its own
  rmq-driver status -h      the bindings, their drift and what the reconciler will do
  rmq-driver ucloud-sim -h  a local UCloud API simulator (dry runs, tests)
  rmq-driver version        print the version
  rmq-driver help           print this text
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "-version", "--version":
			fmt.Fprintf(stdout, "rmq-driver %s\n", version.Version)
			return 0
		case "nsaddr":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return nsaddr.Main(ctx, args[1:], stdout, stderr)
		case "status":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runStatus(ctx, args[1:], stdout, stderr, statusEnv{})
		case "ucloud-sim":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return ucloudsim.Main(ctx, args[1:], stdout, stderr)
		case "help", "-h", "-help", "--help":
			fmt.Fprintf(stdout, usage, version.Version)
			return 0
		default:
			fmt.Fprintf(stderr, "rmq-driver: unknown sub-command %q\n\n", args[0])
			fmt.Fprintf(stderr, usage, version.Version)
			return 2
		}
	}
	if os.Getenv(base.Handshake.MagicCookieKey) != base.Handshake.MagicCookieValue {
		fmt.Fprintf(stderr, usage, version.Version)
		return 1
	}
	plugins.ServeCtx(func(ctx context.Context, logger hclog.Logger) interface{} {
		return driver.New(ctx, logger)
	})
	return 0
}
