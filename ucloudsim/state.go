package ucloudsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// State is a simulated UCloud account: what a seed file holds, and what
// Snapshot returns. Resources that leave Region or ProjectID empty take the
// top-level Region and ProjectID.
//
// Fields marked "snapshot only" are derived by the simulator; a seed may carry
// them (so a dump can be loaded again) but they are ignored and recomputed.
type State struct {
	// Region is the default region of the resources below.
	Region string `json:"region,omitempty"`
	// ProjectID is the account's default project: the one a request without
	// ProjectId acts in, and the default of the resources below.
	ProjectID string `json:"project_id,omitempty"`
	// Regions and Projects declare more regions and projects than the
	// resources use. When the state knows no region at all, any region is
	// accepted (likewise for projects).
	Regions  []string `json:"regions,omitempty"`
	Projects []string `json:"projects,omitempty"`
	// Keypairs are the API keys the simulator accepts. Private keys never
	// leave the simulator: they are redacted when a State is marshalled, and
	// a keypair whose private key reads REDACTED (from a dump) is ignored.
	Keypairs []Keypair `json:"keypairs,omitempty"`
	Hosts    []Host    `json:"uhosts,omitempty"`
	EIPs     []EIP     `json:"eips,omitempty"`
	ULBs     []ULB     `json:"ulbs,omitempty"`
}

// Keypair is an API keypair. Its private key is never logged, marshalled or
// returned by the admin API.
type Keypair struct {
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key"`
}

const redacted = "REDACTED"

// MarshalJSON writes the keypair with its private key redacted.
func (k Keypair) MarshalJSON() ([]byte, error) {
	type pub struct {
		PublicKey  string `json:"public_key"`
		PrivateKey string `json:"private_key"`
	}
	return json.Marshal(pub{PublicKey: k.PublicKey, PrivateKey: redacted})
}

// String never shows the private key.
func (k Keypair) String() string { return "Keypair{" + k.PublicKey + ", private key redacted}" }

// GoString never shows the private key.
func (k Keypair) GoString() string { return k.String() }

// Host is a UHost instance.
type Host struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Region      string `json:"region,omitempty"`
	Zone        string `json:"zone,omitempty"`
	ProjectID   string `json:"project_id,omitempty"`
	PrivateIP   string `json:"private_ip"`
	PrefixLen   int    `json:"prefix_len,omitempty"` // of the private network, default 16
	MAC         string `json:"mac,omitempty"`
	VPCID       string `json:"vpc_id,omitempty"`
	SubnetID    string `json:"subnet_id,omitempty"`
	State       string `json:"state,omitempty"` // default Running
	CPU         int    `json:"cpu,omitempty"`
	Memory      int    `json:"memory,omitempty"` // MB
	Tag         string `json:"tag,omitempty"`
	Remark      string `json:"remark,omitempty"`
	OSName      string `json:"os_name,omitempty"`
	ImageID     string `json:"image_id,omitempty"`
	MachineType string `json:"machine_type,omitempty"`
	CreateTime  int64  `json:"create_time,omitempty"`
	UserData    string `json:"user_data,omitempty"` // served at .../user-data

	// IPSet is snapshot only: the private IP and every EIP bound to the host.
	IPSet []HostIP `json:"ip_set,omitempty"`
}

// HostIP is one address of a host, as in a snapshot.
type HostIP struct {
	Type      string `json:"type"` // Private, or the EIP's operator (Bgp, International, ...)
	IP        string `json:"ip"`
	EIPID     string `json:"eip_id,omitempty"`
	Bandwidth int    `json:"bandwidth,omitempty"`
}

