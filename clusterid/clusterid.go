// Package clusterid is the one rule for RocketMQ cluster ids, shared by the
// driver (a task's rocketmq.cluster) and the address endpoint (nsaddr: the
// subgroup of /rocketmq/<subgroup>, its default cluster, Consul service
// names).
//
// A valid id is safe everywhere the project puts it: a URL path, a Consul
// service name, a segment of a Consul key (owner records, tenant records,
// the seed's brokerEip/<cluster>/... layout), a log line and a metric
// label.
package clusterid

// MaxLen bounds a cluster id (and so the request path of the endpoint).
const MaxLen = 128

// Rule says what Valid accepts, for error messages.
const Rule = "1-128 ASCII letters, digits, '-', '_' or '.', starting with a letter or digit"

// Valid reports whether s is a valid cluster id: 1-128 ASCII letters,
// digits, '-', '_' or '.', starting with a letter or digit (so "." and ".."
// are not ids). Anything else (slashes, percent signs, spaces, control
// characters, non-ASCII) is refused.
func Valid(s string) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	if c := s[0]; c == '-' || c == '_' || c == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !Char(s[i]) {
			return false
		}
	}
	return true
}

// Char reports whether c may appear in a cluster id: an ASCII letter or
// digit, '-', '_' or '.'.
func Char(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}
