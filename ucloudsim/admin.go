package ucloudsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// serveAdmin serves the admin API under /_sim/. It is meant for tests and
// people on the same machine: there is no authentication, which is one reason
// the command refuses to listen on anything but loopback by default.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/_sim/"), "/")
	s.logger.Debug("admin request", "method", r.Method, "path", r.URL.Path)
	switch path {
	case "":
		s.onlyGET(w, r, func() any {
			return map[string]any{
				"endpoints": []string{
					"GET /_sim/healthz", "GET /_sim/state", "POST /_sim/reset",
					"GET|PUT|POST|DELETE /_sim/faults", "GET|DELETE /_sim/counters",
					"GET|DELETE /_sim/requests?action=&since=&limit=", "GET /_sim/actions",
				},
				"api_url":      s.URL(),
				"metadata_url": s.URL() + "/metadata/<uhost-id>",
			}
		})
	case "healthz":
		s.onlyGET(w, r, func() any { return map[string]string{"status": "ok"} })
	case "actions":
		s.onlyGET(w, r, func() any { return Actions() })
	case "state":
		s.onlyGET(w, r, func() any { return s.Snapshot() })
	case "reset":
		if r.Method != http.MethodPost {
			adminError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		if err := s.Reset(); err != nil {
			adminError(w, http.StatusInternalServerError, err.Error())
			return
		}
		adminJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	case "faults":
		s.adminFaults(w, r)
	case "counters":
		switch r.Method {
		case http.MethodGet:
			adminJSON(w, http.StatusOK, s.Counters())
		case http.MethodDelete:
			s.mu.Lock()
			clear(s.counters)
			s.mu.Unlock()
			adminJSON(w, http.StatusOK, map[string]string{"status": "cleared"})
		default:
			adminError(w, http.StatusMethodNotAllowed, "use GET or DELETE")
		}
	case "requests":
		s.adminRequests(w, r)
	default:
		adminError(w, http.StatusNotFound, "no such admin endpoint; GET /_sim/ lists them")
	}
}

func (s *Server) onlyGET(w http.ResponseWriter, r *http.Request, body func() any) {
	if r.Method != http.MethodGet {
		adminError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	adminJSON(w, http.StatusOK, body())
}

func (s *Server) adminFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		adminJSON(w, http.StatusOK, s.Faults())
	case http.MethodPut, http.MethodPost:
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			adminError(w, http.StatusBadRequest, "read body: "+err.Error())
			return
		}
		f, err := ParseFaults(data)
		if err == nil {
			err = s.SetFaults(f)
		}
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		adminJSON(w, http.StatusOK, s.Faults())
	case http.MethodDelete:
		if err := s.SetFaults(Faults{}); err != nil {
			adminError(w, http.StatusInternalServerError, err.Error())
			return
		}
		adminJSON(w, http.StatusOK, Faults{})
	default:
		adminError(w, http.StatusMethodNotAllowed, "use GET, PUT, POST or DELETE")
	}
}

func (s *Server) adminRequests(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodDelete:
		s.mu.Lock()
		s.reqLog = nil
		s.mu.Unlock()
		adminJSON(w, http.StatusOK, map[string]string{"status": "cleared"})
		return
	default:
		adminError(w, http.StatusMethodNotAllowed, "use GET or DELETE")
		return
	}
	q := r.URL.Query()
	action := q.Get("action")
	var since int64
	limit := 0
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = strconv.ParseInt(v, 10, 64); err != nil {
			adminError(w, http.StatusBadRequest, "since: not an integer")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 {
			adminError(w, http.StatusBadRequest, "limit: not a non-negative integer")
			return
		}
	}
	out := []RequestLogEntry{}
	for _, e := range s.Requests() {
		if e.Seq <= since || (action != "" && e.Action != action) {
			continue
		}
		out = append(out, e)
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	adminJSON(w, http.StatusOK, out)
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}
