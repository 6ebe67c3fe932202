package ucloudsim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// world is the live, mutable account. It is only touched with Server.mu held.
type world struct {
	defRegion, defProject string
	regions, projects     map[string]bool
	keys                  map[string]string // public key -> private key

	hosts    []*Host
	hostByID map[string]*Host
	eips     []*EIP
	eipByID  map[string]*EIP
	ulbs     []*ULB
	ulbByID  map[string]*ULB

	usedIDs map[string]bool // every id ever handed out or seeded, never reused
	usedIPs map[string]bool // every EIP address in use
	ids     *rand.Rand      // id generation, seeded apart from the fault dice
}

// newWorld builds the live account from a seed. Seeded resources without a
// create time were created at loaded; seeded EIPs without an expire time
// are renewed to the end of the billing period that holds loaded (an EIP
// still in the account has been paid for up to now).
func newWorld(seed *State, extraKeys []Keypair, idSeed uint64, loaded time.Time) (*world, error) {
	st := seed.clone()
	if err := st.normalize(); err != nil {
		return nil, fmt.Errorf("seed state: %w", err)
	}
	w := &world{
		defRegion:  st.Region,
		defProject: st.ProjectID,
		regions:    map[string]bool{},
		projects:   map[string]bool{},
		keys:       map[string]string{},
		hostByID:   map[string]*Host{},
		eipByID:    map[string]*EIP{},
		ulbByID:    map[string]*ULB{},
		usedIDs:    map[string]bool{},
		usedIPs:    map[string]bool{},
		ids:        rand.New(rand.NewPCG(idSeed, 0x5eed1d5)),
	}
	addScope := func(region, project string) {
		if region != "" {
			w.regions[region] = true
		}
		if project != "" {
			w.projects[project] = true
		}
	}
	addScope(st.Region, st.ProjectID)
	for _, r := range st.Regions {
		addScope(r, "")
	}
	for _, p := range st.Projects {
		addScope("", p)
	}
	for _, k := range append(slices.Clone(st.Keypairs), extraKeys...) {
		if k.PublicKey == "" || k.PrivateKey == "" {
			return nil, fmt.Errorf("keypair %s: public and private key are required", k.PublicKey)
		}
		w.keys[k.PublicKey] = k.PrivateKey
	}
	for i := range st.Hosts {
		h := st.Hosts[i]
		if h.CreateTime == 0 {
			h.CreateTime = loaded.Unix()
		}
		w.hosts = append(w.hosts, &h)
		w.hostByID[h.ID] = &h
		w.usedIDs[h.ID] = true
		addScope(h.Region, h.ProjectID)
	}
	for i := range st.EIPs {
		e := st.EIPs[i]
		if e.CreateTime == 0 {
			e.CreateTime = loaded.Unix()
		}
		if e.ExpireTime == 0 {
			e.ExpireTime = currentPeriodEnd(time.Unix(e.CreateTime, 0), e.ChargeType, loaded)
		}
		w.eips = append(w.eips, &e)
		w.eipByID[e.ID] = &e
		w.usedIDs[e.ID] = true
		w.usedIPs[e.IP] = true
		addScope(e.Region, e.ProjectID)
	}
	for i := range st.ULBs {
		lb := st.ULBs[i].clone()
		if lb.CreateTime == 0 {
			lb.CreateTime = loaded.Unix()
		}
		w.ulbs = append(w.ulbs, lb)
		w.ulbByID[lb.ID] = lb
		w.usedIDs[lb.ID] = true
		for _, vs := range lb.VServers {
			w.usedIDs[vs.ID] = true
			for _, be := range vs.Backends {
				w.usedIDs[be.ID] = true
			}
		}
		addScope(lb.Region, lb.ProjectID)
	}
	return w, nil
}

// newID returns a fresh UCloud-looking id ("eip-k3j9x0ab").
func (w *world) newID(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for {
		b := make([]byte, 8)
		for i := range b {
			b[i] = alphabet[w.ids.IntN(len(alphabet))]
		}
		id := prefix + "-" + string(b)
		if !w.usedIDs[id] {
			w.usedIDs[id] = true
			return id
		}
	}
}

// eipPools are the documentation ranges (RFC 5737): simulated EIPs must never
// be addresses someone could actually reach.
func eipPools() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("192.0.2.0/24"),
	}
}

