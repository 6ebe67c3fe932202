package ucloudsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Faults is the fault configuration: set in Config, from a file (LoadFaults),
// with SetFaults, or through PUT /_sim/faults.
type Faults struct {
	// Rules are tried in order for each request; the first one that matches
	// the action and wins its dice roll applies, the others are skipped.
	Rules []FaultRule `json:"rules,omitempty"`
	// PendingDescribes makes changes eventually consistent: after a
	// successful BindEIP, UnBindEIP, AllocateBackend, ReleaseBackend or
	// UpdateBackendAttribute, the next PendingDescribes describe calls that
	// return the changed EIP, host or VServer still show it as it was before
	// the change (DescribeEIP, DescribeUHostInstance, DescribeVServer,
	// DescribeULB). Mutating calls always see the true state.
	PendingDescribes int `json:"pending_describes,omitempty"`
	// RateLimit, when set, throttles the whole account's API calls with a
	// token bucket, as UCloud's API gateway does (RetCode 153).
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// FaultRule injects one kind of failure into the requests of one action.
//
// Effects, in this order: Latency is added first; then Timeout hangs the
// request until the client gives up; else HTTPStatus answers that HTTP status;
// else RetCode answers a UCloud error envelope. With AfterApply the action is
// carried out first and only its reply is replaced (a bind that happened, but
// whose reply was lost).
type FaultRule struct {
	// Action is an API action name (BindEIP), "Metadata" for the instance
	// metadata paths, or "*" for every API action.
	Action string `json:"action"`
	// Rate is the probability that a matching request is hit, 0 to 1;
	// absent means 1 (every matching request).
	Rate *float64 `json:"rate,omitempty"`
	// Skip lets the first Skip matching requests through untouched.
	Skip int `json:"skip,omitempty"`
	// Count stops the rule after it has hit Count requests; 0 is no limit.
	Count int `json:"count,omitempty"`

	Latency    Duration `json:"latency,omitempty"`
	Timeout    bool     `json:"timeout,omitempty"`
	HTTPStatus int      `json:"http_status,omitempty"`
	RetCode    int      `json:"ret_code,omitempty"`
	Message    string   `json:"message,omitempty"` // default "injected fault"
	AfterApply bool     `json:"after_apply,omitempty"`
}

// Duration is a time.Duration that reads and writes JSON as "250ms"; a JSON
// number is taken as milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "1.5s" or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration: %q is neither a string nor milliseconds", b)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// Rate returns a pointer to r, for FaultRule.Rate literals.
func Rate(r float64) *float64 { return &r }

// metadataAction is the pseudo action of the instance metadata paths.
const metadataAction = "Metadata"

// Validate checks the configuration: known actions, rates in [0,1], and a rule
// that does something.
func (f Faults) Validate() error {
	var errs []error
	if f.PendingDescribes < 0 {
		errs = append(errs, fmt.Errorf("pending_describes %d is negative", f.PendingDescribes))
	}
	if f.RateLimit != nil {
		if err := f.RateLimit.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	for i, r := range f.Rules {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("rules[%d] (%s): %s", i, r.Action, fmt.Sprintf(format, args...)))
		}
		if r.Action != "*" && r.Action != metadataAction && !knownAction(r.Action) {
			bad("unknown action %q (an API action, %q or \"*\")", r.Action, metadataAction)
		}
		if r.Rate != nil && (*r.Rate < 0 || *r.Rate > 1 || math.IsNaN(*r.Rate)) {
			bad("rate %v is not between 0 and 1", *r.Rate)
		}
		if r.Skip < 0 || r.Count < 0 {
			bad("skip and count must not be negative")
		}
		if r.Latency < 0 {
			bad("latency is negative")
		}
		if r.HTTPStatus != 0 && (r.HTTPStatus < 400 || r.HTTPStatus > 599) {
			bad("http_status %d is not an error status (400-599)", r.HTTPStatus)
		}
		if r.RetCode < 0 {
			bad("ret_code is negative")
		}
		if r.Latency == 0 && !r.Timeout && r.HTTPStatus == 0 && r.RetCode == 0 {
			bad("does nothing: set latency, timeout, http_status or ret_code")
		}
		if r.Action == metadataAction && (r.RetCode != 0 || r.AfterApply) {
			bad("metadata paths take latency, timeout and http_status only")
		}
	}
	return errors.Join(errs...)
}

// ParseFaults decodes and validates a fault configuration (JSON).
func ParseFaults(data []byte) (Faults, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f Faults
	if err := dec.Decode(&f); err != nil {
		return Faults{}, fmt.Errorf("decode faults: %w", err)
	}
	if err := f.Validate(); err != nil {
		return Faults{}, err
	}
	return f, nil
}

// LoadFaults reads a fault configuration file.
func LoadFaults(path string) (Faults, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Faults{}, fmt.Errorf("read faults: %w", err)
	}
	f, err := ParseFaults(data)
	if err != nil {
		return Faults{}, fmt.Errorf("faults %s: %w", path, err)
	}
	return f, nil
}

func (f Faults) clone() Faults {
	c := f
	c.Rules = make([]FaultRule, len(f.Rules))
	for i, r := range f.Rules {
		if r.Rate != nil {
			r.Rate = Rate(*r.Rate)
		}
		c.Rules[i] = r
	}
	if f.RateLimit != nil {
		rl := *f.RateLimit
		c.RateLimit = &rl
	}
	return c
}

// ruleState counts what a rule has seen since it was installed.
type ruleState struct {
	matched int
	hits    int
}

// fault is the decision for one request: what to do to it.
type fault struct {
	rule FaultRule
}

func (f *fault) label() string {
	if f == nil {
		return ""
	}
	var parts []string
	if f.rule.Latency > 0 {
		parts = append(parts, "latency")
	}
	switch {
	case f.rule.Timeout:
		parts = append(parts, "timeout")
	case f.rule.HTTPStatus != 0:
		parts = append(parts, fmt.Sprintf("http_%d", f.rule.HTTPStatus))
	case f.rule.RetCode != 0:
		parts = append(parts, fmt.Sprintf("ret_code_%d", f.rule.RetCode))
	}
	if f.rule.AfterApply {
		parts = append(parts, "after_apply")
	}
	return strings.Join(parts, "+")
}

// failing reports whether the fault replaces the reply (not only delays it).
func (f *fault) failing() bool {
	return f != nil && (f.rule.Timeout || f.rule.HTTPStatus != 0 || f.rule.RetCode != 0)
}

func (f *fault) message() string {
	if f.rule.Message != "" {
		return f.rule.Message
	}
	return "injected fault"
}

// pickFault rolls the dice for a request of the action. Server.mu is held.
func (s *Server) pickFault(action string) *fault {
	for i, r := range s.faults.Rules {
		if r.Action != action && (r.Action != "*" || action == metadataAction) {
			continue
		}
		st := &s.ruleStates[i]
		st.matched++
		if st.matched <= r.Skip {
			continue
		}
		if r.Count > 0 && st.hits >= r.Count {
			continue
		}
		if r.Rate != nil && s.dice.Float64() >= *r.Rate {
			continue
		}
		st.hits++
		return &fault{rule: r}
	}
	return nil
}
