package ucloudsim

import (
	"strings"
	"time"

	"github.com/ucloud/ucloud-sdk-go/services/uhost"
	"github.com/ucloud/ucloud-sdk-go/services/ulb"
	"github.com/ucloud/ucloud-sdk-go/services/unet"
)

// The replies are built from the SDK's own response models, so their field
// names are exactly the ones the SDK decodes.

func renderEIP(e *EIP, now time.Time) unet.UnetEIPSet {
	out := unet.UnetEIPSet{
		Bandwidth:  e.Bandwidth,
		ChargeType: e.ChargeType,
		CreateTime: int(e.CreateTime),
		EIPAddr:    []unet.UnetEIPAddrSet{{IP: e.IP, OperatorName: e.OperatorName}},
		EIPId:      e.ID,
		Name:       e.Name,
		PayMode:    e.PayMode,
		Remark:     e.Remark,
		Status:     eipStatus(e),
		Tag:        e.Tag,
		Weight:     50,
	}
	if e.PayMode == "ShareBandwidth" {
		out.BandwidthType = 1
	}
	if e.ExpireTime > 0 {
		out.ExpireTime = int(e.ExpireTime)
		out.Expire = now.Unix() >= e.ExpireTime
	}
	if e.ResourceID != "" {
		out.Resource = unet.UnetEIPResourceSet{
			EIPId:        e.ID,
			ResourceID:   e.ResourceID,
			ResourceId:   e.ResourceID,
			ResourceName: e.ResourceID,
			ResourceType: e.ResourceType,
		}
	}
	return out
}

func (w *world) renderHost(h *Host) uhost.UHostInstanceSet {
	ips := []uhost.UHostIPSet{{
		Type: "Private", IP: h.PrivateIP, Default: "true", Mac: h.MAC,
		SubnetId: h.SubnetID, VPCId: h.VPCID, IPMode: "IPv4",
	}}
	for _, e := range w.eipsOf("uhost", h.ID) {
		ips = append(ips, uhost.UHostIPSet{
			Type: e.OperatorName, IP: e.IP, IPId: e.ID, Bandwidth: e.Bandwidth, IPMode: "IPv4", Weight: 50,
		})
	}
	return uhost.UHostInstanceSet{
		AutoRenew:     "Yes",
		BootDiskState: "Normal",
		CPU:           h.CPU,
		ChargeType:    "Month",
		CreateTime:    int(h.CreateTime),
		DiskSet: []uhost.UHostDiskSet{{
			DiskId: "bsi-" + strings.TrimPrefix(h.ID, "uhost-"), DiskType: "CLOUD_SSD", Drive: "vda",
			Encrypted: "false", IsBoot: "True", Name: "系统盘", Size: 20, Type: "Boot",
		}},
		IPSet:         ips,
		ImageId:       h.ImageID,
		BasicImageId:  h.ImageID,
		LifeCycle:     "Normal",
		MachineType:   h.MachineType,
		Memory:        h.Memory,
		Name:          h.Name,
		NetCapability: "Normal",
		NetworkState:  "Connected",
		OsName:        h.OSName,
		OsType:        "Linux",
		Remark:        h.Remark,
		State:         h.State,
		StorageType:   "UDisk",
		Tag:           h.Tag,
		UHostId:       h.ID,
		Zone:          h.Zone,
	}
}

func (w *world) renderBackend(be *Backend) ulb.ULBBackendSet {
	out := ulb.ULBBackendSet{
		BackendId:    be.ID,
		Enabled:      1,
		IsBackup:     be.IsBackup,
		Port:         be.Port,
		ResourceId:   be.ResourceID,
		ResourceType: be.ResourceType,
		Weight:       be.Weight,
	}
	if be.Disabled {
		out.Enabled = 0
	}
	if h := w.hostByID[be.ResourceID]; h != nil {
		out.PrivateIP = h.PrivateIP
		out.ResourceName = h.Name
		out.SubnetId = h.SubnetID
		out.VPCId = h.VPCID
	}
	return out
}

