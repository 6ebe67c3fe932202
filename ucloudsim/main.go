package ucloudsim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// DefaultListen is the address the command listens on without -listen.
const DefaultListen = "127.0.0.1:8790"

// keypairFlag collects repeated -keypair PUBLIC=PRIVATE flags.
type keypairFlag []Keypair

func (k *keypairFlag) String() string { return fmt.Sprintf("%d keypair(s)", len(*k)) }

func (k *keypairFlag) Set(v string) error {
	pub, priv, ok := strings.Cut(v, "=")
	if !ok || pub == "" || priv == "" {
		return errors.New("want PUBLIC_KEY=PRIVATE_KEY")
	}
	*k = append(*k, Keypair{PublicKey: pub, PrivateKey: priv})
	return nil
}

// isLoopback reports whether a listen address only accepts local connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Main runs the simulator as a command until ctx is done: flag parsing,
// logging to stderr, and the line "ucloud-sim listening on URL" on stdout
// once it serves. It returns the process exit code (0 ok, 1 failure, 2 usage).
// cmd/ucloud-sim and `rmq-driver ucloud-sim` both call it.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ucloud-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", DefaultListen, "`address` to listen on (\"127.0.0.1:0\" picks a free port)")
	seedFile := fs.String("seed", "", "seed state `file` (JSON: uhosts, eips, ulbs, keypairs); empty account if unset")
	faultsFile := fs.String("faults", "", "fault configuration `file` (JSON), changeable later with PUT /_sim/faults")
	seedRandom := fs.Int64("seed-random", 1, "seed `N` of every random choice (fault dice, generated ids)")
	logLevel := fs.String("log-level", "info", "log `level`: trace, debug, info, warn, error")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	allowRemote := fs.Bool("allow-non-loopback", false, "allow a -listen address other than loopback (the admin API has no authentication)")
	logLimit := fs.Int("request-log-limit", 10000, "requests kept in the request log (negative: none)")
	var keypairs keypairFlag
	fs.Var(&keypairs, "keypair", "accept this `PUBLIC=PRIVATE` keypair too (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ucloud-sim [flags]\n\nA local UCloud API simulator (UNet EIP, ULB, UHost, instance metadata).\nSee docs/ucloudsim.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ucloud-sim: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	level := hclog.LevelFromString(*logLevel)
	if level == hclog.NoLevel {
		fmt.Fprintf(stderr, "ucloud-sim: unknown log level %q\n", *logLevel)
		return 2
	}
	if !*allowRemote && !isLoopback(*listen) {
		fmt.Fprintf(stderr, "ucloud-sim: -listen %s is not a loopback address; the admin API has no authentication (use -allow-non-loopback to insist)\n", *listen)
		return 2
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name: "ucloud-sim", Level: level, Output: stderr, JSONFormat: *logJSON,
	})

	state := &State{}
	if *seedFile != "" {
		st, err := LoadState(*seedFile)
		if err != nil {
			logger.Error("cannot load seed state", "file", *seedFile, "error", err)
			return 1
		}
		state = st
	}
	var faults Faults
	if *faultsFile != "" {
		f, err := LoadFaults(*faultsFile)
		if err != nil {
			logger.Error("cannot load faults", "file", *faultsFile, "error", err)
			return 1
		}
		faults = f
	}
	srv, err := New(Config{
		State: state, Keypairs: keypairs, Faults: faults, Seed: *seedRandom,
		Logger: logger, RequestLogLimit: *logLimit,
	})
	if err != nil {
		logger.Error("cannot build simulator", "error", err)
		return 1
	}
	if err := srv.Start(ctx, *listen); err != nil {
		logger.Error("cannot start", "error", err)
		return 1
	}
	fmt.Fprintf(stdout, "ucloud-sim listening on %s\n", srv.URL())

	snap := srv.Snapshot()
	var pubs []string
	for _, k := range snap.Keypairs {
		pubs = append(pubs, k.PublicKey)
	}
	if len(pubs) == 0 {
		logger.Warn("no keypair configured: every API call will be refused with RetCode 172")
	}
	logger.Info("account loaded", "uhosts", len(snap.Hosts), "eips", len(snap.EIPs), "ulbs", len(snap.ULBs),
		"public_keys", strings.Join(pubs, ","), "default_project", snap.ProjectID, "fault_rules", len(faults.Rules))
	for _, h := range snap.Hosts {
		logger.Info("uhost metadata", "uhost_id", h.ID, "private_ip", h.PrivateIP, "metadata_url", srv.MetadataURL(h.ID))
	}

	<-ctx.Done()
	if err := srv.Close(); err != nil {
		logger.Error("close", "error", err)
		return 1
	}
	logger.Info("stopped")
	return 0
}
