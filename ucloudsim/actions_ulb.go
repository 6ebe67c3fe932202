package ucloudsim

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ucloud/ucloud-sdk-go/services/ulb"
)

func errULBNotFound(id string) *apiError {
	return errf(RetCodeULBNotFound, "ULB [%s] not exists", id)
}

func errVServerNotFound(id string) *apiError {
	return errf(RetCodeULBNotFound, "VServer [%s] not exists", id)
}

func errBackendNotFound(id string) *apiError {
	return errf(RetCodeULBNotFound, "Backend [%s] not exists", id)
}

// innerIP picks the lowest free address of 10.254.0.0/16 for an InnerMode ULB.
func (w *world) innerIP() string {
	used := map[string]bool{}
	for _, lb := range w.ulbs {
		used[lb.PrivateIP] = true
	}
	p := netip.MustParsePrefix("10.254.0.0/16")
	for a := p.Addr().Next().Next(); p.Contains(a); a = a.Next() {
		if !used[a.String()] {
			return a.String()
		}
	}
	return ""
}

func (s *Server) createULB(c *call) (map[string]any, *apiError) {
	inner := strings.EqualFold(c.str("InnerMode"), "Yes")
	if inner && strings.EqualFold(c.str("OuterMode"), "Yes") {
		return nil, errParamWhy("InnerMode", "InnerMode and OuterMode exclude each other")
	}
	listen := "RequestProxy"
	if inner {
		listen = "PacketsTransmit"
	}
	if v := c.str("ListenType"); v != "" {
		var ok bool
		if listen, ok = canonical(v, "RequestProxy", "PacketsTransmit"); !ok {
			return nil, errParamWhy("ListenType", "one of RequestProxy, PacketsTransmit")
		}
	}
	charge := ""
	if v := c.str("ChargeType"); v != "" {
		var ok bool
		if charge, ok = canonical(v, "Year", "Month", "Dynamic"); !ok {
			return nil, errParamWhy("ChargeType", "one of Year, Month, Dynamic")
		}
	}
	lb := &ULB{
		ID: s.w.newID("ulb"), Name: c.str("ULBName"), Region: c.region, ProjectID: c.project,
		Tag: c.str("Tag"), Remark: c.str("Remark"), Mode: "OuterMode", ListenType: listen,
		VPCID: c.str("VPCId"), SubnetID: c.str("SubnetId"), BusinessID: c.str("BusinessId"),
		ChargeType: charge, CreateTime: s.now().Unix(),
	}
	if lb.Name == "" {
		lb.Name = "ULB"
	}
	if lb.Tag == "" {
		lb.Tag = "Default"
	}
	if inner {
		lb.Mode = "InnerMode"
		lb.PrivateIP = s.w.innerIP()
	}
	s.w.ulbs = append(s.w.ulbs, lb)
	s.w.ulbByID[lb.ID] = lb
	s.logger.Info("ulb created", "ulb_id", lb.ID, "mode", lb.Mode, "region", lb.Region, "project", lb.ProjectID)
	return map[string]any{"ULBId": lb.ID, "IPv6AddressId": ""}, nil
}

// duplicateBackend finds another backend of the VServer on the same host and port.
func duplicateBackend(vs *VServer, hostID string, port int, except string) *Backend {
	for i := range vs.Backends {
		be := &vs.Backends[i]
		if be.ID != except && be.ResourceID == hostID && be.Port == port {
			return be
		}
	}
	return nil
}

func (s *Server) allocateBackend(c *call) (map[string]any, *apiError) {
	ulbID, aerr := c.required("ULBId")
	if aerr != nil {
		return nil, aerr
	}
	vsID, aerr := c.required("VServerId")
	if aerr != nil {
		return nil, aerr
	}
	rtype, aerr := c.required("ResourceType")
	if aerr != nil {
		return nil, aerr
	}
	if rtype != "UHost" {
		return nil, errParamWhy("ResourceType", "the simulator has UHost backends only")
	}
	rid, aerr := c.required("ResourceId")
	if aerr != nil {
		return nil, aerr
	}
	port, aerr := c.integer("Port", 80, 1, 65535)
	if aerr != nil {
		return nil, aerr
	}
	enabled, aerr := c.integer("Enabled", 1, 0, 1)
	if aerr != nil {
		return nil, aerr
	}
	weight, aerr := c.integer("Weight", 1, 1, 100)
	if aerr != nil {
		return nil, aerr
	}
	backup, aerr := c.integer("IsBackup", 0, 0, 1)
	if aerr != nil {
		return nil, aerr
	}
	lb := s.w.ulb(ulbID, c.region, c.project)
	if lb == nil {
		return nil, errULBNotFound(ulbID)
	}
	vs := vserverOf(lb, vsID)
	if vs == nil {
		return nil, errVServerNotFound(vsID)
	}
	if s.w.host(rid, c.region, c.project) == nil {
		return nil, errParamWhy("ResourceId", fmt.Sprintf("uhost %s does not exist", rid))
	}
	if dup := duplicateBackend(vs, rid, port, ""); dup != nil {
		return nil, errParamWhy("Port", fmt.Sprintf("uhost %s port %d is already a backend of vserver %s", rid, port, vs.ID))
	}
	if n := backendCount(lb); n >= s.maxBackends {
		return nil, errParamWhy("ULBId", fmt.Sprintf("ULB %s already has %d backends, the quota", lb.ID, n))
	}
	s.markVServerPending(lb, vs)
	be := Backend{
		ID: s.w.newID("backend"), ResourceType: rtype, ResourceID: rid, Port: port,
		Disabled: enabled == 0, Weight: weight, IsBackup: backup,
	}
	vs.Backends = append(vs.Backends, be)
	s.logger.Info("backend allocated", "ulb_id", lb.ID, "vserver_id", vs.ID, "backend_id", be.ID, "uhost_id", rid, "port", port)
	return map[string]any{"BackendId": be.ID}, nil
}

