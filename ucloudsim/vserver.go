package ucloudsim

import (
	"fmt"
	"slices"
)

// VServer attributes: what CreateVServer and UpdateVServerAttribute take and
// DescribeVServer echoes. The rules come from the comments of the SDK's
// ulb.CreateVServerRequest, ulb.UpdateVServerAttributeRequest and
// ulb.ULBVServerSet (v0.22.98), which are UCloud's API documentation.

// portFamily groups protocols that share a port space.
func portFamily(protocol string) string {
	if protocol == "UDP" {
		return "UDP"
	}
	return "TCP"
}

// defaultMonitor is the health check of a VServer that names none: "请求代理型默认值为Port ... 报文转发型 ... 默认值为Ping" (Ping only exists for UDP).
func defaultMonitor(protocol, listen string) string {
	if listen == "PacketsTransmit" && protocol == "UDP" {
		return "Ping"
	}
	return "Port"
}

// vserverMethods are the balancing methods each listen type allows:
// "ConsistentHash，SourcePort，ConsistentHashPort 只在报文转发中使用；Leastconn只在请求代理中使用；Roundrobin、Source和WeightRoundrobin,Backup在请求代理和报文转发中使用".
func vserverMethods(listen string) []string {
	if listen == "PacketsTransmit" {
		return []string{"Roundrobin", "Source", "WeightRoundrobin", "Backup", "ConsistentHash", "SourcePort", "ConsistentHashPort"}
	}
	return []string{"Roundrobin", "Source", "WeightRoundrobin", "Backup", "Leastconn"}
}

// vserverMonitors are the health checks a protocol and listen type allow:
// "其中TCP协议仅支持Port，其他协议支持Port和Path; 报文转发型TCP协议仅支持Port，UDP协议支持Ping、Port和Customize".
func vserverMonitors(protocol, listen string) []string {
	switch {
	case protocol == "TCP":
		return []string{"Port"}
	case listen == "PacketsTransmit":
		return []string{"Ping", "Port", "Customize"}
	default:
		return []string{"Port", "Path"}
	}
}

// checkVServer checks the combination of a VServer's attributes. The single
// values are checked where they are read; this checks what depends on
// protocol and listen type.
func checkVServer(vs *VServer) *apiError {
	if !slices.Contains(vserverMethods(vs.ListenType), vs.Method) {
		return errParamWhy("Method", fmt.Sprintf("%s is not a method of a %s VServer (one of %v)", vs.Method, vs.ListenType, vserverMethods(vs.ListenType)))
	}
	if monitors := vserverMonitors(vs.Protocol, vs.ListenType); !slices.Contains(monitors, vs.MonitorType) {
		return errParamWhy("MonitorType", fmt.Sprintf("a %s %s VServer supports %v, not %s", vs.ListenType, vs.Protocol, monitors, vs.MonitorType))
	}
	switch vs.ListenType {
	case "PacketsTransmit":
		if vs.ClientTimeout != 0 && (vs.ClientTimeout < 60 || vs.ClientTimeout > 900) {
			return errParamWhy("ClientTimeout", "a PacketsTransmit VServer keeps connections 60-900 s, or 0 to disable")
		}
	default:
		if vs.ClientTimeout < 1 || vs.ClientTimeout > 86400 {
			return errParamWhy("ClientTimeout", "a RequestProxy VServer's idle timeout is 1-86400 s")
		}
	}
	if vs.ForwardPort != 0 && vs.Protocol != "HTTP" {
		return errParamWhy("ForwardPort", "only HTTP VServers can redirect (仅HTTP协议支持开启重定向功能)")
	}
	if vs.PersistenceType == "UserDefined" && vs.PersistenceInfo == "" {
		return errParamWhy("PersistenceInfo", "required with PersistenceType UserDefined")
	}
	return nil
}

// readVServerAttrs applies the attribute parameters of a call to vs, which
// holds the current values (update) or the defaults (create). Absent
// parameters leave a value as it is ("若无此字段则不做修改").
func (c *call) readVServerAttrs(vs *VServer) *apiError {
	if c.has("VServerName") {
		vs.Name = c.str("VServerName")
	}
	if v := c.str("Method"); v != "" {
		m, ok := canonical(v, "Roundrobin", "Source", "ConsistentHash", "SourcePort",
			"ConsistentHashPort", "WeightRoundrobin", "Leastconn", "Backup")
		if !ok {
			return errParamWhy("Method", "unknown balancing method")
		}
		vs.Method = m
	}
	var aerr *apiError
	if vs.ClientTimeout, aerr = c.integer("ClientTimeout", vs.ClientTimeout, 0, 86400); aerr != nil {
		return aerr
	}
	if v := c.str("MonitorType"); v != "" {
		m, ok := canonical(v, "Port", "Path", "Ping", "Customize")
		if !ok {
			return errParamWhy("MonitorType", "one of Port, Path, Ping, Customize")
		}
		vs.MonitorType = m
	}
	for name, field := range map[string]*string{
		"Domain": &vs.Domain, "Path": &vs.Path, "RequestMsg": &vs.RequestMsg, "ResponseMsg": &vs.ResponseMsg,
	} {
		if c.has(name) {
			*field = c.str(name)
		}
	}
	if vs.MonitorType == "Path" && vs.Path == "" {
		vs.Path = "/" // "MonitorType 为 Path 时指定健康检查发送请求时的路径，默认为 /"
	}
	if v := c.str("PersistenceType"); v != "" {
		p, ok := canonical(v, "None", "ServerInsert", "UserDefined")
		if !ok {
			return errParamWhy("PersistenceType", "one of None, ServerInsert, UserDefined")
		}
		vs.PersistenceType = p
	}
	if c.has("PersistenceInfo") {
		vs.PersistenceInfo = c.str("PersistenceInfo")
	}
	if vs.PersistenceType != "UserDefined" {
		// "None或ServerInsert，此字段为空" (ULBVServerSet.PersistenceInfo).
		vs.PersistenceInfo = ""
	}
	if vs.EnableCompression, aerr = c.integer("EnableCompression", vs.EnableCompression, 0, 1); aerr != nil {
		return aerr
	}
	if vs.EnableHTTP2, aerr = c.integer("EnableHTTP2", vs.EnableHTTP2, 0, 1); aerr != nil {
		return aerr
	}
	if vs.ForwardPort, aerr = c.integer("ForwardPort", vs.ForwardPort, 0, 65535); aerr != nil {
		return aerr
	}
	return checkVServer(vs)
}

