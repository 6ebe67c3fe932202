// Package ucloudsim is a local simulator of the UCloud API the driver uses:
// EIPs (UNet), classic load balancers (ULB) and hosts (UHost), spoken exactly
// as github.com/ucloud/ucloud-sdk-go v0.22.98 speaks it through its BaseUrl,
// plus the instance metadata of every simulated host, injectable faults, and
// an admin API for tests in other processes. docs/ucloudsim.md is the full
// manual; this comment is the summary a Go user needs.
//
// # Use
//
//	st, err := ucloudsim.LoadState("examples/ucloudsim/demo.json")
//	srv, err := ucloudsim.New(ucloudsim.Config{State: st, Seed: 1, Logger: logger})
//	err = srv.Start(ctx, "127.0.0.1:0") // serves until ctx ends or Close
//	cfg := ucloud.NewConfig()
//	cfg.BaseUrl = srv.URL()
//	metadataEndpoint := srv.MetadataURL("uhost-demo-1") // instead of http://100.80.80.80
//	eip, _ := srv.Snapshot().EIP("eip-demo-broker-0")   // eip.Status, eip.ResourceID
//	srv.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "BindEIP", HTTPStatus: 503, Count: 1}}})
//	srv.SetFaults(ucloudsim.Faults{RateLimit: &ucloudsim.RateLimit{CallsPerSecond: 10, Burst: 10}}) // account-wide
//	srv.Counters()["BindEIP"].Requests; srv.Requests()
//
// The command (cmd/ucloud-sim, and `rmq-driver ucloud-sim`) is Main: it
// prints "ucloud-sim listening on URL" and takes -listen, -seed FILE,
// -faults FILE, -seed-random N, -keypair PUB=PRIV, -log-level.
//
// # Paths
//
//	/                              the UCloud API (any path not below)
//	/metadata/<uhost-id>/meta-data/v1.json, .../meta-data/latest/uhost/uhost-id, ...
//	                               the metadata that host would read from http://100.80.80.80
//	/_sim/state, /_sim/faults, /_sim/counters, /_sim/requests, /_sim/reset
//	                               the admin API (JSON, loopback, no authentication)
//
// # Fidelity
//
// Request encoding, signature (Sign) and reply envelope are the SDK's
// (ucloud/request/encoder_form.go, ucloud/auth/signature.go,
// ucloud/response/common.go); reply bodies are built from the SDK's own
// response models, so field names cannot drift. RetCodes, with where each
// comes from ("assumed" = no public source found, chosen by analogy):
//
//	RetCode  when                                         source
//	153      account throttled (Faults.RateLimit)         UCloud API docs, common error codes
//	         ("API request rate limited", HTTP 200)       ("API 请求被限流"); message ours
//	160      no Action                                    SDK ucloud/client_test.go ("Missing Action")
//	161      unknown Action                               SDK ucloud/mock_test.go ("Action [Test] not found")
//	170      no Signature or PublicKey                    ucloud-cli platform/client.go comment
//	171      bad signature ("Signature VerifyAC Error")   UCloudDoc-Team/uiot-core API guide FAQ; ucloud-cli
//	172      unknown public key ("User Not Exists")       uiot-core FAQ; ucloud-cli cmd/configure.go
//	230      missing/invalid parameter                    ucloud-cli pgsql update_remark.go ("Params [Name] not available")
//	         ("Params [X] not available"), unknown region, unknown host to bind or
//	         register, duplicate backend, port clash, quota: assumed (same code)
//	292      unknown ProjectId ("Project [X] not exists") ucloud-cli platform/client.go
//	4103     unknown ULB, VServer (describes)             terraform-provider-ucloud service_ucloud_ulb.go (4103 or 4086)
//	         unknown ULB/VServer/backend in other calls   assumed; 4086 is never answered
//	8039     EIP unknown, bound elsewhere, not bound,     SDK tests/scenario_279,405 (ReleaseEIP -> 8039);
//	         still bound on release                       which cases: inferred
//	54002    firewall id unknown (none are modelled)      UCloudDoc-Team/api issue 586; terraform-provider-ucloud
//	                                                      reads it as not-found
//
// APIs, the fields they honour and answer:
//
//	API                     request (* required)                                   reply
//	AllocateEIP             Bandwidth*, OperatorName*, PayMode, ChargeType, Count, Quantity  EIPSet[].EIPId, .EIPAddr[].IP
//	ReleaseEIP              EIPId*                                                  -
//	ModifyEIPBandwidth      EIPId*, Bandwidth*                                      -
//	SetEIPPayMode           EIPId*, PayMode*, Bandwidth*                            -
//	UpdateEIPAttribute      EIPId*, Name, Tag, Remark                               -
//	DescribeFirewall        FWId, ResourceType, ResourceId, Offset, Limit           DataSet[] (always empty), TotalCount
//	BindEIP, UnBindEIP      EIPId*, ResourceType* (uhost|ulb), ResourceId*          -
//	DescribeEIP             EIPIds.N, IPs.N, Offset, Limit(20)                      EIPSet[] (Status used|free, Resource.ResourceID, EIPAddr[].IP), TotalCount
//	DescribeUHostInstance   UHostIds.N, Zone, Tag, VPCId, SubnetId, Offset, Limit(20, max 100)  UHostSet[] (IPSet: Private + bound EIPs), TotalCount
//	CreateULB               ULBName, InnerMode|OuterMode, ListenType, VPCId, ...    ULBId
//	UpdateULBAttribute      ULBId*, Name, Tag, Remark                               -
//	DeleteULB               ULBId*, ReleaseEip                                      -
//	CreateVServer           ULBId*, Protocol, FrontendPort, ListenType, Method,     VServerId
//	                        ClientTimeout, MonitorType, Domain, Path, Persistence*, ...
//	UpdateVServerAttribute  ULBId*, VServerId*, the attributes of CreateVServer     -
//	DeleteVServer           ULBId*, VServerId*                                      -
//	AllocateBackend         ULBId*, VServerId*, ResourceType* (UHost), ResourceId*, Port  BackendId
//	ReleaseBackend          ULBId*, BackendId*                                      -
//	UpdateBackendAttribute  ULBId*, BackendId*, Port, Enabled, Weight, IsBackup     -
//	DescribeVServer         ULBId, VServerId, Offset, Limit(20)                     DataSet[] (BackendSet[]), TotalCount
//	DescribeULB             ULBId, VPCId, SubnetId, Offset, Limit(20)               DataSet[] (IPSet, VServerSet[].BackendSet[]), TotalCount
//
// A request field the simulator does not model (the SDK's request fields
// minus those listed in params.go) is refused with 230, never accepted and
// dropped; every field accepted is stored and echoed.
//
// Semantics: every call acts in its Region and ProjectId only; an EIP bound to
// anything cannot be bound again until unbound; binding updates the host's
// IPSet and metadata; a VServer refuses a second backend on the same host and
// port; backend ids are unique per ULB; describes of unknown EIP or host ids
// answer RetCode 0 and an empty set.
//
// The v1.json metadata shape is the SDK's ucloud/metadata.Metadata (and its
// test sample); the latest/uhost item tree is UCloud's "Metadata Server"
// documentation. Secrets: private keys never appear in logs, dumps, the
// request log (Signature reads REDACTED) or replies.
package ucloudsim
