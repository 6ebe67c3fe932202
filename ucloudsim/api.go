package ucloudsim

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds a request body; UCloud API requests are a few hundred bytes.
const maxBody = 1 << 20

// request is a decoded API request: the signed parameters (first value of
// each) and the Action they name.
type request struct {
	params map[string]string
	action string
}

// decodeRequest reads the parameters of an API call: the form body of a POST
// (what the SDK sends), or the query string of a GET or of a POST without a
// body. It never panics, whatever the input.
func decodeRequest(method, rawQuery string, body []byte) (*request, *apiError) {
	raw := string(body)
	if method == http.MethodGet || strings.TrimSpace(raw) == "" {
		raw = rawQuery
	}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return &request{params: map[string]string{}}, errParamWhy("Form", "malformed form encoding")
	}
	p := make(map[string]string, len(values))
	for k, v := range values {
		if k == "" || len(v) == 0 {
			continue
		}
		p[k] = v[0]
	}
	return &request{params: p, action: p["Action"]}, nil
}

// Sign computes UCloud's API signature of a parameter set: the parameters
// other than Signature, sorted by name, each name followed by its value with
// no separator and no escaping, then the private key; SHA-1, lower-case hex.
// It is what the SDK's auth.Credential does, exposed for hand-made requests
// (curl) and tests.
func Sign(params map[string]string, privateKey string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := sha1.New()
	for _, k := range keys {
		io.WriteString(h, k)
		io.WriteString(h, params[k])
	}
	io.WriteString(h, privateKey)
	return hex.EncodeToString(h.Sum(nil))
}

// authenticate checks PublicKey and Signature. Server.mu is held.
func (s *Server) authenticate(p map[string]string) *apiError {
	sig, pub := p["Signature"], p["PublicKey"]
	if sig == "" || pub == "" {
		return errf(RetCodeMissingSignature, "Missing signature")
	}
	priv, ok := s.w.keys[pub]
	if !ok {
		return errf(RetCodeUserNotExists, "User Not Exists")
	}
	want := Sign(p, priv)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(sig)), []byte(want)) != 1 {
		return errf(RetCodeSignatureError, "Signature VerifyAC Error")
	}
	return nil
}

// redactParams copies the parameters for the request log, hiding anything
// secret.
func redactParams(p map[string]string) map[string]string {
	out := make(map[string]string, len(p))
	for k, v := range p {
		switch lk := strings.ToLower(k); {
		case lk == "signature", strings.Contains(lk, "privatekey"), strings.Contains(lk, "password"),
			strings.Contains(lk, "secret"), strings.Contains(lk, "token"):
			out[k] = redacted
		default:
			out[k] = v
		}
	}
	return out
}

