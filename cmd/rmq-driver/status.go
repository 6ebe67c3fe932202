package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/nomadstate"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/status"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

const statusUsage = `Usage: rmq-driver status [flags]

Shows the bindings of every rocketmq cluster (or of -cluster): the Nomad
namespace the cluster belongs to and its jobs (whether each still exists),
each owner record's slot, allocation and Nomad state, host, and
what UCloud says (EIP bound where, backend listed and enabled), with drift,
orphans and what the reconciler will do about each; and the replicas of
replicated broker groups (master or slave, broker id, in the SyncStateSet
or not) as each replica's keeper last recorded them. It changes nothing.

Resources without an owner record are looked for only on the EIPs and
VServers given with -eip-ids and -vservers; the account is never scanned.

UCloud access comes from the environment only: UCLOUD_PUBLIC_KEY,
UCLOUD_PRIVATE_KEY (or -ucloud-private-key-file), UCLOUD_REGION,
UCLOUD_PROJECT_ID, UCLOUD_API_BASE_URL. Without it the cloud columns say
"unknown (no UCloud access)".

Exit status: 0 converged; 1 drift, orphans or collectable records exist;
2 usage error, or something could not be read (stderr says what).

Flags:
`

// statusNomad is what the command asks Nomad; *nomadstate.Client has it.
type statusNomad interface {
	status.Allocs
	JobExists(ctx context.Context, namespace, id string) (bool, error)
}

// statusEnv is the command's surroundings: the environment, and (tests)
// a replacement for the Nomad client built from the flags.
type statusEnv struct {
	getenv func(string) string
	nomad  func(nomadstate.Config) (statusNomad, error)
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// runStatus is `rmq-driver status`: it parses the flags, wires Consul,
// Nomad and UCloud into status.Observe, and prints the report.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer, env statusEnv) int {
	getenv := env.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		asJSON                                bool
		cluster, prefix, servicePattern       string
		consulAddr, consulTokenFile           string
		nomadAddr, nomadTokenFile, ucloudFile string
		eipIDs, vservers                      listFlag
		timeout                               time.Duration
	)
	fs.BoolVar(&asJSON, "json", false, "print a JSON document instead of the table (fields: docs/reference.md)")
	fs.StringVar(&cluster, "cluster", "", "show only this `cluster`")
	fs.StringVar(&prefix, "kv-prefix", ownership.DefaultPrefix, "Consul KV `prefix` of the records (the plugin's consul.kv_prefix)")
	fs.StringVar(&consulAddr, "consul-addr", or(getenv("CONSUL_HTTP_ADDR"), "127.0.0.1:8500"), "Consul HTTP `address` ($CONSUL_HTTP_ADDR when set)")
	fs.StringVar(&consulTokenFile, "consul-token-file", "", "`file` holding the Consul ACL token (else $CONSUL_HTTP_TOKEN)")
	fs.StringVar(&nomadAddr, "nomad-addr", or(getenv("NOMAD_ADDR"), nomadstate.DefaultAddress), "Nomad HTTP API `address` ($NOMAD_ADDR when set)")
	fs.StringVar(&nomadTokenFile, "nomad-token-file", "", "`file` holding the Nomad ACL token (else $NOMAD_TOKEN)")
	fs.StringVar(&ucloudFile, "ucloud-private-key-file", "", "`file` holding the UCloud private key (else $UCLOUD_PRIVATE_KEY)")
	fs.Var(&eipIDs, "eip-ids", "EIP `ids` (comma-separated, repeatable) to check for bindings without an owner record")
	fs.Var(&vservers, "vservers", "`ulb/vserver` pairs (comma-separated, repeatable) to check for backends without an owner record")
	fs.StringVar(&servicePattern, "service-name", "nameServer"+status.ClusterPlaceholder, "Consul service name `pattern` of a cluster's NameServers (\"\": do not show them)")
	fs.DurationVar(&timeout, "timeout", time.Minute, "give up reading after this `duration`")
	fs.Usage = func() {
		fmt.Fprint(stderr, statusUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "status: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q (see rmq-driver status -h)", fs.Args())
	}
	if servicePattern != "" {
		if err := status.CheckPattern(servicePattern); err != nil {
			return usage("-service-name: %v", err)
		}
	}
	var refs []status.VServerRef
	for _, v := range vservers {
		ref, err := status.ParseVServerRef(v)
		if err != nil {
			return usage("-vservers: %v", err)
		}
		refs = append(refs, ref)
	}

	consulToken, err := secret(consulTokenFile, getenv("CONSUL_HTTP_TOKEN"), "consul token")
	if err != nil {
		return usage("%v", err)
	}
	nomadToken, err := secret(nomadTokenFile, getenv("NOMAD_TOKEN"), "nomad token")
	if err != nil {
		return usage("%v", err)
	}
	cloud, err := ucloudFromEnv(getenv, ucloudFile)
	if err != nil {
		return usage("%v", err)
	}
	if cloud == nil && (len(eipIDs) > 0 || len(refs) > 0) {
		return usage("-eip-ids and -vservers need UCloud access (UCLOUD_PUBLIC_KEY, UCLOUD_PRIVATE_KEY, UCLOUD_REGION)")
	}

	ccfg := consulapi.DefaultConfig()
	ccfg.Address, ccfg.Token, ccfg.TokenFile = consulAddr, consulToken, ""
	consul, err := consulapi.NewClient(ccfg)
	if err != nil {
		return usage("consul address %q: %v", consulAddr, err)
	}
	ncfg := nomadstate.Config{Address: nomadAddr, Token: nomadToken}
	newNomad := env.nomad
	if newNomad == nil {
		newNomad = func(c nomadstate.Config) (statusNomad, error) { return nomadstate.New(c) }
	}
	nomad, err := newNomad(ncfg)
	if err != nil {
		return usage("%v", err)
	}

	deps := status.Deps{
		Records: ownership.New(consul, prefix), Keys: status.ConsulKeys{KV: consul.KV()},
		Allocs: nomad, JobExists: nomad.JobExists,
		Replicas: status.ConsulReplicas{KV: consul.KV(), Prefix: prefix},
		Cluster:  cluster, EIPIDs: eipIDs, VServers: refs,
	}
	if cloud != nil {
		deps.Cloud = cloud // only a non-nil client: a nil one would not read as "no access"
	}
	if servicePattern != "" {
		deps.Services = status.ConsulServices{Health: consul.Health(), Pattern: servicePattern}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	snap, err := status.Observe(ctx, deps)
	if err != nil {
		fmt.Fprintf(stderr, "status: read the records from consul at %s: %v\n", consulAddr, err)
		return 2
	}
	rep := status.Decide(snap)
	if asJSON {
		err = status.RenderJSON(stdout, rep)
	} else {
		err = status.Render(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "status: %v\n", err)
		return 2
	}
	reportFailures(stderr, rep.Errors, map[string]string{
		status.SourceNomad:  "nomad at " + nomadAddr + " (-nomad-addr, -nomad-token-file / NOMAD_TOKEN)",
		status.SourceUCloud: "ucloud (UCLOUD_* variables, -ucloud-private-key-file, -eip-ids, -vservers)",
		status.SourceConsul: "consul at " + consulAddr + " (-consul-addr, -consul-token-file / CONSUL_HTTP_TOKEN)",
	})
	return status.ExitCode(rep)
}

