package nsaddr

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/clusterid"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultListen             = ":8080"
	DefaultServiceNamePattern = "nameServer" + ClusterPlaceholder
	DefaultStaleAfter         = 5 * time.Minute
	DefaultIdleTimeout        = 10 * time.Minute
	DefaultConsulWaitTime     = time.Minute
	DefaultStartTimeout       = 2 * time.Second
	DefaultReadHeaderTimeout  = 5 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultMaxHeaderBytes     = 8 << 10

	// ClusterPlaceholder is replaced by the cluster id in
	// Config.ServiceNamePattern.
	ClusterPlaceholder = "{{cluster}}"

	// DefaultSubgroup is the subgroup RocketMQ clients ask for when
	// rocketmq.namesrv.domain.subgroup is not set; it maps to
	// Config.DefaultCluster.
	DefaultSubgroup = "nsaddr"
)

// ConsulConfig says how to reach Consul. Empty fields fall back to the
// standard environment variables (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN,
// CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL, CONSUL_CACERT, CONSUL_CAPATH,
// CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME,
// CONSUL_HTTP_SSL_VERIFY), then to http://127.0.0.1:8500 without a token.
type ConsulConfig struct {
	// Address is "host:port", or "http://host:port" / "https://host:port"
	// (the scheme prefix wins over Scheme), or "unix:///path".
	Address string
	// Token is the ACL token; it needs service:read (and node:read) on the
	// NameServer services. It is never logged or served.
	Token string
	// TokenFile is a file holding the ACL token; it wins over Token.
	TokenFile string
	// Scheme is "http" or "https".
	Scheme string
	// CAFile, CAPath, CertFile and KeyFile configure TLS to Consul.
	CAFile   string
	CAPath   string
	CertFile string
	KeyFile  string
	// TLSServerName is the server name checked in Consul's certificate.
	TLSServerName string
	// TLSSkipVerify turns certificate verification off (tests only).
	TLSSkipVerify bool
	// Datacenter to query; empty means the agent's own.
	Datacenter string
}

// Config configures the NameServer address endpoint.
type Config struct {
	// Listen is the address Main and the plugin listen on; Serve takes a
	// listener and ignores it. Default ":8080" (RocketMQ clients append
	// :8080 to a rocketmq.namesrv.domain without a port).
	Listen string
	// DefaultCluster is the cluster served for the default subgroup
	// "nsaddr" (GET /rocketmq/nsaddr). Empty: that path answers 404.
	DefaultCluster string
	// ServiceNamePattern names a cluster's NameServer service in Consul: it
	// must contain "{{cluster}}" exactly once, which is replaced by the
	// cluster id. Default "nameServer{{cluster}}", as in the seed's jobs.
	// Only letters, digits, '-', '_' and '.' may surround the placeholder.
	ServiceNamePattern string
	// StaleAfter bounds how long the last known good list is served
	// (flagged stale) after Consul became unreachable; after that the
	// answer is 503. Default 5m.
	StaleAfter time.Duration
	// IdleTimeout stops a cluster's Consul watcher when its list has not
	// been requested for this long. Default 10m (clients poll every 2m).
	IdleTimeout time.Duration
	// IncludeIPv6 serves IPv6 NameServer addresses, bracketed
	// ("[2001:db8::1]:9876"). Off by default: those are left out (and
	// logged), because older RocketMQ clients split entries on ':'.
	IncludeIPv6 bool
	// Consul says how to reach Consul.
	Consul ConsulConfig

	// ConsulWaitTime is the longest a blocking query waits for a change
	// before it is re-issued. Default 1m.
	ConsulWaitTime time.Duration
	// StartTimeout bounds how long the first request for a cluster waits
	// for the first answer from Consul before answering 503. Default 2s
	// (clients time out after 3s).
	StartTimeout time.Duration
	// ReadHeaderTimeout bounds how long a connection may wait for a
	// complete request header, counted from accept or from the previous
	// answer (so it is also the keep-alive idle timeout). Default 5s.
	ReadHeaderTimeout time.Duration
	// WriteTimeout bounds the time from a request's header to its answer
	// being fully written (clients that do not read). Default 10s.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds a request's header. Default 8 KiB.
	MaxHeaderBytes int
}

// withDefaults returns cfg with zero fields set to their defaults, or an
// error naming the first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	setDur := func(d *time.Duration, def time.Duration, name string) error {
		if *d < 0 {
			return fmt.Errorf("invalid %s %s: must not be negative", name, *d)
		}
		if *d == 0 {
			*d = def
		}
		return nil
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.ServiceNamePattern == "" {
		cfg.ServiceNamePattern = DefaultServiceNamePattern
	}
	if _, err := parsePattern(cfg.ServiceNamePattern); err != nil {
		return cfg, err
	}
	if cfg.DefaultCluster != "" && !clusterid.Valid(cfg.DefaultCluster) {
		return cfg, fmt.Errorf("invalid default cluster %q: want %s", cfg.DefaultCluster, clusterid.Rule)
	}
	for _, d := range []struct {
		p    *time.Duration
		def  time.Duration
		name string
	}{
		{&cfg.StaleAfter, DefaultStaleAfter, "stale_after"},
		{&cfg.IdleTimeout, DefaultIdleTimeout, "idle_timeout"},
		{&cfg.ConsulWaitTime, DefaultConsulWaitTime, "consul wait time"},
		{&cfg.StartTimeout, DefaultStartTimeout, "start timeout"},
		{&cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout, "read header timeout"},
		{&cfg.WriteTimeout, DefaultWriteTimeout, "write timeout"},
	} {
		if err := setDur(d.p, d.def, d.name); err != nil {
			return cfg, err
		}
	}
	if cfg.MaxHeaderBytes < 0 {
		return cfg, errors.New("invalid max header bytes: must not be negative")
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	switch cfg.Consul.Scheme {
	case "", "http", "https":
	default:
		return cfg, fmt.Errorf("invalid consul scheme %q: want http or https", cfg.Consul.Scheme)
	}
	return cfg, nil
}

// namePattern maps cluster ids to Consul service names and back.
type namePattern struct{ prefix, suffix string }

func parsePattern(p string) (namePattern, error) {
	i := strings.Index(p, ClusterPlaceholder)
	if i < 0 || strings.Count(p, ClusterPlaceholder) != 1 {
		return namePattern{}, fmt.Errorf("invalid service name pattern %q: must contain %s exactly once", p, ClusterPlaceholder)
	}
	np := namePattern{prefix: p[:i], suffix: p[i+len(ClusterPlaceholder):]}
	for _, part := range []string{np.prefix, np.suffix} {
		for j := 0; j < len(part); j++ {
			if !clusterid.Char(part[j]) {
				return namePattern{}, fmt.Errorf("invalid service name pattern %q: only letters, digits, '-', '_' and '.' may surround %s", p, ClusterPlaceholder)
			}
		}
	}
	return np, nil
}

// service returns the Consul service name of a cluster.
func (np namePattern) service(cluster string) string { return np.prefix + cluster + np.suffix }

// cluster returns the cluster id of a Consul service name, if the name
// matches the pattern.
func (np namePattern) cluster(service string) (string, bool) {
	if len(service) <= len(np.prefix)+len(np.suffix) ||
		!strings.HasPrefix(service, np.prefix) || !strings.HasSuffix(service, np.suffix) {
		return "", false
	}
	id := service[len(np.prefix) : len(service)-len(np.suffix)]
	return id, clusterid.Valid(id)
}
