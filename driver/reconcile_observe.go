package driver

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// A re-check pass observes every binding of this client in a few calls
// (one DescribeEIP per 20 EIPs, one DescribeVServer per VServer, one Consul
// list of the owner records), decides which bindings are not in place, and
// runs the full reconcile (Verify, under the task's lock) only for those.
// So a converged client costs a handful of calls per interval, whatever
// its number of tasks.

// vserverKey names a VServer of a ULB.
type vserverKey struct{ ULB, VServer string }

// passSnapshot is what one pass read.
type passSnapshot struct {
	eips     map[string]*ucloudapi.EIP
	eipErr   error
	backends map[vserverKey][]ucloudapi.Backend
	vsErr    map[vserverKey]error
	// records: kind + "/" + key -> owner; nil when there is no Consul.
	records map[string]ownership.Owner
	recErr  error
}

// observePass reads the cloud and the owner records for bindings.
func observePass(ctx context.Context, c *cloud, bindings []Binding) passSnapshot {
	s := passSnapshot{backends: map[vserverKey][]ucloudapi.Backend{}, vsErr: map[vserverKey]error{}}
	var ids []string
	vss := map[vserverKey]bool{}
	for _, b := range bindings {
		switch b.Kind {
		case BindingEIP:
			ids = append(ids, b.EIPID)
		case BindingBackend:
			vss[vserverKey{b.ULBID, b.VServerID}] = true
		}
	}
	if len(ids) > 0 {
		sort.Strings(ids)
		s.eips, s.eipErr = c.api.DescribeEIPs(ctx, ids)
	}
	for k := range vss {
		bs, err := c.api.DescribeVServer(ctx, k.ULB, k.VServer)
		s.backends[k], s.vsErr[k] = bs, err
	}
	if c.owners != nil {
		entries, _, err := c.owners.List(ctx)
		s.recErr = err
		s.records = map[string]ownership.Owner{}
		for _, e := range entries {
			s.records[e.Kind+"/"+e.Key] = e.Owner
		}
	}
	return s
}

// inPlace decides, from a pass's snapshot, whether a binding is as it
// should be (known false: the snapshot cannot tell). It is pure.
func inPlace(b Binding, s passSnapshot, now time.Time) (ok, known bool) {
	if s.records != nil || s.recErr != nil {
		if s.recErr != nil {
			return false, false
		}
		kind, key := ownershipKey(&b)
		rec, found := s.records[kind+"/"+key]
		if !found || rec.AllocID != b.Owner.AllocID || rec.Releasing(now) {
			return false, true
		}
		if b.Kind == BindingBackend && rec.Resource == "" {
			return false, true // the backend id is not recorded yet
		}
	}
	switch b.Kind {
	case BindingEIP:
		if s.eipErr != nil {
			return false, false
		}
		e, found := s.eips[b.EIPID]
		return found && e.BoundID == b.UHostID && (e.BoundType == "" || strings.EqualFold(e.BoundType, "uhost")), true
	case BindingBackend:
		k := vserverKey{b.ULBID, b.VServerID}
		if s.vsErr[k] != nil {
			return false, false
		}
		for _, x := range s.backends[k] {
			if x.ResourceID == b.UHostID && x.Port == b.Port {
				return x.Enabled, true
			}
		}
		return false, true
	}
	return false, false
}
