package driver

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/nomad/plugins/shared/hclspec"

	"github.com/rmqnomad/rocketmq-nomad-driver/clusterid"
)

// Roles and modes accepted in a task's rocketmq block.
const (
	RoleNameServer = "namesrv"
	RoleBroker     = "broker"
	// RoleController is a RocketMQ controller (DLedger), which elects a
	// broker group's master in controller mode; see docs/replication.md.
	RoleController = "controller"

	ModePublic  = "public"
	ModeTest    = "test"
	ModePrivate = "private"
)

// rocketmqTaskSpec is the task-level `rocketmq { ... }` block, added to the
// docker driver's own task schema.
//
//	rocketmq {
//	  cluster = "orders"
//	  role    = "broker"       # namesrv | broker | controller | proxy
//	  mode    = "public"       # public | test | private (default private)
//	  port    = "rmq"          # network port label the process listens on
//	  advertise_ip = ""        # optional override of the advertised IP
//
//	  # replicated brokers (controller mode), see docs/replication.md:
//	  ha_port     = "ha"                        # port label slaves replicate from
//	  fast_port   = "fast"                      # port label of listenPort-2 (static ports)
//	  controllers = ["10.0.0.1:9878", "..."]    # the controllers' ip:port
//	  min_in_sync_replicas = 2                  # replicas an ack waits for
//	  # controllers:
//	  peers = ["10.0.0.1:9878", "..."]          # every controller, in a fixed order
//
//	  eip {                    # brokers in public/test mode, exactly one of:
//	    id         = "eip-xxx"            # one EIP for every alloc
//	    ids        = ["eip-a", "eip-b"]   # indexed by NOMAD_ALLOC_INDEX
//	    consul_key = true                 # brokerEip/<cluster>/eipId/<index>
//	  }
//	  ulb {                    # name servers and proxies in public/test mode,
//	                           # proxies in private mode (an internal ULB)
//	    ulb_id     = "ulb-xxx"
//	    vserver_id = "vserver-xxx"
//	  }
//	}
//
// Brokers also take the desired-state fields of desired.go.
var rocketmqTaskSpec = hclspec.NewBlock("rocketmq", true, hclspec.NewObject(map[string]*hclspec.Spec{
	"cluster":              hclspec.NewAttr("cluster", "string", true),
	"role":                 hclspec.NewAttr("role", "string", true),
	"mode":                 hclspec.NewDefault(hclspec.NewAttr("mode", "string", false), hclspec.NewLiteral(`"private"`)),
	"port":                 hclspec.NewAttr("port", "string", true),
	"advertise_ip":         hclspec.NewAttr("advertise_ip", "string", false),
	"ha_port":              hclspec.NewAttr("ha_port", "string", false),
	"fast_port":            hclspec.NewAttr("fast_port", "string", false),
	"controllers":          hclspec.NewAttr("controllers", "list(string)", false),
	"min_in_sync_replicas": hclspec.NewAttr("min_in_sync_replicas", "number", false),
	"peers":                hclspec.NewAttr("peers", "list(string)", false),
	"eip": hclspec.NewBlock("eip", false, hclspec.NewObject(map[string]*hclspec.Spec{
		"id":         hclspec.NewAttr("id", "string", false),
		"ids":        hclspec.NewAttr("ids", "list(string)", false),
		"consul_key": hclspec.NewAttr("consul_key", "bool", false),
	})),
	"ulb": hclspec.NewBlock("ulb", false, hclspec.NewObject(map[string]*hclspec.Spec{
		"ulb_id":     hclspec.NewAttr("ulb_id", "string", true),
		"vserver_id": hclspec.NewAttr("vserver_id", "string", true),
	})),
}))

// TaskConfig is our part of a task's driver config. The rest of the config is
// the docker driver's and is decoded by it.
type TaskConfig struct {
	RocketMQ RocketMQConfig `codec:"rocketmq"`
}

