package ucloudsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The instance metadata of host <id> is served under /metadata/<id>/, laid
// out like http://100.80.80.80/:
//
//	meta-data/v1.json              the whole document (the shape the SDK's
//	                               ucloud/metadata package decodes)
//	meta-data/v1/<path>            one item of that document, e.g. v1/instance-id
//	meta-data/latest/uhost/<path>  the documented item tree, e.g. latest/uhost/uhost-id
//	user-data, vendor-data         the host's user data (seed "user_data"), empty vendor data
//
// A path naming an object lists its keys, one per line, "/" after those that
// are objects or arrays. Leaves are plain text. Unknown hosts and paths are 404.

// metadataDoc builds the v1.json document of a host. Server.mu is held.
func (w *world) metadataDoc(h *Host) map[string]any {
	ips := []any{map[string]any{"ip-address": h.PrivateIP, "type": "Private"}}
	for _, e := range w.eipsOf("uhost", h.ID) {
		ips = append(ips, map[string]any{
			"ip-address": e.IP, "type": e.OperatorName, "bandwidth": e.Bandwidth, "ip-id": e.ID,
		})
	}
	uh := map[string]any{
		"cpu": h.CPU,
		"disks": []any{map[string]any{
			"backup-type": "", "disk-id": "bsi-" + strings.TrimPrefix(h.ID, "uhost-"), "disk-type": "CLOUD_SSD",
			"drive": "vda", "encrypted": false, "is-boot": true, "name": "系统盘", "size": 20,
		}},
		"gpu":             0,
		"hotplug":         false,
		"image-id":        h.ImageID,
		"isolation-group": "",
		"machine-type":    h.MachineType,
		"memory":          h.Memory,
		"name":            h.Name,
		"net-capability":  "Normal",
		"network-interfaces": []any{map[string]any{
			"ips": ips, "mac": strings.ToUpper(h.MAC), "subnet-id": h.SubnetID, "vpc-id": h.VPCID,
		}},
		"os-name":    h.OSName,
		"project-id": h.ProjectID,
		"region":     h.Region,
		"remark":     h.Remark,
		"tag":        h.Tag,
		"uhost-id":   h.ID,
		"zone":       h.Zone,
	}
	gateway, nameservers := "", []any{}
	if p, err := netip.ParseAddr(h.PrivateIP); err == nil {
		if prefix, err := p.Prefix(h.PrefixLen); err == nil {
			gateway = prefix.Addr().Next().String()
			if h.PrefixLen <= 16 {
				b := prefix.Addr().As4()
				nameservers = []any{
					netip.AddrFrom4([4]byte{b[0], b[1], 255, 1}).String(),
					netip.AddrFrom4([4]byte{b[0], b[1], 255, 2}).String(),
				}
			}
		}
	}
	return map[string]any{
		"availability-zone": h.Zone,
		"cloud-name":        "ucloud",
		"instance-id":       h.ID,
		"local-hostname":    strings.ReplaceAll(h.PrivateIP, ".", "-"),
		"network-config": map[string]any{
			"ethernets": map[string]any{"eth0": map[string]any{
				"addresses":   []any{fmt.Sprintf("%s/%d", h.PrivateIP, h.PrefixLen)},
				"gateway4":    gateway,
				"match":       map[string]any{"macaddress": strings.ToLower(h.MAC)},
				"mtu":         1454,
				"nameservers": map[string]any{"addresses": nameservers},
			}},
			"version": 2,
		},
		"platform":        "uhost",
		"public-ssh-keys": []any{},
		"region":          h.Region,
		"uhost":           uh,
	}
}

// latestTree is the documented /meta-data/latest tree: the uhost object, whose
// IP entries the documentation names "width" for the bandwidth.
func latestTree(doc map[string]any) map[string]any {
	uh := doc["uhost"].(map[string]any)
	c := make(map[string]any, len(uh))
	for k, v := range uh {
		c[k] = v
	}
	var ifaces []any
	for _, ifc := range uh["network-interfaces"].([]any) {
		m := ifc.(map[string]any)
		var ips []any
		for _, ip := range m["ips"].([]any) {
			im := map[string]any{}
			for k, v := range ip.(map[string]any) {
				im[k] = v
			}
			if bw, ok := im["bandwidth"]; ok {
				im["width"] = bw
			}
			ips = append(ips, im)
		}
		mc := map[string]any{}
		for k, v := range m {
			mc[k] = v
		}
		mc["ips"] = ips
		ifaces = append(ifaces, mc)
	}
	c["network-interfaces"] = ifaces
	return map[string]any{"uhost": c}
}

