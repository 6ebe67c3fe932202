// Package nsaddrbench measures the NameServer address endpoint (package
// nsaddr) against the seed's go-run server, a plain Go HTTP server returning
// a constant string, side by side in one run, and the time a Consul change
// takes to show in the served list. It is a test so it can start the real
// Consul agent; it only runs with RMQ_BENCH=1 (`make bench`, or
// bench/nsaddr/run.sh) and prints its figures on lines starting with BENCH.
package nsaddrbench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/rmqnomad/rocketmq-nomad-driver/nsaddr"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// Parameters, overridable through the environment.
type params struct {
	rounds      int           // alternated throughput rounds per server
	duration    time.Duration // of one throughput round
	connections int           // wrk connections (same for both servers)
	threads     int           // wrk threads
	rate        int           // requests/s of the fixed-rate latency run
	rateDur     time.Duration // of one fixed-rate round
	changes     int           // Consul changes timed for propagation
}

func loadParams() params {
	p := params{rounds: 10, duration: 3 * time.Second, connections: 32, threads: 1, rate: 1000, rateDur: 5 * time.Second, changes: 20}
	envInt := func(name string, dst *int) {
		if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
			*dst = v
		}
	}
	envDur := func(name string, dst *time.Duration) {
		if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
			*dst = v
		}
	}
	envInt("NSADDR_BENCH_ROUNDS", &p.rounds)
	envDur("NSADDR_BENCH_DURATION", &p.duration)
	envInt("NSADDR_BENCH_CONNECTIONS", &p.connections)
	envInt("NSADDR_BENCH_THREADS", &p.threads)
	envInt("NSADDR_BENCH_RATE", &p.rate)
	envDur("NSADDR_BENCH_RATE_DURATION", &p.rateDur)
	envInt("NSADDR_BENCH_CHANGES", &p.changes)
	return p
}

