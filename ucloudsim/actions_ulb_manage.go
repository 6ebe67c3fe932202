package ucloudsim

import (
	"slices"
	"strconv"
)

// UpdateULBAttribute and DeleteULB, as the Terraform provider's ucloud_lb
// uses them; fields from the SDK's ulb request types (v0.22.98).

func (s *Server) updateULBAttribute(c *call) (map[string]any, *apiError) {
	id, aerr := c.required("ULBId")
	if aerr != nil {
		return nil, aerr
	}
	// Logging to a US3 bucket and the WAF are not modelled: only the values
	// that keep them off are accepted.
	if _, aerr := c.integer("EnableLog", 0, 0, 0); aerr != nil {
		return nil, errParamWhy("EnableLog", "the simulator does not model ULB logging; only 0 is accepted")
	}
	if v := c.str("IsWAFOn"); v != "" && v != "No" {
		return nil, errParamWhy("IsWAFOn", "the simulator does not model the WAF; only No is accepted")
	}
	lb := s.w.ulb(id, c.region, c.project)
	if lb == nil {
		return nil, errULBNotFound(id)
	}
	// "不传则默认不修改": an absent field is left as it is.
	if v := c.str("Name"); v != "" {
		lb.Name = v
	}
	if c.has("Tag") {
		tag := c.str("Tag")
		if tag == "" {
			tag = "Default"
		}
		lb.Tag = tag
	}
	if c.has("Remark") {
		lb.Remark = c.str("Remark")
	}
	s.logger.Info("ulb updated", "ulb_id", lb.ID, "name", lb.Name, "tag", lb.Tag)
	return map[string]any{}, nil
}

// deleteULB deletes a ULB with its VServers and backends. Its EIPs are
// unbound, or released with ReleaseEip=true ("删除clb时是否释放绑定的EIP，
// false标识只解绑EIP，true表示会释放绑定的EIP，默认是false").
func (s *Server) deleteULB(c *call) (map[string]any, *apiError) {
	id, aerr := c.required("ULBId")
	if aerr != nil {
		return nil, aerr
	}
	release := false
	if v := c.str("ReleaseEip"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, errParamWhy("ReleaseEip", "true or false")
		}
		release = b
	}
	lb := s.w.ulb(id, c.region, c.project)
	if lb == nil {
		return nil, errULBNotFound(id)
	}
	var eips []string
	for _, e := range s.w.eipsOf("ulb", lb.ID) {
		eips = append(eips, e.ID)
		delete(s.pending, eipKey(e.ID))
		if release {
			s.w.removeEIP(e)
			continue
		}
		e.ResourceType, e.ResourceID = "", ""
	}
	for _, vs := range lb.VServers {
		delete(s.pending, vserverKey(lb.ID, vs.ID))
	}
	s.w.ulbs = slices.DeleteFunc(s.w.ulbs, func(x *ULB) bool { return x == lb })
	delete(s.w.ulbByID, lb.ID)
	s.logger.Info("ulb deleted", "ulb_id", lb.ID, "vservers", len(lb.VServers), "eips", eips, "eips_released", release)
	return map[string]any{}, nil
}