// RocketMQConfig is the decoded `rocketmq` block.
type RocketMQConfig struct {
	BrokerDesired
	Cluster     string     `codec:"cluster"`
	Role        string     `codec:"role"`
	Mode        string     `codec:"mode"`
	Port        string     `codec:"port"`
	AdvertiseIP string     `codec:"advertise_ip"`
	EIP         *EIPConfig `codec:"eip"`
	ULB         *ULBConfig `codec:"ulb"`
	// HAPort is the port label a broker's slaves replicate from
	// (haListenPort, advertised as brokerIP2:port).
	HAPort string `codec:"ha_port"`
	// FastPort is the port label of the broker's fast (VIP) channel,
	// which RocketMQ always serves at listenPort-2 and which slaves read
	// the master's topics from.
	FastPort string `codec:"fast_port"`
	// Controllers are the controllers' ip:port; set, the broker runs in
	// controller mode (replicated, automatic failover).
	Controllers []string `codec:"controllers"`
	// MinInSyncReplicas is how many replicas (the master included) must
	// hold a message before it is acknowledged; 0 means the default, 2.
	MinInSyncReplicas int `codec:"min_in_sync_replicas"`
	// Peers are every controller's ip:port, in the same order on every
	// controller; a controller finds its own id by its address.
	Peers []string `codec:"peers"`
}

// EIPConfig chooses the EIP a broker allocation binds.
type EIPConfig struct {
	ID        string   `codec:"id"`
	IDs       []string `codec:"ids"`
	ConsulKey bool     `codec:"consul_key"`
}

// ULBConfig names the VServer a name server registers with.
type ULBConfig struct {
	ULBID     string `codec:"ulb_id"`
	VServerID string `codec:"vserver_id"`
}

// PublicFacing reports whether the mode exposes the task through UCloud
// (EIP or ULB) rather than through host private IPs.
func (c *RocketMQConfig) PublicFacing() bool {
	return c.Mode == ModePublic || c.Mode == ModeTest
}

// Validate checks the block on its own; every message names the field and
// says how to fix it.
func (c *RocketMQConfig) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	errs = append(errs, c.validateDesired()...)

	if strings.TrimSpace(c.Cluster) == "" {
		add(`rocketmq.cluster: must not be empty; set it to the RocketMQ cluster id, e.g. cluster = "orders"`)
	} else if !clusterid.Valid(c.Cluster) {
		add(`rocketmq.cluster: %q is not a valid cluster id: want %s`, c.Cluster, clusterid.Rule)
	}
	switch c.Role {
	case RoleNameServer, RoleBroker, RoleController, RoleProxy:
	default:
		add(`rocketmq.role: %q is not a role; set role = "namesrv", "broker", "controller" or "proxy"`, c.Role)
	}
	switch c.Mode {
	case ModePublic, ModeTest, ModePrivate:
	default:
		add(`rocketmq.mode: %q is not a mode; set mode = "public", "test" or "private"`, c.Mode)
	}
	if strings.TrimSpace(c.Port) == "" {
		add(`rocketmq.port: must name a port label of the task group's network block, e.g. port = "rmq"`)
	}
	if c.AdvertiseIP != "" && net.ParseIP(c.AdvertiseIP) == nil {
		add(`rocketmq.advertise_ip: %q is not an IP address; RocketMQ clients reject host names`, c.AdvertiseIP)
	}
	if c.EIP != nil {
		n := 0
		if c.EIP.ID != "" {
			n++
		}
		if len(c.EIP.IDs) > 0 {
			n++
		}
		if c.EIP.ConsulKey {
			n++
		}
		if n != 1 {
			add(`rocketmq.eip: set exactly one of id, ids or consul_key = true`)
		}
		for i, id := range c.EIP.IDs {
			if strings.TrimSpace(id) == "" {
				add(`rocketmq.eip.ids[%d]: must not be empty`, i)
			}
		}
		if c.Role == RoleNameServer {
			add(`rocketmq.eip: only brokers bind an EIP; name servers use a ulb block`)
		}
		// A proxy's eip block is refused by validateProxy.
	}
	if c.ULB != nil {
		if c.ULB.ULBID == "" {
			add(`rocketmq.ulb.ulb_id: must not be empty`)
		}
		if c.ULB.VServerID == "" {
			add(`rocketmq.ulb.vserver_id: must not be empty`)
		}
		if c.Role == RoleBroker {
			add(`rocketmq.ulb: only name servers and proxies register with a ULB; brokers use an eip block`)
		}
	}
	if c.PublicFacing() {
		if c.Role == RoleBroker && c.EIP == nil {
			add(`rocketmq.eip: a broker in %s mode needs an eip block saying which EIP to bind (or use mode = "private")`, c.Mode)
		}
		if c.Role == RoleNameServer && c.ULB == nil {
			add(`rocketmq.ulb: a name server in %s mode needs a ulb block with ulb_id and vserver_id (or use mode = "private")`, c.Mode)
		}
	} else if c.Mode == ModePrivate {
		if c.EIP != nil {
			add(`rocketmq.eip: private mode uses no public IPs; remove the eip block or set mode = "public"`)
		}
		if c.ULB != nil && c.Role != RoleProxy {
			add(`rocketmq.ulb: private mode uses no ULB; remove the ulb block or set mode = "public"`)
		}
	}
	errs = append(errs, c.validateReplication()...)
	errs = append(errs, c.validateProxy()...)
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid rocketmq block: %s", strings.Join(errs, "; "))
}

