package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Alloc is the part of a Nomad allocation the tests read.
type Alloc struct {
	ID            string
	Name          string
	NodeID        string
	NodeName      string
	ClientStatus  string
	DesiredStatus string
	TaskStates    map[string]struct {
		State  string
		Failed bool
		Events []struct {
			Type string
			// Time is when it happened, in Unix nanoseconds.
			Time            int64
			DisplayMessage  string
			Message         string
			DriverError     string
			ValidationError string
			SetupError      string
			Details         map[string]string
		}
	}
	AllocatedResources *struct {
		Shared struct {
			Ports []struct {
				Label  string
				Value  int
				To     int
				HostIP string
			}
		}
	}
}

// JobAllocs returns the allocations of a job, with task states.
func (c *NomadCluster) JobAllocs(jobID string) ([]Alloc, error) {
	var stubs []struct{ ID string }
	if err := c.GetJSON("/v1/job/"+jobID+"/allocations", &stubs); err != nil {
		return nil, err
	}
	out := make([]Alloc, 0, len(stubs))
	for _, s := range stubs {
		var a Alloc
		if err := c.GetJSON("/v1/allocation/"+s.ID, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// WaitRunning waits until the job has n allocations running (desired run)
// and returns them.
func (c *NomadCluster) WaitRunning(t testing.TB, jobID string, n int, timeout time.Duration) []Alloc {
	t.Helper()
	var last []Alloc
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		allocs, err := c.JobAllocs(jobID)
		if err == nil {
			last = allocs
			var running []Alloc
			for _, a := range allocs {
				if a.DesiredStatus == "run" && a.ClientStatus == "running" {
					running = append(running, a)
				}
			}
			if len(running) == n {
				return running
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", " ")
	t.Fatalf("job %s: want %d running allocs after %s; allocs:\n%s", jobID, n, timeout, b)
	return nil
}

// RunJob writes the job spec to a file and runs `nomad job run -detach`.
func (c *NomadCluster) RunJob(t testing.TB, spec string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "job.nomad.hcl")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatalf("write job: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.Nomad(ctx, "job", "run", "-detach", path); err != nil {
		t.Fatalf("job run: %v\n%s", err, out)
	}
}

// RunJobFile runs `nomad job run -detach` on a job file with -var values.
func (c *NomadCluster) RunJobFile(t testing.TB, path string, vars map[string]string) {
	t.Helper()
	args := []string{"job", "run", "-detach"}
	for _, k := range sortedKeys(vars) {
		args = append(args, "-var", k+"="+vars[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.Nomad(ctx, append(args, path)...); err != nil {
		t.Fatalf("job run %s: %v\n%s", path, err, out)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PortOf returns the host port allocated for label in alloc a.
func (a *Alloc) PortOf(label string) (int, bool) {
	if a.AllocatedResources == nil {
		return 0, false
	}
	for _, p := range a.AllocatedResources.Shared.Ports {
		if p.Label == label {
			return p.Value, true
		}
	}
	return 0, false
}

// AllocReport describes the jobs' allocations for a failing test: each
// one's node and status and its tasks' last events, with the errors.
func (c *NomadCluster) AllocReport(jobIDs ...string) string {
	var b strings.Builder
	for _, job := range jobIDs {
		allocs, err := c.JobAllocs(job)
		if err != nil {
			fmt.Fprintf(&b, "job %s: %v\n", job, err)
			continue
		}
		for _, a := range allocs {
			fmt.Fprintf(&b, "%s %s on %s: %s (desired %s)\n", a.Name, a.ID[:8], a.NodeName, a.ClientStatus, a.DesiredStatus)
			for task, ts := range a.TaskStates {
				evs := ts.Events
				if len(evs) > 5 {
					evs = evs[len(evs)-5:]
				}
				for _, ev := range evs {
					fmt.Fprintf(&b, "  %s %s %s: %s %s%s%s%s\n", task, time.Unix(0, ev.Time).UTC().Format("15:04:05.000"),
						ev.Type, ev.DisplayMessage, ev.Message, ev.DriverError, ev.SetupError, ev.ValidationError)
				}
			}
		}
	}
	return b.String()
}
