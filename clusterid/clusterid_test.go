package clusterid

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"A", true}, {"rmq-prod_01", true}, {"0", true}, {"orders.prod", true}, {"a-", true}, {"a..b", true},
		{strings.Repeat("a", MaxLen), true},
		{"", false}, {strings.Repeat("a", MaxLen+1), false}, {"-a", false}, {"_a", false}, {".a", false},
		{".", false}, {"..", false}, {"a/b", false}, {"a b", false}, {"a\\b", false}, {" a", false},
		{"a%2f", false}, {"é", false}, {"a\x00", false}, {"a\n", false}, {"a:b", false}, {"a@b", false},
	} {
		if got := Valid(tc.id); got != tc.ok {
			t.Errorf("Valid(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
}
