package nsaddr

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/hashicorp/consul/api"
)

// Exclusion is a passing service instance left out of a cluster's list, and
// why.
type Exclusion struct {
	Node      string `json:"node"`
	ServiceID string `json:"service_id"`
	Address   string `json:"address"`
	Port      int    `json:"port"`
	Reason    string `json:"reason"`
}

// Reasons an instance is left out.
const (
	reasonNotIP  = "address is not an IP address (RocketMQ clients reject host names)"
	reasonIPv6   = "IPv6 address and IPv6 is not enabled"
	reasonZone   = "IPv6 address with a zone"
	reasonPort   = "port out of range 1-65535"
	reasonNoAddr = "no address"
)

// nameServers turns the passing instances of a NameServer service into the
// list served to clients: each instance's Service.Address (Node.Address when
// empty) and Service.Port, IP addresses only, sorted by address then port,
// without duplicates. IPv4-mapped IPv6 addresses count as IPv4. IPv6
// addresses are kept, bracketed, only when ipv6 is true. It also returns the
// instances it left out.
func nameServers(entries []*api.ServiceEntry, ipv6 bool) ([]netip.AddrPort, []Exclusion) {
	list := make([]netip.AddrPort, 0, len(entries))
	var excluded []Exclusion
	for _, e := range entries {
		if e == nil || e.Service == nil {
			continue
		}
		addr := e.Service.Address
		node := ""
		if e.Node != nil {
			node = e.Node.Node
			if addr == "" {
				addr = e.Node.Address
			}
		}
		exclude := func(reason string) {
			excluded = append(excluded, Exclusion{Node: node, ServiceID: e.Service.ID, Address: addr, Port: e.Service.Port, Reason: reason})
		}
		if addr == "" {
			exclude(reasonNoAddr)
			continue
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			exclude(reasonNotIP)
			continue
		}
		ip = ip.Unmap()
		if ip.Zone() != "" {
			exclude(reasonZone)
			continue
		}
		if ip.Is6() && !ipv6 {
			exclude(reasonIPv6)
			continue
		}
		if e.Service.Port < 1 || e.Service.Port > 65535 {
			exclude(reasonPort)
			continue
		}
		list = append(list, netip.AddrPortFrom(ip, uint16(e.Service.Port)))
	}
	slices.SortFunc(list, func(a, b netip.AddrPort) int { return a.Compare(b) })
	list = slices.Compact(list)
	return list, excluded
}

// joinList renders the list as RocketMQ clients read it: "ip:port;ip:port",
// one line, no spaces, no trailing newline.
func joinList(list []netip.AddrPort) []byte {
	b := make([]byte, 0, len(list)*22)
	for i, ap := range list {
		if i > 0 {
			b = append(b, ';')
		}
		b = ap.AppendTo(b)
	}
	return b
}

// listStrings returns the entries as strings (for the JSON view).
func listStrings(list []netip.AddrPort) []string {
	s := make([]string, len(list))
	for i, ap := range list {
		s[i] = ap.String()
	}
	return s
}

// exclusionKey identifies an exclusion for log-once bookkeeping.
func exclusionKey(x Exclusion) string {
	return x.Node + "\x00" + x.ServiceID + "\x00" + x.Address + "\x00" + strconv.Itoa(x.Port) + "\x00" + x.Reason
}