// newEIPAddr returns the lowest free address of the pools.
func (w *world) newEIPAddr() (string, bool) {
	for _, p := range eipPools() {
		for a := p.Addr().Next(); p.Contains(a); a = a.Next() {
			if b := a.As4(); b[3] == 255 || b[3] == 0 {
				continue
			}
			if s := a.String(); !w.usedIPs[s] {
				w.usedIPs[s] = true
				return s, true
			}
		}
	}
	return "", false
}

func (w *world) host(id, region, project string) *Host {
	h := w.hostByID[id]
	if h == nil || h.Region != region || h.ProjectID != project {
		return nil
	}
	return h
}

func (w *world) eip(id, region, project string) *EIP {
	e := w.eipByID[id]
	if e == nil || e.Region != region || e.ProjectID != project {
		return nil
	}
	return e
}

func (w *world) ulb(id, region, project string) *ULB {
	lb := w.ulbByID[id]
	if lb == nil || lb.Region != region || lb.ProjectID != project {
		return nil
	}
	return lb
}

// eipsOf lists the EIPs bound to a resource, in creation order.
func (w *world) eipsOf(resourceType, id string) []*EIP {
	var out []*EIP
	for _, e := range w.eips {
		if e.ResourceType == resourceType && e.ResourceID == id {
			out = append(out, e)
		}
	}
	return out
}

func (w *world) removeEIP(e *EIP) {
	delete(w.eipByID, e.ID)
	delete(w.usedIPs, e.IP)
	w.eips = slices.DeleteFunc(w.eips, func(x *EIP) bool { return x == e })
}

func vserverOf(lb *ULB, id string) *VServer {
	for i := range lb.VServers {
		if lb.VServers[i].ID == id {
			return &lb.VServers[i]
		}
	}
	return nil
}

// backendOf finds a backend of the ULB and the VServer it belongs to.
func backendOf(lb *ULB, id string) (*VServer, int) {
	for i := range lb.VServers {
		for j := range lb.VServers[i].Backends {
			if lb.VServers[i].Backends[j].ID == id {
				return &lb.VServers[i], j
			}
		}
	}
	return nil, -1
}

func backendCount(lb *ULB) int {
	n := 0
	for _, vs := range lb.VServers {
		n += len(vs.Backends)
	}
	return n
}

// snapshot renders the world as a State with derived fields and no secrets.
func (w *world) snapshot() *State {
	st := &State{Region: w.defRegion, ProjectID: w.defProject}
	for r := range w.regions {
		st.Regions = append(st.Regions, r)
	}
	for p := range w.projects {
		st.Projects = append(st.Projects, p)
	}
	slices.Sort(st.Regions)
	slices.Sort(st.Projects)
	for pub := range w.keys {
		st.Keypairs = append(st.Keypairs, Keypair{PublicKey: pub})
	}
	slices.SortFunc(st.Keypairs, func(a, b Keypair) int {
		if a.PublicKey < b.PublicKey {
			return -1
		}
		if a.PublicKey > b.PublicKey {
			return 1
		}
		return 0
	})
	for _, h := range w.hosts {
		c := *h
		c.IPSet = []HostIP{{Type: "Private", IP: h.PrivateIP}}
		for _, e := range w.eipsOf("uhost", h.ID) {
			c.IPSet = append(c.IPSet, HostIP{Type: e.OperatorName, IP: e.IP, EIPID: e.ID, Bandwidth: e.Bandwidth})
		}
		st.Hosts = append(st.Hosts, c)
	}
	for _, e := range w.eips {
		c := *e
		c.Status = eipStatus(e)
		st.EIPs = append(st.EIPs, c)
	}
	for _, lb := range w.ulbs {
		c := lb.clone()
		for i := range c.VServers {
			for j := range c.VServers[i].Backends {
				be := &c.VServers[i].Backends[j]
				if h := w.hostByID[be.ResourceID]; h != nil {
					be.PrivateIP = h.PrivateIP
				}
			}
		}
		st.ULBs = append(st.ULBs, *c)
	}
	return st
}

func eipStatus(e *EIP) string {
	if e.ResourceID != "" {
		return "used"
	}
	return "free"
}