func cloneParams(p map[string]string) map[string]string {
	if p == nil {
		return nil
	}
	out := make(map[string]string, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// call is one API call being served. Its methods read typed parameters.
type call struct {
	p       map[string]string
	region  string
	project string
}

func (c *call) str(name string) string { return strings.TrimSpace(c.p[name]) }

// has reports whether the call carries the parameter. The SDK never sends
// an empty field; a hand-made request may (Name=).
func (c *call) has(name string) bool {
	_, ok := c.p[name]
	return ok
}

func (c *call) required(name string) (string, *apiError) {
	v := c.str(name)
	if v == "" {
		return "", errParam(name)
	}
	return v, nil
}

// integer reads an optional integer parameter in [lo, hi].
func (c *call) integer(name string, def, lo, hi int) (int, *apiError) {
	raw := c.str(name)
	if raw == "" {
		return def, nil
	}
	v, err := strconv.Atoi(raw)
	if err != nil {
		return 0, errParamWhy(name, "not an integer")
	}
	if v < lo || v > hi {
		return 0, errParamWhy(name, "out of range "+strconv.Itoa(lo)+"-"+strconv.Itoa(hi))
	}
	return v, nil
}

// list reads an array parameter flattened as Name.0, Name.1, ... (the SDK's
// encoding), in index order. Gaps are allowed; a bad index is an error.
func (c *call) list(name string) ([]string, *apiError) {
	type item struct {
		i int
		v string
	}
	var items []item
	prefix := name + "."
	for k, v := range c.p {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		i, err := strconv.Atoi(k[len(prefix):])
		if err != nil || i < 0 || i > 10000 {
			return nil, errParamWhy(k, "bad array index")
		}
		if v = strings.TrimSpace(v); v != "" {
			items = append(items, item{i, v})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return a.i - b.i })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out, nil
}

// paging reads Offset and Limit.
func (c *call) paging(defLimit, maxLimit int) (offset, limit int, aerr *apiError) {
	if offset, aerr = c.integer("Offset", 0, 0, 1<<30); aerr != nil {
		return 0, 0, aerr
	}
	if limit, aerr = c.integer("Limit", defLimit, 0, 1<<30); aerr != nil {
		return 0, 0, aerr
	}
	if limit > maxLimit {
		limit = maxLimit
	}
	return offset, limit, nil
}

// page returns the [offset, offset+limit) window of n items.
func page(n, offset, limit int) (lo, hi int) {
	lo = min(offset, n)
	hi = min(lo+limit, n)
	return lo, hi
}

// scope resolves the request's Region and ProjectId. Server.mu is held.
func (s *Server) scope(c *call) *apiError {
	region := c.str("Region")
	if region == "" {
		return errParam("Region")
	}
	if len(s.w.regions) > 0 && !s.w.regions[region] {
		return errParamWhy("Region", "region "+region+" is not served")
	}
	project := c.str("ProjectId")
	if project == "" {
		project = s.w.defProject
	}
	if len(s.w.projects) > 0 && !s.w.projects[project] {
		return errf(RetCodeProjectNotExists, "Project [%s] not exists", project)
	}
	c.region, c.project = region, project
	return nil
}

// actionFunc serves one action. Server.mu is held; the call's scope is set.
type actionFunc func(s *Server, c *call) (map[string]any, *apiError)

// actionFor maps an Action to its implementation.
func actionFor(name string) actionFunc {
	switch name {
	case "AllocateEIP":
		return (*Server).allocateEIP
	case "ReleaseEIP":
		return (*Server).releaseEIP
	case "BindEIP":
		return (*Server).bindEIP
	case "UnBindEIP":
		return (*Server).unbindEIP
	case "DescribeEIP":
		return (*Server).describeEIP
	case "CreateULB":
		return (*Server).createULB
	case "CreateVServer":
		return (*Server).createVServer
	case "AllocateBackend":
		return (*Server).allocateBackend
	case "ReleaseBackend":
		return (*Server).releaseBackend
	case "UpdateBackendAttribute":
		return (*Server).updateBackendAttribute
	case "DescribeVServer":
		return (*Server).describeVServer
	case "DescribeULB":
		return (*Server).describeULB
	case "DescribeUHostInstance":
		return (*Server).describeUHostInstance
	case "ModifyEIPBandwidth":
		return (*Server).modifyEIPBandwidth
	case "SetEIPPayMode":
		return (*Server).setEIPPayMode
	case "UpdateEIPAttribute":
		return (*Server).updateEIPAttribute
	case "DescribeFirewall":
		return (*Server).describeFirewall
	case "UpdateULBAttribute":
		return (*Server).updateULBAttribute
	case "DeleteULB":
		return (*Server).deleteULB
	case "UpdateVServerAttribute":
		return (*Server).updateVServerAttribute
	case "DeleteVServer":
		return (*Server).deleteVServer
	}
	return nil
}

// Actions lists the API actions the simulator serves.
func Actions() []string {
	return []string{
		"AllocateBackend", "AllocateEIP", "BindEIP", "CreateULB", "CreateVServer",
		"DeleteULB", "DeleteVServer", "DescribeEIP", "DescribeFirewall",
		"DescribeUHostInstance", "DescribeULB", "DescribeVServer", "ModifyEIPBandwidth",
		"ReleaseBackend", "ReleaseEIP", "SetEIPPayMode", "UnBindEIP", "UpdateBackendAttribute",
		"UpdateEIPAttribute", "UpdateULBAttribute", "UpdateVServerAttribute",
	}
}

func knownAction(name string) bool { return actionFor(name) != nil }

// serveAPI serves one UCloud API call.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))

	var req *request
	var aerr *apiError
	if readErr != nil {
		var tooBig *http.MaxBytesError
		why := "unreadable request body"
		if errors.As(readErr, &tooBig) {
			why = "request body too large"
		}
		req, aerr = &request{params: map[string]string{}}, errParamWhy("Form", why)
	} else {
		req, aerr = decodeRequest(r.Method, r.URL.RawQuery, body)
	}

	s.mu.Lock()
	seq, uuid := s.nextSeq()
	entry := RequestLogEntry{
		Seq: seq, Time: start, RequestUUID: uuid, Action: req.action,
		Region: req.params["Region"], ProjectID: req.params["ProjectId"],
		PublicKey: req.params["PublicKey"], Params: redactParams(req.params),
	}
	var fn actionFunc
	throttled := false
	if aerr == nil {
		switch {
		case req.action == "":
			aerr = errf(RetCodeMissingAction, "Missing Action")
		default:
			// The gateway throttles the account a caller has proved it is,
			// before routing the call (see RateLimit).
			if aerr = s.authenticate(req.params); aerr == nil {
				if !s.bucket.take(s.now()) {
					aerr, throttled = s.bucket.errRateLimited(), true
				} else if fn = actionFor(req.action); fn == nil {
					aerr = errf(RetCodeActionNotFound, "Action [%s] not found", req.action)
				}
			}
		}
	}
	var flt *fault
	if aerr == nil {
		flt = s.pickFault(req.action)
	}
	s.mu.Unlock()

	finish := func(retCode int, msg string, status int, timedOut bool) {
		entry.RetCode, entry.Message, entry.HTTPStatus = retCode, msg, status
		entry.Fault = flt.label()
		if throttled {
			entry.Fault = "rate_limit"
		}
		entry.Duration = time.Since(start)
		s.mu.Lock()
		s.record(entry, flt != nil, throttled, timedOut)
		s.mu.Unlock()
		s.logger.Debug("api call", "seq", seq, "action", req.action, "ret_code", retCode,
			"http_status", status, "fault", entry.Fault, "duration", entry.Duration)
	}

	if aerr != nil {
		s.writeReply(w, req.action, uuid, nil, aerr)
		finish(aerr.Code, aerr.Message, http.StatusOK, false)
		return
	}

	if flt != nil {
		s.sleep(r.Context(), time.Duration(flt.rule.Latency))
		if flt.failing() && !flt.rule.AfterApply {
			s.applyFault(w, r, req.action, uuid, flt, finish)
			return
		}
	}

	s.mu.Lock()
	c := &call{p: req.params}
	var out map[string]any
	if aerr = s.scope(c); aerr == nil {
		if aerr = checkParams(req.action, req.params); aerr == nil {
			out, aerr = fn(s, c)
		}
	}
	if aerr == nil {
		entry.Region, entry.ProjectID = c.region, c.project
	}
	s.mu.Unlock()

	if flt.failing() && flt.rule.AfterApply {
		s.applyFault(w, r, req.action, uuid, flt, finish)
		return
	}
	if aerr != nil {
		s.writeReply(w, req.action, uuid, nil, aerr)
		finish(aerr.Code, aerr.Message, http.StatusOK, false)
		return
	}
	s.writeReply(w, req.action, uuid, out, nil)
	finish(RetCodeOK, "", http.StatusOK, false)
}

// applyFault answers a request with its fault's failure.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, action, uuid string, flt *fault,
	finish func(retCode int, msg string, status int, timedOut bool)) {
	switch {
	case flt.rule.Timeout:
		if s.hang(r.Context(), w) {
			finish(0, "client gave up", 0, true)
		} else {
			finish(0, "hung request answered", http.StatusGatewayTimeout, true)
		}
	case flt.rule.HTTPStatus != 0:
		http.Error(w, strconv.Itoa(flt.rule.HTTPStatus)+" "+http.StatusText(flt.rule.HTTPStatus), flt.rule.HTTPStatus)
		finish(0, flt.message(), flt.rule.HTTPStatus, false)
	default:
		aerr := &apiError{Code: flt.rule.RetCode, Message: flt.message()}
		s.writeReply(w, action, uuid, nil, aerr)
		finish(aerr.Code, aerr.Message, http.StatusOK, false)
	}
}

// writeReply writes UCloud's reply envelope: HTTP 200 and
// {"Action":"<Action>Response","RetCode":...,"Message":...,<payload>}.
func (s *Server) writeReply(w http.ResponseWriter, action, uuid string, payload map[string]any, aerr *apiError) {
	body := make(map[string]any, len(payload)+4)
	for k, v := range payload {
		body[k] = v
	}
	if action != "" {
		body["Action"] = action + "Response"
	}
	body["Request_uuid"] = uuid
	if aerr != nil {
		body["RetCode"] = aerr.Code
		body["Message"] = aerr.Message
	} else {
		body["RetCode"] = RetCodeOK
	}
	data, err := json.Marshal(body)
	if err != nil {
		s.logger.Error("encode reply", "action", action, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-UCLOUD-REQUEST-UUID", uuid)
	if _, err := w.Write(data); err != nil {
		s.logger.Debug("write reply", "action", action, "error", err)
	}
}