func (w *world) renderVServer(lb *ULB, vs *VServer) ulb.ULBVServerSet {
	backends := make([]ulb.ULBBackendSet, 0, len(vs.Backends))
	for i := range vs.Backends {
		backends = append(backends, w.renderBackend(&vs.Backends[i]))
	}
	return ulb.ULBVServerSet{
		BackendSet:        backends,
		ClientTimeout:     vs.ClientTimeout,
		Domain:            vs.Domain,
		EnableCompression: vs.EnableCompression,
		EnableHTTP2:       vs.EnableHTTP2,
		ForwardPort:       vs.ForwardPort,
		FrontendPort:      vs.FrontendPort,
		ListenType:        vs.ListenType,
		Method:            vs.Method,
		MonitorType:       vs.MonitorType,
		Path:              vs.Path,
		PersistenceInfo:   vs.PersistenceInfo,
		PersistenceType:   vs.PersistenceType,
		PolicySet:         []ulb.ULBPolicySet{},
		Protocol:          vs.Protocol,
		RequestMsg:        vs.RequestMsg,
		ResponseMsg:       vs.ResponseMsg,
		SSLSet:            []ulb.ULBSSLSet{},
		Status:            0, // every backend healthy: the simulator runs no health checks
		ULBId:             lb.ID,
		VServerId:         vs.ID,
		VServerName:       vs.Name,
	}
}

// renderULB renders a ULB; vserver renders each of its VServers (so that
// pending views can be substituted).
func (w *world) renderULB(lb *ULB, vserver func(*VServer) ulb.ULBVServerSet) ulb.ULBSet {
	ips := []ulb.ULBIPSet{}
	for _, e := range w.eipsOf("ulb", lb.ID) {
		ips = append(ips, ulb.ULBIPSet{Bandwidth: e.Bandwidth, EIP: e.IP, EIPId: e.ID, OperatorName: e.OperatorName})
	}
	vservers := make([]ulb.ULBVServerSet, 0, len(lb.VServers))
	for i := range lb.VServers {
		vservers = append(vservers, vserver(&lb.VServers[i]))
	}
	return ulb.ULBSet{
		BusinessId:  lb.BusinessID,
		CreateTime:  int(lb.CreateTime),
		FirewallSet: []ulb.FirewallSet{},
		IPSet:       ips,
		IPVersion:   "IPv4",
		ListenType:  lb.ListenType,
		Name:        lb.Name,
		PrivateIP:   lb.PrivateIP,
		Remark:      lb.Remark,
		SnatIps:     []string{},
		SubnetId:    lb.SubnetID,
		Tag:         lb.Tag,
		ULBId:       lb.ID,
		ULBName:     lb.Name,
		ULBType:     lb.Mode,
		VPCId:       lb.VPCID,
		VServerSet:  vservers,
	}
}

// pendingView is what describes show of an object while a change to it is
// "still propagating" (Faults.PendingDescribes).
type pendingView struct {
	remaining int
	eip       *unet.UnetEIPSet
	host      *uhost.UHostInstanceSet
	vserver   *ulb.ULBVServerSet
}

func eipKey(id string) string           { return "eip:" + id }
func hostKey(id string) string          { return "host:" + id }
func vserverKey(lbID, id string) string { return "vserver:" + lbID + "/" + id }

// markPending records the view of an object from before a change. The
// oldest view is kept; the countdown restarts. Server.mu is held.
func (s *Server) markPending(key string, render func() pendingView) {
	n := s.faults.PendingDescribes
	if n <= 0 {
		return
	}
	if pv := s.pending[key]; pv != nil {
		pv.remaining = n
		return
	}
	pv := render()
	pv.remaining = n
	s.pending[key] = &pv
}

// stale returns the pending view of an object, counting one describe against
// it, or nil. Server.mu is held.
func (s *Server) stale(key string) *pendingView {
	pv := s.pending[key]
	if pv == nil {
		return nil
	}
	pv.remaining--
	if pv.remaining <= 0 {
		delete(s.pending, key)
	}
	return pv
}

func (s *Server) markEIPPending(e *EIP) {
	s.markPending(eipKey(e.ID), func() pendingView {
		v := renderEIP(e, s.now())
		return pendingView{eip: &v}
	})
}

func (s *Server) markHostPending(h *Host) {
	s.markPending(hostKey(h.ID), func() pendingView {
		v := s.w.renderHost(h)
		return pendingView{host: &v}
	})
}

func (s *Server) markVServerPending(lb *ULB, vs *VServer) {
	s.markPending(vserverKey(lb.ID, vs.ID), func() pendingView {
		v := s.w.renderVServer(lb, vs)
		return pendingView{vserver: &v}
	})
}

// describeVServerView renders a VServer as describes see it.
func (s *Server) describeVServerView(lb *ULB, vs *VServer) ulb.ULBVServerSet {
	if pv := s.stale(vserverKey(lb.ID, vs.ID)); pv != nil && pv.vserver != nil {
		return *pv.vserver
	}
	return s.w.renderVServer(lb, vs)
}
