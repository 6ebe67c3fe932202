package ucloudsim

// The EIP updates the Terraform provider's ucloud_eip makes
// (ModifyEIPBandwidth, SetEIPPayMode, UpdateEIPAttribute). Fields and ranges
// are those of the SDK's unet request types (v0.22.98).

// bandwidthRange is what ModifyEIPBandwidth and SetEIPPayMode accept:
// "流量计费[1-200],带宽计费[1-800]".
func bandwidthRange(payMode string) int {
	if payMode == "Traffic" {
		return 200
	}
	return 800
}

// eipToUpdate resolves the EIPId of an update. EIPs of a shared bandwidth
// package change their bandwidth with the package, not one by one.
func (s *Server) eipToUpdate(c *call) (*EIP, *apiError) {
	id, aerr := c.required("EIPId")
	if aerr != nil {
		return nil, aerr
	}
	e := s.w.eip(id, c.region, c.project)
	if e == nil {
		return nil, errEIPNotFound(id)
	}
	return e, nil
}

func (s *Server) modifyEIPBandwidth(c *call) (map[string]any, *apiError) {
	if c.str("Bandwidth") == "" {
		return nil, errParam("Bandwidth")
	}
	e, aerr := s.eipToUpdate(c)
	if aerr != nil {
		return nil, aerr
	}
	if e.PayMode == "ShareBandwidth" {
		return nil, errf(RetCodeEIPOperationFailed, "EIP [%s] is in a shared bandwidth package: change the package's bandwidth", e.ID)
	}
	bw, aerr := c.integer("Bandwidth", 0, 1, bandwidthRange(e.PayMode))
	if aerr != nil {
		return nil, aerr
	}
	old := e.Bandwidth
	e.Bandwidth = bw
	s.logger.Info("eip bandwidth modified", "eip_id", e.ID, "from", old, "to", bw)
	return map[string]any{}, nil
}

func (s *Server) setEIPPayMode(c *call) (map[string]any, *apiError) {
	raw, aerr := c.required("PayMode")
	if aerr != nil {
		return nil, aerr
	}
	payMode, ok := canonical(raw, "Traffic", "Bandwidth")
	if !ok {
		return nil, errParamWhy("PayMode", "one of Traffic, Bandwidth")
	}
	if c.str("Bandwidth") == "" {
		return nil, errParam("Bandwidth")
	}
	bw, aerr := c.integer("Bandwidth", 0, 1, bandwidthRange(payMode))
	if aerr != nil {
		return nil, aerr
	}
	e, aerr := s.eipToUpdate(c)
	if aerr != nil {
		return nil, aerr
	}
	if e.PayMode == "ShareBandwidth" {
		return nil, errf(RetCodeEIPOperationFailed, "EIP [%s] is in a shared bandwidth package: leave it first", e.ID)
	}
	e.PayMode, e.Bandwidth = payMode, bw
	s.logger.Info("eip pay mode set", "eip_id", e.ID, "pay_mode", payMode, "bandwidth", bw)
	return map[string]any{}, nil
}

func (s *Server) updateEIPAttribute(c *call) (map[string]any, *apiError) {
	e, aerr := s.eipToUpdate(c)
	if aerr != nil {
		return nil, aerr
	}
	name, tag, remark := c.str("Name"), c.str("Tag"), c.str("Remark")
	if name == "" && tag == "" && remark == "" {
		// "名字（Name Tag Remark都为空则报错）"
		return nil, errParamWhy("Name", "Name, Tag and Remark are all empty")
	}
	if name != "" {
		e.Name = name
	}
	if c.has("Tag") {
		if tag == "" {
			tag = "Default"
		}
		e.Tag = tag
	}
	if c.has("Remark") {
		e.Remark = remark
	}
	s.logger.Info("eip attributes updated", "eip_id", e.ID, "name", e.Name, "tag", e.Tag)
	return map[string]any{}, nil
}