// walk follows a slash-separated path into a document.
func walk(node any, path string) (any, bool) {
	for _, seg := range strings.Split(path, "/") {
		if seg == "" {
			continue
		}
		switch n := node.(type) {
		case map[string]any:
			v, ok := n[seg]
			if !ok {
				return nil, false
			}
			node = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			node = n[i]
		default:
			return nil, false
		}
	}
	return node, true
}

// render writes a node as plain text: a listing for objects and arrays.
func renderNode(node any) string {
	isDir := func(v any) bool {
		switch v.(type) {
		case map[string]any, []any:
			return true
		}
		return false
	}
	switch n := node.(type) {
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k, v := range n {
			if isDir(v) {
				k += "/"
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return strings.Join(keys, "\n")
	case []any:
		lines := make([]string, len(n))
		for i, v := range n {
			lines[i] = strconv.Itoa(i)
			if isDir(v) {
				lines[i] += "/"
			}
		}
		return strings.Join(lines, "\n")
	case string:
		return n
	case bool:
		return strconv.FormatBool(n)
	case int:
		return strconv.Itoa(n)
	default:
		return fmt.Sprint(n)
	}
}

// serveMetadata serves /metadata/<uhost-id>/...
func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rest := strings.TrimPrefix(r.URL.Path, "/metadata/")
	id, sub, _ := strings.Cut(rest, "/")

	s.mu.Lock()
	seq, uuid := s.nextSeq()
	flt := s.pickFault(metadataAction)
	var doc map[string]any
	var userData string
	if h := s.w.hostByID[id]; h != nil {
		doc, userData = s.w.metadataDoc(h), h.UserData
	}
	s.mu.Unlock()

	entry := RequestLogEntry{Seq: seq, Time: start, RequestUUID: uuid, Action: metadataAction, Path: r.URL.Path}
	finish := func(status int, timedOut bool) {
		entry.HTTPStatus, entry.Fault, entry.Duration = status, flt.label(), time.Since(start)
		s.mu.Lock()
		s.record(entry, flt != nil, false, timedOut)
		s.mu.Unlock()
		s.logger.Debug("metadata request", "seq", seq, "path", r.URL.Path, "http_status", status, "fault", entry.Fault)
	}

	if flt != nil {
		s.sleep(r.Context(), time.Duration(flt.rule.Latency))
		switch {
		case flt.rule.Timeout:
			if s.hang(r.Context(), w) {
				finish(0, true)
			} else {
				finish(http.StatusGatewayTimeout, true)
			}
			return
		case flt.rule.HTTPStatus != 0:
			http.Error(w, http.StatusText(flt.rule.HTTPStatus), flt.rule.HTTPStatus)
			finish(flt.rule.HTTPStatus, false)
			return
		}
	}

	text := func(status int, body string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(body))
		}
		finish(status, false)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		text(http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	if doc == nil {
		text(http.StatusNotFound, "no such uhost\n")
		return
	}
	switch {
	case sub == "user-data":
		text(http.StatusOK, userData)
	case sub == "vendor-data":
		text(http.StatusOK, "")
	case sub == "meta-data/v1.json":
		data, err := json.Marshal(doc)
		if err != nil {
			text(http.StatusInternalServerError, "encode metadata\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(data)
		}
		finish(http.StatusOK, false)
	case sub == "meta-data" || sub == "meta-data/":
		text(http.StatusOK, "latest/\nv1.json\nv1/")
	case strings.HasPrefix(sub, "meta-data/latest"):
		if node, ok := walk(latestTree(doc), strings.TrimPrefix(sub, "meta-data/latest")); ok {
			text(http.StatusOK, renderNode(node))
		} else {
			text(http.StatusNotFound, "not found\n")
		}
	case strings.HasPrefix(sub, "meta-data/v1/") || sub == "meta-data/v1":
		if node, ok := walk(doc, strings.TrimPrefix(sub, "meta-data/v1")); ok {
			text(http.StatusOK, renderNode(node))
		} else {
			text(http.StatusNotFound, "not found\n")
		}
	case sub == "" || sub == "/":
		text(http.StatusOK, "meta-data/\nuser-data\nvendor-data")
	default:
		text(http.StatusNotFound, "not found\n")
	}
}