func (s *Server) createVServer(c *call) (map[string]any, *apiError) {
	ulbID, aerr := c.required("ULBId")
	if aerr != nil {
		return nil, aerr
	}
	protocol := "HTTP"
	if v := c.str("Protocol"); v != "" {
		var ok bool
		if protocol, ok = canonical(v, "HTTP", "HTTPS", "TCP", "UDP"); !ok {
			return nil, errParamWhy("Protocol", "one of HTTP, HTTPS, TCP, UDP")
		}
	}
	port, aerr := c.integer("FrontendPort", 80, 1, 65535)
	if aerr != nil {
		return nil, aerr
	}
	listen := "RequestProxy"
	if v := c.str("ListenType"); v != "" {
		var ok bool
		if listen, ok = canonical(v, "RequestProxy", "PacketsTransmit"); !ok {
			return nil, errParamWhy("ListenType", "one of RequestProxy, PacketsTransmit")
		}
	}
	vs := VServer{
		Name: "VServer", Protocol: protocol, FrontendPort: port, ListenType: listen,
		Method: "Roundrobin", ClientTimeout: 60, MonitorType: defaultMonitor(protocol, listen),
		PersistenceType: "None",
	}
	if aerr := c.readVServerAttrs(&vs); aerr != nil {
		return nil, aerr
	}
	if vs.Name == "" {
		vs.Name = "VServer"
	}
	lb := s.w.ulb(ulbID, c.region, c.project)
	if lb == nil {
		return nil, errULBNotFound(ulbID)
	}
	for _, o := range lb.VServers {
		if o.FrontendPort == port && portFamily(o.Protocol) == portFamily(protocol) {
			return nil, errParamWhy("FrontendPort", fmt.Sprintf("port %d is used by vserver %s", port, o.ID))
		}
	}
	vs.ID = s.w.newID("vserver")
	lb.VServers = append(lb.VServers, vs)
	s.logger.Info("vserver created", "ulb_id", lb.ID, "vserver_id", vs.ID, "protocol", protocol, "port", port)
	return map[string]any{"VServerId": vs.ID}, nil
}

// findVServer resolves ULBId and VServerId.
func (s *Server) findVServer(c *call) (*ULB, *VServer, *apiError) {
	ulbID, aerr := c.required("ULBId")
	if aerr != nil {
		return nil, nil, aerr
	}
	vsID, aerr := c.required("VServerId")
	if aerr != nil {
		return nil, nil, aerr
	}
	lb := s.w.ulb(ulbID, c.region, c.project)
	if lb == nil {
		return nil, nil, errULBNotFound(ulbID)
	}
	vs := vserverOf(lb, vsID)
	if vs == nil {
		return nil, nil, errVServerNotFound(vsID)
	}
	return lb, vs, nil
}

func (s *Server) updateVServerAttribute(c *call) (map[string]any, *apiError) {
	lb, vs, aerr := s.findVServer(c)
	if aerr != nil {
		return nil, aerr
	}
	if v := c.str("Protocol"); v != "" {
		// Deprecated in the SDK ("该字段已废弃"): a VServer keeps its protocol.
		if p, ok := canonical(v, "HTTP", "HTTPS", "TCP", "UDP"); !ok || p != vs.Protocol {
			return nil, errParamWhy("Protocol", fmt.Sprintf("the protocol of vserver %s is %s and cannot be changed", vs.ID, vs.Protocol))
		}
	}
	next := *vs
	if aerr := c.readVServerAttrs(&next); aerr != nil {
		return nil, aerr
	}
	if next.Name == "" {
		next.Name = vs.Name
	}
	*vs = next
	s.logger.Info("vserver updated", "ulb_id", lb.ID, "vserver_id", vs.ID)
	return map[string]any{}, nil
}

func (s *Server) deleteVServer(c *call) (map[string]any, *apiError) {
	lb, vs, aerr := s.findVServer(c)
	if aerr != nil {
		return nil, aerr
	}
	id, n := vs.ID, len(vs.Backends)
	lb.VServers = slices.DeleteFunc(lb.VServers, func(x VServer) bool { return x.ID == id })
	delete(s.pending, vserverKey(lb.ID, id))
	s.logger.Info("vserver deleted", "ulb_id", lb.ID, "vserver_id", id, "backends_released", n)
	return map[string]any{}, nil
}
