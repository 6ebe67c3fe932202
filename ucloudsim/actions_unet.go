package ucloudsim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ucloud/ucloud-sdk-go/services/unet"
)

// canonical returns the allowed value that equals v case-insensitively.
func canonical(v string, allowed ...string) (string, bool) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, true
		}
	}
	return "", false
}

func errEIPNotFound(id string) *apiError {
	return errf(RetCodeEIPOperationFailed, "EIP [%s] not exists", id)
}

func (s *Server) allocateEIP(c *call) (map[string]any, *apiError) {
	if c.str("Bandwidth") == "" {
		return nil, errParam("Bandwidth")
	}
	bw, aerr := c.integer("Bandwidth", 0, 0, 10000)
	if aerr != nil {
		return nil, aerr
	}
	opRaw, aerr := c.required("OperatorName")
	if aerr != nil {
		return nil, aerr
	}
	op, ok := canonical(opRaw, "Bgp", "International", "BGPPro")
	if !ok {
		return nil, errParamWhy("OperatorName", "one of Bgp, International, BGPPro")
	}
	payMode := "Bandwidth"
	if v := c.str("PayMode"); v != "" {
		if payMode, ok = canonical(v, "Bandwidth", "Traffic", "ShareBandwidth", "PostAccurateBandwidth"); !ok {
			return nil, errParamWhy("PayMode", "one of Bandwidth, Traffic, ShareBandwidth, PostAccurateBandwidth")
		}
	}
	if payMode == "ShareBandwidth" {
		// It needs a ShareBandwidthId, and shared bandwidth packages are
		// not modelled.
		return nil, errParamWhy("PayMode", "the simulator does not model shared bandwidth packages")
	}
	if bw == 0 {
		return nil, errParamWhy("Bandwidth", "must be at least 1")
	}
	charge := "Month"
	if v := c.str("ChargeType"); v != "" {
		if charge, ok = canonical(v, "Year", "Month", "Dynamic"); !ok {
			return nil, errParamWhy("ChargeType", "one of Year, Month, Dynamic")
		}
	}
	count, aerr := c.integer("Count", 1, 1, 100)
	if aerr != nil {
		return nil, aerr
	}
	quantity, aerr := c.integer("Quantity", 1, 0, 120)
	if aerr != nil {
		return nil, aerr
	}
	if charge == "Year" && quantity == 0 {
		return nil, errParamWhy("Quantity", "at least 1 year with ChargeType Year")
	}
	name, tag := c.str("Name"), c.str("Tag")
	if name == "" {
		name = "EIP"
	}
	if tag == "" {
		tag = "Default"
	}
	set := make([]unet.UnetAllocateEIPSet, 0, count)
	for range count {
		ip, ok := s.w.newEIPAddr()
		if !ok {
			return nil, errf(RetCodeEIPOperationFailed, "no EIP address left in the simulator's pools")
		}
		e := &EIP{
			ID: s.w.newID("eip"), IP: ip, Region: c.region, ProjectID: c.project,
			Name: name, Tag: tag, Remark: c.str("Remark"), Bandwidth: bw, OperatorName: op,
			PayMode: payMode, ChargeType: charge, CreateTime: s.now().Unix(),
			ExpireTime: expireTime(s.now(), charge, quantity),
		}
		s.w.eips = append(s.w.eips, e)
		s.w.eipByID[e.ID] = e
		set = append(set, unet.UnetAllocateEIPSet{
			EIPId: e.ID, EIPAddr: []unet.UnetEIPAddrSet{{IP: e.IP, OperatorName: e.OperatorName}},
		})
		s.logger.Info("eip allocated", "eip_id", e.ID, "ip", e.IP, "region", e.Region, "project", e.ProjectID)
	}
	return map[string]any{"EIPSet": set}, nil
}

func (s *Server) releaseEIP(c *call) (map[string]any, *apiError) {
	id, aerr := c.required("EIPId")
	if aerr != nil {
		return nil, aerr
	}
	e := s.w.eip(id, c.region, c.project)
	if e == nil {
		return nil, errEIPNotFound(id)
	}
	if e.ResourceID != "" {
		return nil, errf(RetCodeEIPOperationFailed, "EIP [%s] is bound to %s [%s], unbind it first", id, e.ResourceType, e.ResourceID)
	}
	s.w.removeEIP(e)
	delete(s.pending, eipKey(id))
	s.logger.Info("eip released", "eip_id", id)
	return map[string]any{}, nil
}