// reportFailures tells on stderr, per source, what could not be read.
func reportFailures(stderr io.Writer, fails []status.Failure, where map[string]string) {
	const max = 5
	shown := map[string]int{}
	for _, f := range fails {
		if shown[f.Source] == 0 {
			fmt.Fprintf(stderr, "status: could not read everything from %s:\n", where[f.Source])
		}
		shown[f.Source]++
		if shown[f.Source] <= max {
			fmt.Fprintf(stderr, "  %s\n", f.Message)
		} else if shown[f.Source] == max+1 {
			fmt.Fprintf(stderr, "  ... more in the report\n")
		}
	}
}

// ucloudFromEnv builds the UCloud client from the UCLOUD_* variables and
// the key file; nil (no error) when no key is configured at all.
func ucloudFromEnv(getenv func(string) string, keyFile string) (*ucloudapi.Client, error) {
	priv, err := secret(keyFile, getenv("UCLOUD_PRIVATE_KEY"), "ucloud private key")
	if err != nil {
		return nil, err
	}
	pub := getenv("UCLOUD_PUBLIC_KEY")
	if pub == "" && priv == "" {
		return nil, nil
	}
	var missing []string
	for _, f := range []struct{ name, val string }{
		{"UCLOUD_PUBLIC_KEY", pub}, {"UCLOUD_PRIVATE_KEY (or -ucloud-private-key-file)", priv}, {"UCLOUD_REGION", getenv("UCLOUD_REGION")},
	} {
		if f.val == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ucloud access is half configured: %s not set", strings.Join(missing, ", "))
	}
	api, err := ucloudapi.New(ucloudapi.Config{
		Region: getenv("UCLOUD_REGION"), ProjectID: getenv("UCLOUD_PROJECT_ID"), PublicKey: pub, PrivateKey: priv,
		BaseURL: getenv("UCLOUD_API_BASE_URL"), CallTimeout: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("ucloud access: %w", err)
	}
	return api, nil
}

// secret reads a secret from file (trimmed) if given, else returns
// fallback. Errors name the file, never its content.
func secret(file, fallback, what string) (string, error) {
	if file == "" {
		return fallback, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read %s file: %w", what, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s file %s is empty", what, file)
	}
	return s, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
