package nsaddr

import "github.com/hashicorp/consul/api"

// ServiceName returns the Consul service of a cluster's NameServers under
// pattern (DefaultServiceNamePattern when empty), or why pattern is not
// valid.
func ServiceName(pattern, cluster string) (string, error) {
	if pattern == "" {
		pattern = DefaultServiceNamePattern
	}
	np, err := parsePattern(pattern)
	if err != nil {
		return "", err
	}
	return np.service(cluster), nil
}

// List renders the passing instances of a NameServer service exactly as
// the endpoint serves them ("ip:port;ip:port", sorted, IP addresses only;
// IPv6 only when ipv6 is true), and returns how many instances were left
// out. It is "" when no instance qualifies.
func List(entries []*api.ServiceEntry, ipv6 bool) (string, int) {
	list, excluded := nameServers(entries, ipv6)
	return string(joinList(list)), len(excluded)
}
