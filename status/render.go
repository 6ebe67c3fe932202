package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// RenderJSON writes the report as an indented JSON document.
func RenderJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write status report as json: %w", err)
	}
	return nil
}

// Render writes the report for a terminal: per cluster its namespace and
// jobs, its NameServer service and a table of its bindings, then one note per
// binding that is not ok saying why and what the reconciler will do.
func Render(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	scope := "all clusters"
	if r.ClusterFilter != "" {
		scope = "cluster " + r.ClusterFilter
	}
	ew.printf("rocketmq bindings (%s, consul kv prefix %s, %s)\n", scope, r.KVPrefix, r.GeneratedAt.Format("2006-01-02T15:04:05Z"))
	if !r.CloudAccess {
		ew.printf("no UCloud access: cloud states are unknown and drift cannot be seen\n")
	}
	if len(r.Clusters) == 0 {
		ew.printf("\nno clusters: no tenant, owner or replica records under %s/\n", r.KVPrefix)
	}
	for _, c := range r.Clusters {
		ew.printf("\ncluster %s: %s\n", c.Name, tenantLine(c.Tenant))
		if c.Tenant != nil && c.Tenant.State != StateOK {
			ew.printf("  %s claim: %s\n", c.Tenant.State, c.Tenant.Action)
		}
		if c.NameServers != nil {
			ew.printf("  nameservers: %s\n", serviceLine(*c.NameServers))
		}
		if len(c.Bindings) == 0 {
			ew.printf("  no bindings\n")
		} else {
			table(ew, c.Bindings)
			notes(ew, c.Bindings)
		}
		if len(c.Replicas) > 0 {
			replicaTable(ew, c.Replicas)
		}
	}
	if len(r.Unowned) > 0 {
		ew.printf("\nnot in any cluster (undecodable records, resources without a record):\n")
		table(ew, r.Unowned)
		notes(ew, r.Unowned)
	}
	if len(r.Errors) > 0 {
		ew.printf("\ncould not observe:\n")
		for _, e := range r.Errors {
			ew.printf("  %s: %s\n", e.Source, e.Message)
		}
	}
	ew.printf("\n%s\n", summary(r))
	return ew.err
}

// tenantLine is e.g. "namespace default, jobs rocketmq-namesrv (exists),
// rocketmq-broker (unknown to nomad)".
func tenantLine(t *Tenant) string {
	if t == nil {
		return "no tenant record (private mode binds nothing; or records of an older version)"
	}
	if len(t.Jobs) == 0 {
		return "namespace " + t.Namespace + ", no jobs recorded"
	}
	parts := make([]string, 0, len(t.Jobs))
	for _, j := range t.Jobs {
		nomad := "could not ask nomad"
		switch {
		case j.Exists != nil && *j.Exists:
			nomad = "exists"
		case j.Exists != nil:
			nomad = "unknown to nomad"
		}
		parts = append(parts, j.JobID+" ("+nomad+")")
	}
	what := "jobs "
	if len(parts) == 1 {
		what = "job "
	}
	return "namespace " + t.Namespace + ", " + what + strings.Join(parts, ", ")
}

func serviceLine(s Service) string {
	if s.Error != "" {
		return "consul service " + s.Name + ": unknown (could not ask consul)"
	}
	if len(s.Instances) == 0 {
		return "consul service " + s.Name + ": no instances"
	}
	parts := make([]string, 0, len(s.Instances))
	for _, in := range s.Instances {
		parts = append(parts, in.Address+":"+strconv.Itoa(in.Port)+" "+in.Status)
	}
	return "consul service " + s.Name + ": " + strings.Join(parts, ", ")
}

func table(ew *errWriter, bs []Binding) {
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ROLE\tIDX\tKIND\tRESOURCE\tALLOC\tNOMAD\tUHOST\tCLOUD\tSTATE")
	for _, b := range bs {
		role, idx := b.Role, strconv.Itoa(b.AllocIndex)
		if !b.Recorded || b.Kind == "record" {
			role, idx = "-", "-"
		}
		res := b.Resource
		if b.Kind == "record" {
			res = b.Key
		}
		host := b.UHostID
		if b.Port != 0 {
			host += ":" + strconv.Itoa(b.Port)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", role, idx, b.Kind, dash(res), dash(short(b.AllocID)),
			dash(b.Nomad), dash(host), dash(b.Cloud.Summary), b.State)
	}
	_ = tw.Flush() // errors are kept by ew
}

func notes(ew *errWriter, bs []Binding) {
	for _, b := range bs {
		if b.State == StateOK || b.State == StateFree {
			continue
		}
		what := b.Kind + " " + b.Resource
		switch {
		case b.Recorded && b.Resource == "":
			what = b.Slot + " record " + b.Key
		case b.Kind == "record":
			what = "record " + b.Key
		case b.Recorded:
			what = b.Slot + " " + what
		case b.Kind == "backend":
			what += " in " + b.ULB + "/" + b.VServer
		}
		ew.printf("  %s: %s: %s\n", b.State, what, b.Reason)
		ew.printf("    -> %s\n", b.Action)
	}
}

func summary(r Report) string {
	c := r.Counts
	s := fmt.Sprintf("%s, %s: %d ok, %d drift, %d orphan, %d collect, %d releasing, %d unknown",
		plural(len(r.Clusters), "cluster"), plural(c.Bindings, "binding"), c.OK, c.Drift, c.Orphan, c.Collect, c.Releasing, c.Unknown)
	if c.Free > 0 {
		s += fmt.Sprintf(", %d free", c.Free)
	}
	if c.ClaimsCollect > 0 {
		s += "; " + plural(c.ClaimsCollect, "cluster claim") + " to collect"
	}
	switch {
	case len(r.Errors) > 0:
		return s + "\nincomplete: some state could not be observed (see above)"
	case r.Converged:
		return s + "\nconverged"
	}
	return s + "\nnot converged"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = fmt.Errorf("write status report: %w", err)
	}
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