// pluginConfigSpec returns the schema of `plugin "rmq-driver" { config { ... } }`.
// dockerSpec is the docker driver's own plugin schema, nested as `docker { }`.
func pluginConfigSpec(dockerSpec *hclspec.Spec) *hclspec.Spec {
	return hclspec.NewObject(map[string]*hclspec.Spec{
		"docker": hclspec.NewBlock("docker", false, dockerSpec),
		"ucloud": hclspec.NewBlock("ucloud", false, hclspec.NewObject(map[string]*hclspec.Spec{
			"region":            hclspec.NewAttr("region", "string", false),
			"project_id":        hclspec.NewAttr("project_id", "string", false),
			"public_key":        hclspec.NewAttr("public_key", "string", false),
			"private_key":       hclspec.NewAttr("private_key", "string", false),
			"public_key_file":   hclspec.NewAttr("public_key_file", "string", false),
			"private_key_file":  hclspec.NewAttr("private_key_file", "string", false),
			"base_url":          hclspec.NewAttr("base_url", "string", false),
			"metadata_endpoint": hclspec.NewAttr("metadata_endpoint", "string", false),
			"uhost_id":          hclspec.NewAttr("uhost_id", "string", false),
			"private_ip":        hclspec.NewAttr("private_ip", "string", false),
			"call_timeout":      hclspec.NewAttr("call_timeout", "string", false),
			"bind_timeout":      hclspec.NewAttr("bind_timeout", "string", false),
			"max_attempts":      hclspec.NewAttr("max_attempts", "number", false),
			"allowed_eip_ids":   hclspec.NewAttr("allowed_eip_ids", "list(string)", false),
			"allowed_ulb_ids":   hclspec.NewAttr("allowed_ulb_ids", "list(string)", false),
			"tenant": hclspec.NewBlockMap("tenant", []string{"namespace"}, hclspec.NewObject(map[string]*hclspec.Spec{
				"allowed_eip_ids": hclspec.NewAttr("allowed_eip_ids", "list(string)", false),
				"allowed_ulb_ids": hclspec.NewAttr("allowed_ulb_ids", "list(string)", false),
				"clusters":        hclspec.NewAttr("clusters", "list(string)", false),
			})),
			"eip_remark_prefix": hclspec.NewAttr("eip_remark_prefix", "string", false),
		})),
		"consul": hclspec.NewBlock("consul", false, hclspec.NewObject(map[string]*hclspec.Spec{
			"address":    hclspec.NewAttr("address", "string", false),
			"token":      hclspec.NewAttr("token", "string", false),
			"scheme":     hclspec.NewAttr("scheme", "string", false),
			"datacenter": hclspec.NewAttr("datacenter", "string", false),
			"ca_file":    hclspec.NewAttr("ca_file", "string", false),
			"cert_file":  hclspec.NewAttr("cert_file", "string", false),
			"key_file":   hclspec.NewAttr("key_file", "string", false),
			"token_file": hclspec.NewAttr("token_file", "string", false),
			"kv_prefix":  hclspec.NewAttr("kv_prefix", "string", false),
		})),
		"nsaddr": hclspec.NewBlock("nsaddr", false, hclspec.NewObject(map[string]*hclspec.Spec{
			"enabled":         hclspec.NewAttr("enabled", "bool", false),
			"listen":          hclspec.NewAttr("listen", "string", false),
			"default_cluster": hclspec.NewAttr("default_cluster", "string", false),
			"service_name":    hclspec.NewAttr("service_name", "string", false),
			"stale_after":     hclspec.NewAttr("stale_after", "string", false),
			"idle_timeout":    hclspec.NewAttr("idle_timeout", "string", false),
			"ipv6":            hclspec.NewAttr("ipv6", "bool", false),
		})),
		"nomad": hclspec.NewBlock("nomad", false, hclspec.NewObject(map[string]*hclspec.Spec{
			"address":    hclspec.NewAttr("address", "string", false),
			"token_file": hclspec.NewAttr("token_file", "string", false),
		})),
		"reconcile_interval": hclspec.NewAttr("reconcile_interval", "string", false),
		"collect_interval":   hclspec.NewAttr("collect_interval", "string", false),
		"metrics_listen":     hclspec.NewAttr("metrics_listen", "string", false),
	})
}