func TestBenchNsaddr(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench, or bash bench/nsaddr/run.sh)")
	}
	p := loadParams()
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Fatalf("wrk not found on PATH (Debian: apt-get install wrk): %v", err)
	}

	agent := testutil.StartConsul(t)
	for i := 1; i <= 3; i++ {
		register(t, agent.Client, fmt.Sprintf("ns%d", i), fmt.Sprintf("10.0.0.%d", i), 9876)
	}
	const list = benchList

	// Each server runs in its own child process (this test binary again),
	// so the load generators and the other server do not share its runtime.
	oursBase, oursPID := startChild(t, "nsaddr", agent.HTTPAddr)
	constBase, constPID := startChild(t, "const", "")
	oursURL, constURL := oursBase+"/rocketmq/nsaddr", constBase+"/rocketmq/nsaddr"

	for _, u := range []string{oursURL, constURL} {
		if body := waitBody(t, u, list); body != list {
			t.Fatalf("GET %s = %q, want %q", u, body, list)
		}
	}

	// 1. Throughput and latency at the same concurrency, alternated.
	var oursRuns, constRuns []wrkResult
	var ratios, cpuRatios, oursCPU, constCPU []float64
	for round := 0; round < p.rounds; round++ {
		// The order alternates, so neither server always runs second.
		order := []string{"const", "nsaddr"}
		if round%2 == 1 {
			order = []string{"nsaddr", "const"}
		}
		res := map[string]wrkResult{}
		cpu := map[string]float64{}
		for _, which := range order {
			u, pid := constURL, constPID
			if which == "nsaddr" {
				u, pid = oursURL, oursPID
			}
			before := cpuTime(t, pid)
			r := runWrk(t, wrk, u, p)
			// The server's own CPU time (user + system) per answer: what
			// an answer costs, which the machine's other load moves much
			// less than the throughput.
			cpu[which] = float64(cpuTime(t, pid)-before) / float64(time.Microsecond) / (r.rps * p.duration.Seconds())
			res[which] = r
			t.Logf("round %d %s: %.0f req/s p50 %.3f ms p99 %.3f ms, %.2f µs CPU per answer", round+1, which, r.rps, r.p50ms, r.p99ms, cpu[which])
		}
		oursRuns, constRuns = append(oursRuns, res["nsaddr"]), append(constRuns, res["const"])
		oursCPU, constCPU = append(oursCPU, cpu["nsaddr"]), append(constCPU, cpu["const"])
		// The two servers of a round run back to back, so the ratio within
		// a round is the least disturbed by the machine's other load.
		ratios = append(ratios, res["nsaddr"].rps/res["const"].rps)
		cpuRatios = append(cpuRatios, cpu["nsaddr"]/cpu["const"])
	}
	o, c := medianResult(oursRuns), medianResult(constRuns)
	mr, lo, hi := testutil.MedianCI(ratios)
	fmt.Printf("BENCH nsaddr_throughput connections=%d threads=%d rounds=%d round_s=%.0f nsaddr_rps=%.0f const_rps=%.0f ratio_of_medians=%.3f median_round_ratio=%.3f ci95=%.3f-%.3f target_ratio=0.95\n",
		p.connections, p.threads, p.rounds, p.duration.Seconds(), o.rps, c.rps, o.rps/c.rps, mr, lo, hi)
	fmt.Printf("BENCH nsaddr_throughput_round_ratios min/p25/p50/p75/max=%s all=%s\n", testutil.Spread(ratios, "%.3f"), floatList(ratios, "%.3f"))
	cr, clo, chi := testutil.MedianCI(cpuRatios)
	fmt.Printf("BENCH nsaddr_cpu_per_answer nsaddr_us=%.2f const_us=%.2f median_round_ratio=%.3f ci95=%.3f-%.3f min/p25/p50/p75/max=%s\n",
		testutil.Median(oursCPU), testutil.Median(constCPU), cr, clo, chi, testutil.Spread(cpuRatios, "%.3f"))
	fmt.Printf("BENCH nsaddr_throughput_latency nsaddr_p50_ms=%.3f nsaddr_p99_ms=%.3f const_p50_ms=%.3f const_p99_ms=%.3f\n",
		o.p50ms, o.p99ms, c.p50ms, c.p99ms)
	fmt.Printf("BENCH nsaddr_throughput_runs nsaddr_rps=%s const_rps=%s\n", rpsList(oursRuns), rpsList(constRuns))

	// 2. Latency at a fixed request rate, alternated.
	var oursLat, constLat []time.Duration
	for round := 0; round < 3; round++ {
		constLat = append(constLat, fixedRate(t, constURL, list, p.rate, p.rateDur)...)
		oursLat = append(oursLat, fixedRate(t, oursURL, list, p.rate, p.rateDur)...)
	}
	fmt.Printf("BENCH nsaddr_fixed_rate rps=%d requests_each=%d nsaddr_p50_ms=%.3f nsaddr_p99_ms=%.3f const_p50_ms=%.3f const_p99_ms=%.3f target_p99_ms=1\n",
		p.rate, len(oursLat), ms(pct(oursLat, 50)), ms(pct(oursLat, 99)), ms(pct(constLat, 50)), ms(pct(constLat, 99)))

	// 3. Propagation: a Consul change until the new list is served.
	props, answers, failures := propagation(t, agent.Client, oursURL, list, p.changes)
	fmt.Printf("BENCH nsaddr_propagation changes=%d median_ms=%.1f p90_ms=%.1f max_ms=%.1f target_ms=1000 answers_polled=%d non_200_answers=%d\n",
		len(props), ms(pct(props, 50)), ms(pct(props, 90)), ms(slices.Max(props)), answers, failures)
	fmt.Printf("BENCH nsaddr_propagation_runs ms=%s\n", durList(props))
}

// benchList is the list both servers answer.
const benchList = "10.0.0.1:9876;10.0.0.2:9876;10.0.0.3:9876"