// EIP is an elastic IP. ResourceType and ResourceID are set while it is bound.
type EIP struct {
	ID           string `json:"id"`
	IP           string `json:"ip"`
	Region       string `json:"region,omitempty"`
	ProjectID    string `json:"project_id,omitempty"`
	Name         string `json:"name,omitempty"`
	Tag          string `json:"tag,omitempty"`
	Remark       string `json:"remark,omitempty"`
	Bandwidth    int    `json:"bandwidth,omitempty"`     // Mbps, default 1
	OperatorName string `json:"operator_name,omitempty"` // default Bgp
	PayMode      string `json:"pay_mode,omitempty"`      // default Bandwidth
	ChargeType   string `json:"charge_type,omitempty"`   // default Month
	CreateTime   int64  `json:"create_time,omitempty"`   // default: when the simulator loads the seed
	// ExpireTime follows ChargeType: one month (Month) or one year (Year)
	// after CreateTime unless set; 0 for Dynamic (billed by the hour).
	ExpireTime   int64  `json:"expire_time,omitempty"`
	ResourceType string `json:"resource_type,omitempty"` // uhost or ulb
	ResourceID   string `json:"resource_id,omitempty"`

	// Status is snapshot only: used or free.
	Status string `json:"status,omitempty"`
}

// ULB is a classic (CLB) load balancer.
type ULB struct {
	ID         string    `json:"id"`
	Name       string    `json:"name,omitempty"`
	Region     string    `json:"region,omitempty"`
	ProjectID  string    `json:"project_id,omitempty"`
	Tag        string    `json:"tag,omitempty"`
	Remark     string    `json:"remark,omitempty"`
	Mode       string    `json:"mode,omitempty"`        // OuterMode (default) or InnerMode
	ListenType string    `json:"listen_type,omitempty"` // default RequestProxy
	PrivateIP  string    `json:"private_ip,omitempty"`  // InnerMode only
	VPCID      string    `json:"vpc_id,omitempty"`
	SubnetID   string    `json:"subnet_id,omitempty"`
	BusinessID string    `json:"business_id,omitempty"`
	ChargeType string    `json:"charge_type,omitempty"` // billing only: DescribeULB does not show it
	CreateTime int64     `json:"create_time,omitempty"` // default: when the simulator loads the seed
	VServers   []VServer `json:"vservers,omitempty"`
}

// VServer is a listener of a ULB.
type VServer struct {
	ID            string `json:"id"`
	Name          string `json:"name,omitempty"`
	Protocol      string `json:"protocol,omitempty"` // default TCP in seeds, HTTP through the API (UCloud's default)
	FrontendPort  int    `json:"frontend_port"`
	ListenType    string `json:"listen_type,omitempty"` // default: the ULB's
	Method        string `json:"method,omitempty"`      // default Roundrobin
	ClientTimeout int    `json:"client_timeout,omitempty"`
	MonitorType   string `json:"monitor_type,omitempty"` // default Port (Ping for a PacketsTransmit UDP VServer)
	// Health check details: Domain and Path for MonitorType Path (Path
	// defaults to "/" there), RequestMsg and ResponseMsg for Customize.
	Domain      string `json:"domain,omitempty"`
	Path        string `json:"path,omitempty"`
	RequestMsg  string `json:"request_msg,omitempty"`
	ResponseMsg string `json:"response_msg,omitempty"`
	// Session persistence: None (default), ServerInsert, or UserDefined with
	// PersistenceInfo holding the user's key.
	PersistenceType   string    `json:"persistence_type,omitempty"`
	PersistenceInfo   string    `json:"persistence_info,omitempty"`
	EnableCompression int       `json:"enable_compression,omitempty"` // 0 or 1
	EnableHTTP2       int       `json:"enable_http2,omitempty"`       // 0 or 1
	ForwardPort       int       `json:"forward_port,omitempty"`       // HTTP redirect port, 0 = off
	Backends          []Backend `json:"backends,omitempty"`
}

// Backend is a real server of a VServer.
type Backend struct {
	ID           string `json:"id"`
	ResourceType string `json:"resource_type,omitempty"` // default UHost
	ResourceID   string `json:"resource_id"`
	Port         int    `json:"port"`
	Disabled     bool   `json:"disabled,omitempty"` // Enabled=0
	Weight       int    `json:"weight,omitempty"`   // default 1
	IsBackup     int    `json:"is_backup,omitempty"`

	// PrivateIP is snapshot only: the host's private IP.
	PrivateIP string `json:"private_ip,omitempty"`
}

