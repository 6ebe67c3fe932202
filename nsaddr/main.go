package nsaddr

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

// Main runs the endpoint on its own: `rmq-driver nsaddr [flags]`. It
// listens, prints "nsaddr listening on http://ADDR" on stdout, logs to
// stderr, and serves until ctx is done or SIGINT/SIGTERM arrives. It
// returns the process exit code: 0 after a clean shutdown, 1 on a runtime
// error, 2 on bad usage. Consul settings not given as flags come from the
// standard CONSUL_* environment variables; the token only from
// CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE or -consul-token-file, so it
// never shows in a process listing.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nsaddr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var logLevel string
	var logJSON bool
	fs.StringVar(&cfg.Listen, "listen", DefaultListen, "`address` to listen on (RocketMQ clients add :8080 to a domain without a port)")
	fs.StringVar(&cfg.DefaultCluster, "default-cluster", "", "`cluster` id served for the default subgroup (/rocketmq/nsaddr)")
	fs.StringVar(&cfg.ServiceNamePattern, "service-name", DefaultServiceNamePattern, "Consul service name `pattern` of a cluster's NameServers; "+ClusterPlaceholder+" is the cluster id")
	fs.DurationVar(&cfg.StaleAfter, "stale-after", DefaultStaleAfter, "serve the last known list, flagged stale, for this `duration` after Consul became unreachable; then 503")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", DefaultIdleTimeout, "stop watching a cluster not requested for this `duration`")
	fs.BoolVar(&cfg.IncludeIPv6, "ipv6", false, "serve IPv6 NameServer addresses, bracketed (default: left out)")
	fs.StringVar(&cfg.Consul.Address, "consul", "", "Consul HTTP `address` (host:port or http(s)://host:port; default $CONSUL_HTTP_ADDR or 127.0.0.1:8500)")
	fs.StringVar(&cfg.Consul.TokenFile, "consul-token-file", "", "`file` holding the Consul ACL token (or set CONSUL_HTTP_TOKEN / CONSUL_HTTP_TOKEN_FILE)")
	fs.StringVar(&cfg.Consul.Datacenter, "consul-datacenter", "", "Consul `datacenter` to query (default: the agent's)")
	fs.StringVar(&cfg.Consul.CAFile, "consul-ca-file", "", "CA certificate `file` for TLS to Consul (or CONSUL_CACERT)")
	fs.StringVar(&cfg.Consul.CertFile, "consul-cert-file", "", "client certificate `file` for TLS to Consul (or CONSUL_CLIENT_CERT)")
	fs.StringVar(&cfg.Consul.KeyFile, "consul-key-file", "", "client key `file` for TLS to Consul (or CONSUL_CLIENT_KEY)")
	fs.StringVar(&cfg.Consul.TLSServerName, "consul-tls-server-name", "", "server `name` expected in Consul's certificate (or CONSUL_TLS_SERVER_NAME)")
	fs.BoolVar(&cfg.Consul.TLSSkipVerify, "consul-tls-skip-verify", false, "do not verify Consul's certificate (tests only)")
	fs.StringVar(&logLevel, "log-level", "info", "log `level`: trace, debug, info, warn, error")
	fs.BoolVar(&logJSON, "log-json", false, "log in JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rmq-driver nsaddr [flags]\n\n"+
			"Serves RocketMQ NameServer address lists from Consul:\n"+
			"  GET /rocketmq/<cluster>  ip:port;ip:port of the cluster's passing NameServers\n"+
			"  GET /rocketmq/nsaddr     the same for -default-cluster\n"+
			"  GET /clusters            JSON view of all clusters\n"+
			"  GET /healthz, /metrics\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "nsaddr: unexpected arguments: %q\n", fs.Args())
		fs.Usage()
		return 2
	}
	level := hclog.LevelFromString(logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(stderr, "nsaddr: invalid -log-level %q\n", logLevel)
		return 2
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "nsaddr", Level: level, Output: stderr, JSONFormat: logJSON})

	srv, err := New(logger, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "nsaddr: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		srv.Close()
		fmt.Fprintf(stderr, "nsaddr: listen on %s: %v\n", cfg.Listen, err)
		return 1
	}
	fmt.Fprintf(stdout, "nsaddr listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil {
		logger.Error("nameserver address endpoint stopped", "error", err)
		return 1
	}
	logger.Info("nameserver address endpoint stopped")
	return 0
}