// TestBenchChild is a benchmark server process, started by startChild with
// NSADDR_BENCH_CHILD set to "nsaddr" (the endpoint, as the plugin and
// `rmq-driver nsaddr` serve it, default cluster A) or "const" (the seed's
// go-run server: a constant string written with Fprintf, default
// http.Server). It prints "LISTEN <url>" and serves until stdin closes.
func TestBenchChild(t *testing.T) {
	which := os.Getenv("NSADDR_BENCH_CHILD")
	if which == "" {
		t.Skip("benchmark child process only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	if dir := os.Getenv("NSADDR_BENCH_CPUPROFILE"); dir != "" {
		// A CPU profile of this server over the whole run, for
		// `go tool pprof` (NSADDR_BENCH_CPUPROFILE=DIR writes DIR/<which>.pprof).
		f, err := os.Create(filepath.Join(dir, which+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	fmt.Printf("LISTEN http://%s\n", ln.Addr())
	switch which {
	case "nsaddr":
		srv, err := nsaddr.New(hclog.NewNullLogger(), nsaddr.Config{DefaultCluster: "A"}) // Consul from CONSUL_HTTP_ADDR
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Serve(ctx, ln); err != nil {
			t.Fatal(err)
		}
	case "const":
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, benchList) })
		hs := &http.Server{Handler: mux}
		go func() { <-ctx.Done(); hs.Close() }()
		if err := hs.Serve(ln); err != http.ErrServerClosed {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown child %q", which)
	}
}

// startChild starts a TestBenchChild process and returns its base URL and
// pid; the process ends with the test.
func startChild(t *testing.T, which, consulAddr string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NSADDR_BENCH_CHILD="+which, "CONSUL_HTTP_ADDR="+consulAddr)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s server: %v", which, err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return u, cmd.Process.Pid
		}
	}
	t.Fatalf("%s server exited without listening", which)
	return "", 0
}

// cpuTime is the CPU time (user + system) a process has used, from
// /proc/<pid>/stat (in clock ticks of 10 ms: USER_HZ is 100 on Linux).
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parse /proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func floatList(v []float64, format string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ",")
}

func register(t *testing.T, c *api.Client, id, addr string, port int) {
	t.Helper()
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: "nameServerA", Address: addr, Port: port,
		Check: &api.AgentServiceCheck{CheckID: "check-" + id, TTL: "1h", Status: api.HealthPassing},
	})
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
}