// bindTarget checks ResourceType and ResourceId of a bind or unbind.
func (s *Server) bindTarget(c *call) (rtype, rid string, aerr *apiError) {
	if _, aerr = c.required("EIPId"); aerr != nil {
		return "", "", aerr
	}
	if rtype, aerr = c.required("ResourceType"); aerr != nil {
		return "", "", aerr
	}
	if rid, aerr = c.required("ResourceId"); aerr != nil {
		return "", "", aerr
	}
	if rtype != "uhost" && rtype != "ulb" {
		return "", "", errParamWhy("ResourceType", "the simulator binds EIPs to uhost and ulb (lower case)")
	}
	return rtype, rid, nil
}

func (s *Server) bindEIP(c *call) (map[string]any, *apiError) {
	rtype, rid, aerr := s.bindTarget(c)
	if aerr != nil {
		return nil, aerr
	}
	id := c.str("EIPId")
	e := s.w.eip(id, c.region, c.project)
	if e == nil {
		return nil, errEIPNotFound(id)
	}
	var h *Host
	switch rtype {
	case "uhost":
		if h = s.w.host(rid, c.region, c.project); h == nil {
			return nil, errParamWhy("ResourceId", fmt.Sprintf("uhost %s does not exist", rid))
		}
	case "ulb":
		if s.w.ulb(rid, c.region, c.project) == nil {
			return nil, errParamWhy("ResourceId", fmt.Sprintf("ulb %s does not exist", rid))
		}
	}
	if e.ResourceID != "" {
		if e.ResourceType == rtype && e.ResourceID == rid {
			return nil, errf(RetCodeEIPOperationFailed, "EIP [%s] is already bound to %s [%s]", id, rtype, rid)
		}
		return nil, errf(RetCodeEIPOperationFailed, "EIP [%s] is bound to %s [%s], unbind it first", id, e.ResourceType, e.ResourceID)
	}
	s.markEIPPending(e)
	if h != nil {
		s.markHostPending(h)
	}
	e.ResourceType, e.ResourceID = rtype, rid
	s.logger.Info("eip bound", "eip_id", id, "resource_type", rtype, "resource_id", rid)
	return map[string]any{}, nil
}

func (s *Server) unbindEIP(c *call) (map[string]any, *apiError) {
	rtype, rid, aerr := s.bindTarget(c)
	if aerr != nil {
		return nil, aerr
	}
	id := c.str("EIPId")
	e := s.w.eip(id, c.region, c.project)
	if e == nil {
		return nil, errEIPNotFound(id)
	}
	if e.ResourceID == "" {
		return nil, errf(RetCodeEIPOperationFailed, "EIP [%s] is not bound", id)
	}
	if e.ResourceType != rtype || e.ResourceID != rid {
		return nil, errf(RetCodeEIPOperationFailed, "EIP [%s] is bound to %s [%s], not to %s [%s]", id, e.ResourceType, e.ResourceID, rtype, rid)
	}
	s.markEIPPending(e)
	if h := s.w.hostByID[rid]; h != nil && rtype == "uhost" {
		s.markHostPending(h)
	}
	e.ResourceType, e.ResourceID = "", ""
	s.logger.Info("eip unbound", "eip_id", id, "resource_type", rtype, "resource_id", rid)
	return map[string]any{}, nil
}

func (s *Server) describeEIP(c *call) (map[string]any, *apiError) {
	ids, aerr := c.list("EIPIds")
	if aerr != nil {
		return nil, aerr
	}
	ips, aerr := c.list("IPs")
	if aerr != nil {
		return nil, aerr
	}
	offset, limit, aerr := c.paging(20, 1<<30)
	if aerr != nil {
		return nil, aerr
	}
	var matched []*EIP
	for _, e := range s.w.eips {
		if e.Region != c.region || e.ProjectID != c.project {
			continue
		}
		if (len(ids) > 0 || len(ips) > 0) && !slices.Contains(ids, e.ID) && !slices.Contains(ips, e.IP) {
			continue
		}
		matched = append(matched, e)
	}
	totalBW, unbound := 0, 0
	for _, e := range matched {
		totalBW += e.Bandwidth
		if e.ResourceID == "" {
			unbound++
		}
	}
	lo, hi := page(len(matched), offset, limit)
	set := make([]unet.UnetEIPSet, 0, hi-lo)
	for _, e := range matched[lo:hi] {
		if pv := s.stale(eipKey(e.ID)); pv != nil && pv.eip != nil {
			set = append(set, *pv.eip)
			continue
		}
		set = append(set, renderEIP(e, s.now()))
	}
	return map[string]any{
		"EIPSet":         set,
		"TotalCount":     len(matched),
		"TotalBandwidth": totalBW,
		"UnbindCount":    unbound,
	}, nil
}
