package ucloudsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// checkReply asserts a reply is what UCloud's gateway would send: HTTP 200
// and a JSON envelope with a RetCode, or an HTTP error from a fault.
func checkReply(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body.String())
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("reply is not JSON: %v: %q", err, rec.Body.String())
	}
	if _, ok := body["RetCode"].(float64); !ok {
		t.Fatalf("reply has no RetCode: %s", rec.Body.String())
	}
	return body
}

// FuzzDecodeRequest feeds arbitrary bodies and query strings to the request
// decoder and the whole API handler. Nothing may panic, and every reply must
// be a well-formed envelope. `go test` runs the seed corpus only.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []struct{ body, query string }{
		{"Action=DescribeEIP&Region=cn-bj2&PublicKey=test-public-key&Signature=00", "Action=DescribeEIP"},
		{"", ""},
		{"%zz", ""},
		{"Action=&Action=BindEIP", "Action=x"},
		{"EIPIds.999999999999999999999=a&EIPIds.-1=b&Limit=1e9", ""},
		{strings.Repeat("a=b&", 200), ""},
		{"Action=BindEIP;Region=cn-bj2", ""},
		{"\x00\xff=\x00", "\xff"},
	} {
		f.Add(seed.body, seed.query)
	}
	srv, err := New(Config{State: testState()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body, query string) {
		req, aerr := decodeRequest(http.MethodPost, query, []byte(body))
		if req == nil || req.params == nil {
			t.Fatal("decodeRequest returned no request")
		}
		if aerr != nil && aerr.Code != RetCodeParamsNotAvailable {
			t.Fatalf("decoder error code %d", aerr.Code)
		}
		r := httptest.NewRequest(http.MethodPost, "/?"+url.PathEscape(query), strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, r)
		checkReply(t, rec)
	})
}

// FuzzSignedRequest signs arbitrary parameter sets with a valid key, so that
// they reach every action's parameter handling: missing fields, wrong types,
// unknown ids, huge numbers. Nothing may panic, every reply must be an
// envelope, and the account must stay consistent.
func FuzzSignedRequest(f *testing.F) {
	for _, seed := range []string{
		"Action=BindEIP&EIPId=eip-free&ResourceType=uhost&ResourceId=uhost-a",
		"Action=BindEIP&EIPId=eip-bound&ResourceType=ulb&ResourceId=ulb-t",
		"Action=UnBindEIP&EIPId=eip-bound&ResourceType=uhost&ResourceId=uhost-c",
		"Action=AllocateEIP&Bandwidth=99999999999999999999&OperatorName=Bgp&Count=-3",
		"Action=AllocateEIP&Bandwidth=1&OperatorName=Bgp&Count=2",
		"Action=ReleaseEIP&EIPId=eip-free",
		"Action=DescribeEIP&EIPIds.0=eip-free&IPs.3=203.0.113.11&Offset=1&Limit=1",
		"Action=AllocateBackend&ULBId=ulb-t&VServerId=vserver-t&ResourceType=UHost&ResourceId=uhost-a&Port=0",
		"Action=AllocateBackend&ULBId=ulb-t&VServerId=vserver-t&ResourceType=UHost&ResourceId=uhost-a&Port=30001&Weight=x",
		"Action=ReleaseBackend&ULBId=ulb-t&BackendId=backend-seed",
		"Action=UpdateBackendAttribute&ULBId=ulb-t&BackendId=backend-seed&Port=65536&Enabled=2",
		"Action=CreateVServer&ULBId=ulb-t&FrontendPort=9876&Protocol=udp",
		"Action=CreateULB&InnerMode=Yes",
		"Action=DescribeVServer&ULBId=ulb-t&Offset=-1",
		"Action=DescribeULB&Limit=0",
		"Action=DescribeUHostInstance&UHostIds.0=uhost-a&Limit=1000&Zone=cn-bj2-01",
		"Action=DescribeEIP&ProjectId=org-nope",
		"Action=DescribeEIP&Region=",
		"Action=Nope",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, form string) {
		srv, err := New(Config{State: testState(), Faults: Faults{PendingDescribes: 1}})
		if err != nil {
			t.Fatal(err)
		}
		values, err := url.ParseQuery(form)
		if err != nil {
			return
		}
		params := map[string]string{"Region": testRegion}
		for k, v := range values {
			if k != "" && len(v) > 0 { // the decoder ignores nameless parameters, as the SDK never sends them
				params[k] = v[0]
			}
		}
		params["PublicKey"] = testPub
		delete(params, "Signature")
		params["Signature"] = Sign(params, testPriv)
		body := url.Values{}
		for k, v := range params {
			body.Set(k, v)
		}
		for range 2 { // twice: the second call meets the first one's effects
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, r)
			reply := checkReply(t, rec)
			if code := reply["RetCode"].(float64); code == RetCodeSignatureError || code == RetCodeUserNotExists {
				t.Fatalf("signed request refused: %v", reply)
			}
		}
		// The account is still a valid seed.
		snap := srv.Snapshot()
		for i := range snap.Keypairs {
			snap.Keypairs[i].PrivateKey = "x"
		}
		data, err := json.Marshal(snap)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseState(data); err != nil {
			t.Fatalf("the account became inconsistent: %v", err)
		}
	})
}
