package testutil

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Statistics for the benchmarks: medians, and bootstrap intervals of ratios
// measured side by side. The machines are shared and noisy, so a benchmark
// reports an interval, not one number.

// Median of v (the mean of the middle two for an even count); 0 when empty.
func Median(v []float64) float64 { return Quantile(v, 0.5) }

// Quantile of v by linear interpolation between order statistics (q in
// [0, 1]); 0 when v is empty.
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// bootstrapResamples is the number of resamples of every interval; with a
// fixed seed the same runs always give the same interval.
const bootstrapResamples = 10000

// RatioOfMediansCI is median(a)/median(b) with its 95% percentile bootstrap
// interval. a[i] and b[i] must be measured in the same round (back to back):
// rounds are resampled as pairs, which keeps what the machine's load did to
// both in that round together.
func RatioOfMediansCI(a, b []float64) (ratio, lo, hi float64) {
	if len(a) != len(b) || len(a) == 0 {
		panic(fmt.Sprintf("RatioOfMediansCI: %d and %d runs", len(a), len(b)))
	}
	ratio = Median(a) / Median(b)
	r := rand.New(rand.NewPCG(1, 2))
	ra, rb := make([]float64, len(a)), make([]float64, len(b))
	stats := make([]float64, bootstrapResamples)
	for k := range stats {
		for i := range ra {
			j := r.IntN(len(a))
			ra[i], rb[i] = a[j], b[j]
		}
		stats[k] = Median(ra) / Median(rb)
	}
	return ratio, Quantile(stats, 0.025), Quantile(stats, 0.975)
}

// MedianCI is the median of v with its 95% percentile bootstrap interval.
func MedianCI(v []float64) (med, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	r := rand.New(rand.NewPCG(3, 4))
	rv := make([]float64, len(v))
	stats := make([]float64, bootstrapResamples)
	for k := range stats {
		for i := range rv {
			rv[i] = v[r.IntN(len(v))]
		}
		stats[k] = Median(rv)
	}
	return Median(v), Quantile(stats, 0.025), Quantile(stats, 0.975)
}

// Spread formats v's minimum, quartiles and maximum ("min/p25/p50/p75/max").
func Spread(v []float64, format string) string {
	parts := make([]string, 0, 5)
	for _, q := range []float64{0, 0.25, 0.5, 0.75, 1} {
		parts = append(parts, fmt.Sprintf(format, Quantile(v, q)))
	}
	return strings.Join(parts, "/")
}