// StateSnapshot is a deep copy of the simulated account with the derived
// fields filled in: each host's IPSet, each EIP's Status, each backend's
// PrivateIP. Keypairs carry no private key.
type StateSnapshot = State

// maxStateFile bounds a seed file; a realistic account is a few kilobytes.
const maxStateFile = 16 << 20

// LoadState reads a seed file (JSON, see docs/ucloudsim.md) and checks it.
func LoadState(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed state: %w", err)
	}
	st, err := ParseState(data)
	if err != nil {
		return nil, fmt.Errorf("seed state %s: %w", path, err)
	}
	return st, nil
}

// ParseState decodes and checks a seed state. Unknown fields are errors, so a
// typo in a seed file does not silently give an empty account.
func ParseState(data []byte) (*State, error) {
	if len(data) > maxStateFile {
		return nil, fmt.Errorf("state is %d bytes, more than %d", len(data), maxStateFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st State
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode state: trailing data after the JSON object")
	}
	if err := st.normalize(); err != nil {
		return nil, err
	}
	return &st, nil
}

// normalize fills defaults, drops snapshot-only fields and checks the state's
// consistency. It is idempotent.
func (st *State) normalize() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	// A dump's keypairs carry no private key: they are dropped, and the keys
	// must come from elsewhere (Config.Keypairs, -keypair).
	st.Keypairs = slices.DeleteFunc(st.Keypairs, func(k Keypair) bool { return k.PrivateKey == redacted })
	pubs := map[string]bool{}
	for i, k := range st.Keypairs {
		if k.PublicKey == "" || k.PrivateKey == "" {
			bad("keypairs[%d]: public_key and private_key are required", i)
		}
		if pubs[k.PublicKey] {
			bad("keypairs[%d]: duplicate public key %q", i, k.PublicKey)
		}
		pubs[k.PublicKey] = true
	}

	ids := map[string]string{} // every resource id -> what it is
	claim := func(id, what string) {
		if id == "" {
			bad("%s: id is required", what)
			return
		}
		if prev, dup := ids[id]; dup {
			bad("%s: id %q is already used by %s", what, id, prev)
		}
		ids[id] = what
	}
	scope := func(what string, region, project *string) {
		if *region == "" {
			*region = st.Region
		}
		if *project == "" {
			*project = st.ProjectID
		}
		if *region == "" {
			bad("%s: region is required (set it, or the top-level region)", what)
		}
	}

	hosts := map[string]*Host{}
	privIPs := map[string]string{}
	for i := range st.Hosts {
		h := &st.Hosts[i]
		what := fmt.Sprintf("uhosts[%d] %s", i, h.ID)
		claim(h.ID, what)
		scope(what, &h.Region, &h.ProjectID)
		h.IPSet = nil
		addr, err := netip.ParseAddr(h.PrivateIP)
		if err != nil || !addr.Is4() {
			bad("%s: private_ip %q is not an IPv4 address", what, h.PrivateIP)
		} else if prev, dup := privIPs[h.Region+"/"+h.PrivateIP]; dup {
			bad("%s: private_ip %s is also the address of %s", what, h.PrivateIP, prev)
		} else {
			privIPs[h.Region+"/"+h.PrivateIP] = h.ID
		}
		if h.PrefixLen == 0 {
			h.PrefixLen = 16
		}
		if h.PrefixLen < 1 || h.PrefixLen > 30 {
			bad("%s: prefix_len %d out of range 1-30", what, h.PrefixLen)
		}
		if h.Name == "" {
			h.Name = h.ID
		}
		if h.Zone == "" && h.Region != "" {
			h.Zone = h.Region + "-01"
		}
		if h.State == "" {
			h.State = "Running"
		}
		if h.CPU == 0 {
			h.CPU = 2
		}
		if h.Memory == 0 {
			h.Memory = 4096
		}
		if h.Tag == "" {
			h.Tag = "Default"
		}
		if h.MachineType == "" {
			h.MachineType = "N"
		}
		if h.OSName == "" {
			h.OSName = "Debian 12 64位"
		}
		if h.MAC == "" && addr.Is4() {
			b := addr.As4()
			h.MAC = fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[1], b[2], b[3])
		}
		hosts[h.ID] = h
	}

	ulbs := map[string]*ULB{}
	for i := range st.ULBs {
		lb := &st.ULBs[i]
		what := fmt.Sprintf("ulbs[%d] %s", i, lb.ID)
		claim(lb.ID, what)
		scope(what, &lb.Region, &lb.ProjectID)
		if lb.Name == "" {
			lb.Name = lb.ID
		}
		if lb.Tag == "" {
			lb.Tag = "Default"
		}
		switch lb.Mode {
		case "":
			lb.Mode = "OuterMode"
		case "OuterMode", "InnerMode":
		default:
			bad("%s: mode %q is neither OuterMode nor InnerMode", what, lb.Mode)
		}
		if lb.ListenType == "" {
			lb.ListenType = "RequestProxy"
		}
		ulbs[lb.ID] = lb
		backendIDs := map[string]bool{}
		for j := range lb.VServers {
			vs := &lb.VServers[j]
			vwhat := fmt.Sprintf("%s vservers[%d] %s", what, j, vs.ID)
			claim(vs.ID, vwhat)
			if vs.Name == "" {
				vs.Name = vs.ID
			}
			if vs.Protocol == "" {
				vs.Protocol = "TCP"
			}
			if vs.ListenType == "" {
				vs.ListenType = lb.ListenType
			}
			if vs.Method == "" {
				vs.Method = "Roundrobin"
			}
			if vs.MonitorType == "" {
				vs.MonitorType = defaultMonitor(vs.Protocol, vs.ListenType)
			}
			if vs.ClientTimeout == 0 {
				vs.ClientTimeout = 60
			}
			if vs.PersistenceType == "" {
				vs.PersistenceType = "None"
			}
			if vs.MonitorType == "Path" && vs.Path == "" {
				vs.Path = "/"
			}
			if err := checkVServer(vs); err != nil {
				bad("%s: %s", vwhat, err.Message)
			}
			if vs.FrontendPort < 1 || vs.FrontendPort > 65535 {
				bad("%s: frontend_port %d out of range 1-65535", vwhat, vs.FrontendPort)
			}
			for k := range lb.VServers[:j] {
				o := &lb.VServers[k]
				if o.FrontendPort == vs.FrontendPort && strings.EqualFold(o.Protocol, vs.Protocol) {
					bad("%s: frontend port %d/%s is also used by %s", vwhat, vs.FrontendPort, vs.Protocol, o.ID)
				}
			}
			seen := map[string]string{}
			for k := range vs.Backends {
				be := &vs.Backends[k]
				bwhat := fmt.Sprintf("%s backends[%d] %s", vwhat, k, be.ID)
				if be.ID == "" {
					bad("%s: id is required", bwhat)
				} else if backendIDs[be.ID] {
					bad("%s: backend id %q is already used in this ULB", bwhat, be.ID)
				}
				backendIDs[be.ID] = true
				be.PrivateIP = ""
				if be.ResourceType == "" {
					be.ResourceType = "UHost"
				}
				if be.ResourceType != "UHost" {
					bad("%s: resource_type %q unsupported (only UHost)", bwhat, be.ResourceType)
				}
				if be.Weight == 0 {
					be.Weight = 1
				}
				if be.Port < 1 || be.Port > 65535 {
					bad("%s: port %d out of range 1-65535", bwhat, be.Port)
				}
				h, ok := hosts[be.ResourceID]
				switch {
				case !ok:
					bad("%s: uhost %q does not exist", bwhat, be.ResourceID)
				case h.Region != lb.Region || h.ProjectID != lb.ProjectID:
					bad("%s: uhost %s is in %s/%s, the ULB in %s/%s", bwhat, h.ID, h.Region, h.ProjectID, lb.Region, lb.ProjectID)
				}
				key := fmt.Sprintf("%s:%d", be.ResourceID, be.Port)
				if prev, dup := seen[key]; dup {
					bad("%s: backend %s is a duplicate of %s", bwhat, key, prev)
				}
				seen[key] = be.ID
			}
		}
	}

	eipIPs := map[string]string{}
	for i := range st.EIPs {
		e := &st.EIPs[i]
		what := fmt.Sprintf("eips[%d] %s", i, e.ID)
		claim(e.ID, what)
		scope(what, &e.Region, &e.ProjectID)
		e.Status = ""
		if addr, err := netip.ParseAddr(e.IP); err != nil || !addr.Is4() {
			bad("%s: ip %q is not an IPv4 address", what, e.IP)
		} else if prev, dup := eipIPs[e.IP]; dup {
			bad("%s: ip %s is also the address of %s", what, e.IP, prev)
		}
		eipIPs[e.IP] = e.ID
		if e.Name == "" {
			e.Name = "EIP"
		}
		if e.Tag == "" {
			e.Tag = "Default"
		}
		if e.Bandwidth == 0 {
			e.Bandwidth = 1
		}
		if e.OperatorName == "" {
			e.OperatorName = "Bgp"
		}
		if e.PayMode == "" {
			e.PayMode = "Bandwidth"
		}
		if e.ChargeType == "" {
			e.ChargeType = "Month"
		}
		switch {
		case e.ResourceType == "" && e.ResourceID == "":
		case e.ResourceType == "uhost":
			h, ok := hosts[e.ResourceID]
			if !ok {
				bad("%s: bound to uhost %q, which does not exist", what, e.ResourceID)
			} else if h.Region != e.Region || h.ProjectID != e.ProjectID {
				bad("%s: bound to uhost %s in another region or project", what, h.ID)
			}
		case e.ResourceType == "ulb":
			lb, ok := ulbs[e.ResourceID]
			if !ok {
				bad("%s: bound to ulb %q, which does not exist", what, e.ResourceID)
			} else if lb.Region != e.Region || lb.ProjectID != e.ProjectID {
				bad("%s: bound to ulb %s in another region or project", what, lb.ID)
			}
		default:
			bad("%s: resource_type %q with resource_id %q: both or neither, and the type must be uhost or ulb", what, e.ResourceType, e.ResourceID)
		}
	}
	return errors.Join(errs...)
}

