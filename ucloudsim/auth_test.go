package ucloudsim

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ucloud/ucloud-sdk-go/ucloud/auth"
)

func TestAuthAndDispatch(t *testing.T) {
	tests := []struct {
		name string
		opts []clientOpt
		call func(c clients) error
		code int
	}{
		{"wrong private key", []clientOpt{withKeys(testPub, "not-the-key")}, func(c clients) error {
			_, err := c.unet.DescribeEIP(c.unet.NewDescribeEIPRequest())
			return err
		}, RetCodeSignatureError},
		{"unknown public key", []clientOpt{withKeys("someone-else", testPriv)}, func(c clients) error {
			_, err := c.uhost.DescribeUHostInstance(c.uhost.NewDescribeUHostInstanceRequest())
			return err
		}, RetCodeUserNotExists},
		{"no public key", []clientOpt{withKeys("", testPriv)}, func(c clients) error {
			_, err := c.ulb.DescribeULB(c.ulb.NewDescribeULBRequest())
			return err
		}, RetCodeMissingSignature},
		{"unknown action", nil, func(c clients) error {
			req := c.unet.NewGenericRequest()
			if err := req.SetPayload(map[string]any{"Action": "DescribeTheWorld"}); err != nil {
				return err
			}
			_, err := c.unet.GenericInvoke(req)
			return err
		}, RetCodeActionNotFound},
		{"missing action", nil, func(c clients) error {
			req := c.unet.NewGenericRequest()
			if err := req.SetPayload(map[string]any{"EIPIds.0": "eip-free"}); err != nil {
				return err
			}
			_, err := c.unet.GenericInvoke(req)
			return err
		}, RetCodeMissingAction},
		{"wrong type for an integer", nil, func(c clients) error {
			req := c.unet.NewGenericRequest()
			if err := req.SetPayload(map[string]any{"Action": "DescribeEIP", "Limit": "twenty"}); err != nil {
				return err
			}
			_, err := c.unet.GenericInvoke(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"bad array index", nil, func(c clients) error {
			req := c.unet.NewGenericRequest()
			if err := req.SetPayload(map[string]any{"Action": "DescribeEIP", "EIPIds.x": "eip-free"}); err != nil {
				return err
			}
			_, err := c.unet.GenericInvoke(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"signature over awkward characters", nil, func(c clients) error {
			req := c.unet.NewAllocateEIPRequest()
			req.Bandwidth, req.OperatorName = ptr(1), ptr("Bgp")
			req.Name, req.Remark = ptr("broker 0 & co=测试+%"), ptr("a\nb;c")
			_, err := c.unet.AllocateEIP(req)
			return err
		}, RetCodeOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSim(t, Config{})
			err := tt.call(newClients(srv, tt.opts...))
			wantCode(t, err, tt.code)
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].RetCode != tt.code {
				t.Fatalf("request log = %+v", reqs)
			}
		})
	}
}

// TestSignMatchesSDK: Sign computes the signature the SDK's credential does.
func TestSignMatchesSDK(t *testing.T) {
	cred := auth.NewCredential()
	cred.PublicKey, cred.PrivateKey = testPub, testPriv
	params := map[string]string{
		"Action": "BindEIP", "Region": "cn-bj2", "EIPId": "eip-x", "Name": "a b&c=测试", "EIPIds.0": "eip-y",
	}
	q, err := url.ParseQuery(cred.BuildCredentialedQuery(params))
	if err != nil {
		t.Fatal(err)
	}
	signed := map[string]string{}
	for k := range q {
		signed[k] = q.Get(k)
	}
	if got, want := Sign(signed, testPriv), signed["Signature"]; got != want {
		t.Fatalf("Sign = %s, SDK = %s", got, want)
	}
}

// TestSignatureNeverLeaks: the request log, the admin API and the dump never
// hold a signature or a private key.
func TestSignatureNeverLeaks(t *testing.T) {
	srv := startSim(t, Config{Keypairs: []Keypair{{PublicKey: "extra-pub", PrivateKey: "extra-private-9d2"}}})
	c := newClients(srv)
	mustOK(t, c.bind("eip-free", "uhost-a"))
	bad := newClients(srv, withKeys(testPub, "guess"))
	_, err := bad.unet.DescribeEIP(bad.unet.NewDescribeEIPRequest())
	wantCode(t, err, RetCodeSignatureError)

	for _, e := range srv.Requests() {
		if e.Params["Signature"] != redacted {
			t.Fatalf("Signature in log: %q", e.Params["Signature"])
		}
	}
	for _, path := range []string{"/_sim/requests", "/_sim/state", "/_sim/counters", "/_sim/faults", "/_sim/"} {
		_, body := get(t, srv.URL()+path)
		for _, secret := range []string{testPriv, "extra-private-9d2"} {
			if strings.Contains(body, secret) {
				t.Fatalf("%s leaks a private key", path)
			}
		}
	}
	for _, k := range srv.Snapshot().Keypairs {
		if k.PrivateKey != "" {
			t.Fatalf("snapshot keypair %s has a private key", k.PublicKey)
		}
	}
	if s := (Keypair{PublicKey: "p", PrivateKey: "s3cr3t"}).String(); strings.Contains(s, "s3cr3t") {
		t.Fatalf("Keypair.String leaks: %s", s)
	}
}
