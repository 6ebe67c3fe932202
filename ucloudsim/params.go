package ucloudsim

import (
	"slices"
	"strings"
)

// commonParams are sent with every call: the envelope (Action, PublicKey,
// Signature) and the SDK's request.CommonBase (Region, Zone, ProjectId).
func commonParams() []string {
	return []string{"Action", "PublicKey", "Signature", "Region", "Zone", "ProjectId"}
}

// actionParams lists, per action, the request fields the simulator models
// (stores, echoes, or acts on). The lists are the fields of the SDK's request
// types (services/*/apis.go, v0.22.98) minus those the simulator does not
// model: a request naming one of those is refused with RetCode 230 rather
// than accepted and silently dropped. Array fields end in ".N" (the SDK
// sends EIPIds.0, EIPIds.1, ...).
func actionParams(action string) []string {
	switch action {
	case "AllocateEIP":
		// Not modelled: CouponId (billing), ShareBandwidthId (shared
		// bandwidth packages).
		return []string{"Bandwidth", "ChargeType", "Count", "Name", "OperatorName", "PayMode", "Quantity", "Remark", "Tag"}
	case "ReleaseEIP":
		return []string{"EIPId"}
	case "BindEIP":
		// Not modelled: PrivateIP (binding to one of several private IPs).
		return []string{"EIPId", "ResourceType", "ResourceId"}
	case "UnBindEIP":
		return []string{"EIPId", "ResourceType", "ResourceId"}
	case "DescribeEIP":
		return []string{"EIPIds.N", "IPs.N", "Limit", "Offset"}
	case "ModifyEIPBandwidth":
		return []string{"EIPId", "Bandwidth"}
	case "SetEIPPayMode":
		return []string{"EIPId", "PayMode", "Bandwidth"}
	case "UpdateEIPAttribute":
		return []string{"EIPId", "Name", "Remark", "Tag"}
	case "DescribeFirewall":
		return []string{"FWId", "Limit", "Offset", "ResourceId", "ResourceType"}
	case "CreateULB":
		// Not modelled: FirewallId (firewalls), PrivateIp and IPVersion
		// (deprecated in the SDK).
		return []string{"BusinessId", "ChargeType", "InnerMode", "ListenType", "OuterMode", "Remark", "SubnetId", "Tag", "ULBName", "VPCId"}
	case "UpdateULBAttribute":
		// EnableLog and IsWAFOn are accepted only with the values the
		// simulator models (0, No); BucketName, TokenId and TokenName
		// (logging to US3) are not modelled.
		return []string{"ULBId", "Name", "Remark", "Tag", "EnableLog", "IsWAFOn"}
	case "DeleteULB":
		return []string{"ULBId", "ReleaseEip"}
	case "DescribeULB":
		return []string{"BusinessId", "Limit", "Offset", "SubnetId", "ULBId", "VPCId"}
	case "CreateVServer":
		// Not modelled: SecurityPolicyId (TLS security policies).
		return append([]string{"ULBId", "Protocol", "FrontendPort", "ListenType"}, vserverAttrParams()...)
	case "UpdateVServerAttribute":
		// Protocol is deprecated in the SDK; it is accepted only when it
		// names the VServer's own protocol.
		return append([]string{"ULBId", "VServerId", "Protocol"}, vserverAttrParams()...)
	case "DeleteVServer":
		return []string{"ULBId", "VServerId"}
	case "DescribeVServer":
		return []string{"Limit", "Offset", "ULBId", "VServerId"}
	case "AllocateBackend":
		// Not modelled: ResourceIP, VPCId, SubnetId (IP backends).
		return []string{"ULBId", "VServerId", "ResourceType", "ResourceId", "Port", "Enabled", "Weight", "IsBackup"}
	case "ReleaseBackend":
		return []string{"ULBId", "BackendId"}
	case "UpdateBackendAttribute":
		return []string{"ULBId", "BackendId", "Port", "Enabled", "Weight", "IsBackup"}
	case "DescribeUHostInstance":
		// Not modelled: IsolationGroup, LifeCycle (deprecated),
		// UDiskIdForAttachment.
		return []string{"UHostIds.N", "Tag", "VPCId", "SubnetId", "Limit", "Offset"}
	}
	return nil
}

// vserverAttrParams are the VServer attributes CreateVServer and
// UpdateVServerAttribute both take (ulb.CreateVServerRequest,
// ulb.UpdateVServerAttributeRequest).
func vserverAttrParams() []string {
	return []string{
		"VServerName", "Method", "ClientTimeout", "MonitorType", "Domain", "Path",
		"PersistenceType", "PersistenceInfo", "RequestMsg", "ResponseMsg",
		"EnableCompression", "EnableHTTP2", "ForwardPort",
	}
}

// checkParams refuses a parameter the action does not model.
func checkParams(action string, p map[string]string) *apiError {
	known := append(actionParams(action), commonParams()...)
	var unknown []string
	for k := range p {
		name := k
		if prefix, _, isArray := strings.Cut(k, "."); isArray {
			name = prefix + ".N"
		}
		if !slices.Contains(known, name) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return errParamWhy(unknown[0], "the simulator does not model this parameter of "+action)
}