// clone returns a deep copy of the state.
func (st *State) clone() *State {
	c := *st
	c.Regions = append([]string(nil), st.Regions...)
	c.Projects = append([]string(nil), st.Projects...)
	c.Keypairs = append([]Keypair(nil), st.Keypairs...)
	c.Hosts = make([]Host, len(st.Hosts))
	for i, h := range st.Hosts {
		h.IPSet = append([]HostIP(nil), h.IPSet...)
		c.Hosts[i] = h
	}
	c.EIPs = append([]EIP(nil), st.EIPs...)
	c.ULBs = make([]ULB, len(st.ULBs))
	for i, lb := range st.ULBs {
		c.ULBs[i] = *lb.clone()
	}
	return &c
}

func (lb *ULB) clone() *ULB {
	c := *lb
	c.VServers = make([]VServer, len(lb.VServers))
	for i, vs := range lb.VServers {
		vs.Backends = append([]Backend(nil), vs.Backends...)
		c.VServers[i] = vs
	}
	return &c
}

// Host returns the host with the given id, as in a snapshot.
func (st State) Host(id string) (Host, bool) {
	for _, h := range st.Hosts {
		if h.ID == id {
			return h, true
		}
	}
	return Host{}, false
}

// EIP returns the EIP with the given id.
func (st State) EIP(id string) (EIP, bool) {
	for _, e := range st.EIPs {
		if e.ID == id {
			return e, true
		}
	}
	return EIP{}, false
}

// VServer returns a VServer of a ULB, with its backends.
func (st State) VServer(ulbID, vserverID string) (VServer, bool) {
	for _, lb := range st.ULBs {
		if lb.ID != ulbID {
			continue
		}
		for _, vs := range lb.VServers {
			if vs.ID == vserverID {
				return vs, true
			}
		}
	}
	return VServer{}, false
}