func get(client *http.Client, u string) (int, string, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func waitBody(t *testing.T, u, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body, err := get(http.DefaultClient, u)
		if err == nil && code == 200 && body == want {
			return body
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("%d %q %v", code, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type wrkResult struct{ rps, p50ms, p99ms float64 }

func runWrk(t *testing.T, wrk, u string, p params) wrkResult {
	t.Helper()
	out, err := exec.Command(wrk, "-t", strconv.Itoa(p.threads), "-c", strconv.Itoa(p.connections),
		"-d", fmt.Sprintf("%.0fs", p.duration.Seconds()), "--latency", u).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk %s: %v\n%s", u, err, out)
	}
	s := string(out)
	wrkRPS := regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkPct := regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	if strings.Contains(s, "Non-2xx") || strings.Contains(s, "Socket errors") {
		t.Fatalf("wrk %s saw errors:\n%s", u, s)
	}
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no Requests/sec in wrk output:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			r.p50ms = v
		} else {
			r.p99ms = v
		}
	}
	return r
}

// medianResult takes each figure's median over the runs.
func medianResult(rs []wrkResult) wrkResult {
	med := func(f func(wrkResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	return wrkResult{
		rps:   med(func(r wrkResult) float64 { return r.rps }),
		p50ms: med(func(r wrkResult) float64 { return r.p50ms }),
		p99ms: med(func(r wrkResult) float64 { return r.p99ms }),
	}
}

// median of v (the mean of the middle two for an even count).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// fixedRate sends rate requests/s for d and returns each request's latency.
// Open loop: requests are scheduled every 1/rate s and spread over 8
// kept-alive connections (each read by a minimal HTTP/1.1 reader, so the
// generator adds little). A request whose connection was still busy at its
// scheduled time is timed from that time, so a slow answer also counts
// against the requests queued behind it (no coordinated omission); one
// sent on time is timed from when it was sent, which leaves out the Go
// timer's own wake-up lag (up to 1 ms for sub-millisecond sleeps).
func fixedRate(t *testing.T, u, want string, rate int, d time.Duration) []time.Duration {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	req := []byte("GET " + pu.RequestURI() + " HTTP/1.1\r\nHost: " + pu.Host + "\r\n\r\n")
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	sched := make(chan int, n)
	errc := make(chan error, 8)
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for range 8 {
		conn, err := net.Dial("tcp", pu.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range sched {
				at := start.Add(time.Duration(i) * interval)
				if w := time.Until(at); w > 0 {
					time.Sleep(w)
					at = time.Now() // sent on time: time from sending
				}
				if _, err := conn.Write(req); err != nil {
					errc <- err
					return
				}
				body, err := readResponse(br)
				if err != nil {
					errc <- err
					return
				}
				lat[i] = time.Since(at)
				if string(body) != want {
					errc <- fmt.Errorf("answer %q, want %q", body, want)
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		sched <- i
	}
	close(sched)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatalf("fixed-rate requests to %s: %v", u, err)
	default:
	}
	return lat
}

// readResponse reads one HTTP/1.1 response with a Content-Length body and
// returns the body if the status is 200.
func readResponse(br *bufio.Reader) ([]byte, error) {
	status, err := br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return nil, fmt.Errorf("status line %q", status)
	}
	clen := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			clen, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if clen < 0 {
		return nil, fmt.Errorf("no Content-Length")
	}
	body := make([]byte, clen)
	_, err = io.ReadFull(br, body)
	return body, err
}

// propagation makes changes in Consul (alternately failing and passing one
// instance's check, and deregistering and registering another) and times
// each from just before the Consul API call to the first answer of the
// endpoint with the new list, polled every 200µs by one client. Every
// change leaves at least two instances passing, so every polled answer
// must be a 200 (old or new list); it also returns how many answers were
// polled and how many were not.
func propagation(t *testing.T, c *api.Client, u, full string, n int) (_ []time.Duration, answers, failures int) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	const without1 = "10.0.0.2:9876;10.0.0.3:9876"
	const without3 = "10.0.0.1:9876;10.0.0.2:9876"
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error { return c.Agent().UpdateTTL("check-ns1", "bench", api.HealthCritical) }, without1},
		{func() error { return c.Agent().UpdateTTL("check-ns1", "bench", api.HealthPassing) }, full},
		{func() error { return c.Agent().ServiceDeregister("ns3") }, without3},
		{func() error {
			return c.Agent().ServiceRegister(&api.AgentServiceRegistration{
				ID: "ns3", Name: "nameServerA", Address: "10.0.0.3", Port: 9876,
				Check: &api.AgentServiceCheck{CheckID: "check-ns3", TTL: "1h", Status: api.HealthPassing},
			})
		}, full},
	}
	var out []time.Duration
	for i := 0; i < n; i++ {
		st := steps[i%len(steps)]
		time.Sleep(100 * time.Millisecond) // let the watcher settle into its blocking query
		start := time.Now()
		if err := st.do(); err != nil {
			t.Fatalf("consul change: %v", err)
		}
		for {
			code, body, err := get(client, u)
			answers++
			if err != nil || code != 200 {
				failures++
			}
			if err == nil && code == 200 && body == st.want {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("change %d not served after 30s: %d %q %v", i, code, body, err)
			}
			time.Sleep(200 * time.Microsecond)
		}
		out = append(out, time.Since(start))
	}
	return out, answers, failures
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func rpsList(rs []wrkResult) string {
	var b bytes.Buffer
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%.0f", r.rps)
	}
	return b.String()
}

func durList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.1f", ms(d)))
	}
	return strings.Join(parts, ",")
}