// findBackend resolves ULBId and BackendId.
func (s *Server) findBackend(c *call) (*ULB, *VServer, int, *apiError) {
	ulbID, aerr := c.required("ULBId")
	if aerr != nil {
		return nil, nil, 0, aerr
	}
	beID, aerr := c.required("BackendId")
	if aerr != nil {
		return nil, nil, 0, aerr
	}
	lb := s.w.ulb(ulbID, c.region, c.project)
	if lb == nil {
		return nil, nil, 0, errULBNotFound(ulbID)
	}
	vs, i := backendOf(lb, beID)
	if vs == nil {
		return nil, nil, 0, errBackendNotFound(beID)
	}
	return lb, vs, i, nil
}

func (s *Server) releaseBackend(c *call) (map[string]any, *apiError) {
	lb, vs, i, aerr := s.findBackend(c)
	if aerr != nil {
		return nil, aerr
	}
	s.markVServerPending(lb, vs)
	be := vs.Backends[i]
	vs.Backends = append(vs.Backends[:i:i], vs.Backends[i+1:]...)
	s.logger.Info("backend released", "ulb_id", lb.ID, "vserver_id", vs.ID, "backend_id", be.ID)
	return map[string]any{}, nil
}

func (s *Server) updateBackendAttribute(c *call) (map[string]any, *apiError) {
	lb, vs, i, aerr := s.findBackend(c)
	if aerr != nil {
		return nil, aerr
	}
	be := vs.Backends[i]
	port, aerr := c.integer("Port", be.Port, 1, 65535)
	if aerr != nil {
		return nil, aerr
	}
	enabledDef := 1
	if be.Disabled {
		enabledDef = 0
	}
	enabled, aerr := c.integer("Enabled", enabledDef, 0, 1)
	if aerr != nil {
		return nil, aerr
	}
	weight, aerr := c.integer("Weight", be.Weight, 1, 100)
	if aerr != nil {
		return nil, aerr
	}
	backup, aerr := c.integer("IsBackup", be.IsBackup, 0, 1)
	if aerr != nil {
		return nil, aerr
	}
	if dup := duplicateBackend(vs, be.ResourceID, port, be.ID); dup != nil {
		return nil, errParamWhy("Port", fmt.Sprintf("uhost %s port %d is already a backend of vserver %s", be.ResourceID, port, vs.ID))
	}
	s.markVServerPending(lb, vs)
	be.Port, be.Disabled, be.Weight, be.IsBackup = port, enabled == 0, weight, backup
	vs.Backends[i] = be
	s.logger.Info("backend updated", "ulb_id", lb.ID, "backend_id", be.ID, "port", port, "enabled", enabled)
	return map[string]any{}, nil
}

func (s *Server) describeVServer(c *call) (map[string]any, *apiError) {
	offset, limit, aerr := c.paging(20, 1<<30)
	if aerr != nil {
		return nil, aerr
	}
	ulbID, vsID := c.str("ULBId"), c.str("VServerId")
	var lbs []*ULB
	if ulbID != "" {
		lb := s.w.ulb(ulbID, c.region, c.project)
		if lb == nil {
			return nil, errULBNotFound(ulbID)
		}
		lbs = []*ULB{lb}
	} else {
		for _, lb := range s.w.ulbs {
			if lb.Region == c.region && lb.ProjectID == c.project {
				lbs = append(lbs, lb)
			}
		}
	}
	type pair struct {
		lb *ULB
		vs *VServer
	}
	var matched []pair
	for _, lb := range lbs {
		for i := range lb.VServers {
			if vsID == "" || lb.VServers[i].ID == vsID {
				matched = append(matched, pair{lb, &lb.VServers[i]})
			}
		}
	}
	if vsID != "" && len(matched) == 0 {
		return nil, errVServerNotFound(vsID)
	}
	lo, hi := page(len(matched), offset, limit)
	set := make([]ulb.ULBVServerSet, 0, hi-lo)
	for _, m := range matched[lo:hi] {
		set = append(set, s.describeVServerView(m.lb, m.vs))
	}
	return map[string]any{"DataSet": set, "TotalCount": len(matched)}, nil
}

func (s *Server) describeULB(c *call) (map[string]any, *apiError) {
	offset, limit, aerr := c.paging(20, 1<<30)
	if aerr != nil {
		return nil, aerr
	}
	ulbID, vpc, subnet, biz := c.str("ULBId"), c.str("VPCId"), c.str("SubnetId"), c.str("BusinessId")
	if ulbID != "" && s.w.ulb(ulbID, c.region, c.project) == nil {
		return nil, errULBNotFound(ulbID)
	}
	var matched []*ULB
	for _, lb := range s.w.ulbs {
		switch {
		case lb.Region != c.region || lb.ProjectID != c.project,
			ulbID != "" && lb.ID != ulbID,
			vpc != "" && lb.VPCID != vpc,
			subnet != "" && lb.SubnetID != subnet,
			biz != "" && lb.BusinessID != biz:
			continue
		}
		matched = append(matched, lb)
	}
	lo, hi := page(len(matched), offset, limit)
	set := make([]ulb.ULBSet, 0, hi-lo)
	for _, lb := range matched[lo:hi] {
		set = append(set, s.w.renderULB(lb, func(vs *VServer) ulb.ULBVServerSet {
			return s.describeVServerView(lb, vs)
		}))
	}
	return map[string]any{"DataSet": set, "TotalCount": len(matched)}, nil
}
