//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// Tracing a start: where the time from `nomad job run` to the Started event
// goes, for both drivers alike. The task events give the client's side
// (Received, Task Setup, Started); the docker driver's own log lines, which
// both plugins print (ours embeds it) and the client forwards into its log,
// give the container's create and start; our "started rocketmq task" line
// gives our own work before and after docker's StartTask, measured in the
// plugin. Runs never overlap (runStarts waits for each stop), so every
// driver line between a run's Task Setup and Started events is that run's.

// startRun is one traced start.
type startRun struct {
	allocID, driver string

	submit, received, setup, started time.Time // job and task events
	imageRef, created, running       time.Time // docker driver log lines (ms)
	prepare, finish                  time.Duration
	own                              bool // prepare and finish were found
}

// Phases of a start, in order; each is the time from the previous mark.
var startPhases = []struct {
	name, what string
	from, to   func(*startRun) time.Time
}{
	{"schedule", "submit to the client receiving the allocation (servers, scheduler, client pull)",
		func(r *startRun) time.Time { return r.submit }, func(r *startRun) time.Time { return r.received }},
	{"alloc_hooks", "received to task setup (alloc dir, alloc runner hooks)",
		func(r *startRun) time.Time { return r.received }, func(r *startRun) time.Time { return r.setup }},
	{"to_driver", "task setup to the docker driver's image check (task hooks incl. logmon, config parse, plugin RPC, our prepare)",
		func(r *startRun) time.Time { return r.setup }, func(r *startRun) time.Time { return r.imageRef }},
	{"create", "image check to container created (dockerd)",
		func(r *startRun) time.Time { return r.imageRef }, func(r *startRun) time.Time { return r.created }},
	{"start", "created to container started and inspected (dockerd)",
		func(r *startRun) time.Time { return r.created }, func(r *startRun) time.Time { return r.running }},
	{"after_start", "container started to the Started event (docker_logger, our finish, RPC reply, client state write)",
		func(r *startRun) time.Time { return r.running }, func(r *startRun) time.Time { return r.started }},
}

var (
	logLine = regexp.MustCompile(`^\s*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) \[\w+\]\s+(\S+): (.*)$`)
	// Durations cross the plugin boundary as JSON numbers (ns), or as
	// Go duration strings.
	ownFields = regexp.MustCompile(`\b(prepare|finish)="?([0-9.]+(?:e[+-]?[0-9]+)?(?:[µnm]?s)?)"?`)
)

// traceStarts fills the log-derived marks of every run from the client's
// log.
func traceStarts(t *testing.T, logPath string, runs map[string][]startRun) {
	t.Helper()
	if keep := os.Getenv("RMQ_BENCH_KEEP_LOG"); keep != "" {
		// The client's log, for reading a trace by hand.
		if data, err := os.ReadFile(logPath); err == nil {
			_ = os.WriteFile(keep, data, 0o644)
		}
	}
	type entry struct {
		at          time.Time
		logger, msg string
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var entries []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := logLine.FindStringSubmatch(sc.Text())
		if m == nil || !strings.HasPrefix(m[2], "client.driver_mgr.") {
			continue
		}
		at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", m[1])
		if err != nil {
			continue
		}
		entries = append(entries, entry{at: at, logger: m[2], msg: m[3]})
	}
	for name, rs := range runs {
		for i := range rs {
			r := &rs[i]
			logger := "client.driver_mgr.docker"
			if r.driver == "rocketmq" {
				logger = "client.driver_mgr.rmq-driver"
			}
			from, to := r.setup.Truncate(time.Millisecond), r.started.Add(time.Millisecond)
			first := func(prefix string) time.Time {
				for _, e := range entries {
					if e.logger == logger && !e.at.Before(from) && !e.at.After(to) && strings.HasPrefix(e.msg, prefix) {
						return e.at
					}
				}
				return time.Time{}
			}
			r.imageRef, r.created, r.running = first("image reference count incremented:"), first("created container:"), first("started container:")
			for _, e := range entries {
				if e.logger != logger || e.at.Before(from) || e.at.After(to) || !strings.HasPrefix(e.msg, "started rocketmq task:") {
					continue
				}
				for _, m := range ownFields.FindAllStringSubmatch(e.msg, -1) {
					d, err := time.ParseDuration(m[2])
					if err != nil {
						ns, _ := strconv.ParseFloat(m[2], 64)
						d = time.Duration(ns)
					}
					if m[1] == "prepare" {
						r.prepare = d
					} else {
						r.finish = d
					}
					r.own = true
				}
				break
			}
			if r.imageRef.IsZero() || r.created.IsZero() || r.running.IsZero() {
				t.Logf("%s run %d (alloc %s): docker driver log lines not all found; phases left out", name, i, r.allocID)
			}
		}
	}
}

// printPhases prints each case's median per phase, and our own work.
func printPhases(mode string, runs map[string][]startRun, cases []startCase) {
	for _, sc := range cases {
		var parts []string
		for _, p := range startPhases {
			var v []float64
			for i := range runs[sc.name] {
				r := &runs[sc.name][i]
				from, to := p.from(r), p.to(r)
				if from.IsZero() || to.IsZero() {
					continue
				}
				v = append(v, ms(to.Sub(from)))
			}
			parts = append(parts, fmt.Sprintf("%s_ms=%.1f", p.name, testutil.Median(v)))
		}
		fmt.Printf("BENCH startup_phases mode=%s case=%s %s (medians)\n", mode, sc.name, strings.Join(parts, " "))
		var prep, fin []float64
		for _, r := range runs[sc.name] {
			if r.own {
				prep, fin = append(prep, ms(r.prepare)), append(fin, ms(r.finish))
			}
		}
		if len(prep) > 0 {
			fmt.Printf("BENCH startup_own mode=%s case=%s runs=%d prepare_ms=%.3f finish_ms=%.3f (medians, in the plugin: before and after docker's StartTask)\n",
				mode, sc.name, len(prep), testutil.Median(prep), testutil.Median(fin))
		}
	}
	legendOnce.Do(func() {
		for _, p := range startPhases {
			fmt.Printf("BENCH startup_phase_legend %s: %s\n", p.name, p.what)
		}
	})
}

var legendOnce sync.Once
