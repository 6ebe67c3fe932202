package testutil

import (
	"math"
	"testing"
)

func TestQuantileAndMedian(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	if got := Median(v); got != 3 {
		t.Fatalf("Median = %v, want 3", got)
	}
	if got := Median([]float64{1, 2, 3, 4}); got != 2.5 {
		t.Fatalf("Median of 4 = %v, want 2.5", got)
	}
	if got := Quantile(v, 0.25); got != 2 {
		t.Fatalf("Quantile 0.25 = %v, want 2", got)
	}
	if got := Spread(v, "%.0f"); got != "1/2/3/4/5" {
		t.Fatalf("Spread = %q", got)
	}
}

func TestRatioOfMediansCI(t *testing.T) {
	a := make([]float64, 40)
	b := make([]float64, 40)
	for i := range a {
		load := 1 + float64(i%7)/10 // the same load slows both of a round
		b[i] = 100 * load
		a[i] = 1.1 * b[i]
	}
	r, lo, hi := RatioOfMediansCI(a, b)
	if math.Abs(r-1.1) > 1e-9 || lo > r || hi < r || hi-lo > 0.1 {
		t.Fatalf("ratio %.3f [%.3f, %.3f], want about 1.1 inside a narrow interval", r, lo, hi)
	}
	r2, lo2, hi2 := RatioOfMediansCI(a, b)
	if r2 != r || lo2 != lo || hi2 != hi {
		t.Fatalf("not deterministic")
	}
	m, mlo, mhi := MedianCI(b)
	if mlo > m || mhi < m {
		t.Fatalf("median %v outside [%v, %v]", m, mlo, mhi)
	}
}