// PluginConfig is our decoded plugin config, without the docker block which
// is handed to the docker driver as it is.
type PluginConfig struct {
	UCloud *UCloudConfig `codec:"ucloud"`
	Consul *ConsulConfig `codec:"consul"`
	NSAddr *NSAddrConfig `codec:"nsaddr"`
	Nomad  *NomadConfig  `codec:"nomad"`
	// ReconcileInterval is how often the bindings of this client's tasks
	// are re-checked and repaired; CollectInterval how often the elected
	// collector looks for bindings of gone owners ("0" turns it off).
	ReconcileInterval string `codec:"reconcile_interval"`
	CollectInterval   string `codec:"collect_interval"`
	MetricsListen     string `codec:"metrics_listen"`
}

// NomadConfig is the `nomad` block: the Nomad HTTP API the driver asks
// whether an allocation has ended (default: NOMAD_ADDR, else the local
// agent at http://127.0.0.1:4646). The ACL token is read from token_file
// or NOMAD_TOKEN, never inline.
type NomadConfig struct {
	Address   string `codec:"address"`
	TokenFile string `codec:"token_file"`
}

// UCloudConfig is the `ucloud` block. PrivateKey is a secret: it must never
// be logged, put in an event, an attribute or an error. The *File fields name
// files holding the keys; resolveSecrets reads them at SetConfig.
type UCloudConfig struct {
	Region           string   `codec:"region"`
	ProjectID        string   `codec:"project_id"`
	PublicKey        string   `codec:"public_key"`
	PrivateKey       string   `codec:"private_key"`
	PublicKeyFile    string   `codec:"public_key_file"`
	PrivateKeyFile   string   `codec:"private_key_file"`
	BaseURL          string   `codec:"base_url"`
	MetadataEndpoint string   `codec:"metadata_endpoint"`
	UHostID          string   `codec:"uhost_id"`
	PrivateIP        string   `codec:"private_ip"`
	CallTimeout      string   `codec:"call_timeout"`
	BindTimeout      string   `codec:"bind_timeout"`
	MaxAttempts      int      `codec:"max_attempts"`
	AllowedEIPIDs    []string `codec:"allowed_eip_ids"`
	AllowedULBIDs    []string `codec:"allowed_ulb_ids"`
	EIPRemarkPrefix  string   `codec:"eip_remark_prefix"`
	// Tenants are per-namespace allow-lists (`tenant "<namespace>" {}`):
	// when any is set, a public-mode task may use only its namespace's
	// EIPs, ULBs and cluster ids.
	Tenants map[string]TenantGuard `codec:"tenant"`
}

// ConsulConfig is the `consul` block. Token is a secret.
type ConsulConfig struct {
	Address    string `codec:"address"`
	Token      string `codec:"token"`
	Scheme     string `codec:"scheme"`
	Datacenter string `codec:"datacenter"`
	CAFile     string `codec:"ca_file"`
	CertFile   string `codec:"cert_file"`
	KeyFile    string `codec:"key_file"`
	TokenFile  string `codec:"token_file"`
	KVPrefix   string `codec:"kv_prefix"`
}

// NSAddrConfig is the `nsaddr` block: the built-in NameServer address
// endpoint.
type NSAddrConfig struct {
	Enabled        bool   `codec:"enabled"`
	Listen         string `codec:"listen"`
	DefaultCluster string `codec:"default_cluster"`
	ServiceName    string `codec:"service_name"`
	StaleAfter     string `codec:"stale_after"`
	IdleTimeout    string `codec:"idle_timeout"`
	IPv6           bool   `codec:"ipv6"`
}

// reaperConfig is our own dangling-container reaper's settings, read from
// the docker block's gc.dangling_containers. Unlike docker's reaper it only
// removes containers carrying our driver label.
type reaperConfig struct {
	Enabled       bool
	Period        time.Duration
	CreationGrace time.Duration
	DryRun        bool
}

// minCreationGrace bounds how young a container our reaper may remove: a
// container between docker's create and the driver tracking it must never be
// taken for dangling.
const minCreationGrace = 5 * time.Second

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
