package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// latencies holds every latency sample of a phase. Keeping all samples (a
// few hundred thousand at most) makes the percentiles exact, which matters
// for p999 on short runs.
type latencies []time.Duration

func (l latencies) sorted() latencies {
	s := slices.Clone(l)
	slices.Sort(s)
	return s
}

// pct returns the q-quantile (0 < q ≤ 1) of sorted samples: the smallest
// sample that at least q of all samples do not exceed.
func (l latencies) pct(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(l)))) - 1
	i = min(max(i, 0), len(l)-1)
	return l[i]
}

// summary is what a report prints of a sorted sample set.
type summary struct {
	N                   int
	P50, P99, P999, Max time.Duration
}

func summarize(l latencies) summary {
	s := l.sorted()
	if len(s) == 0 {
		return summary{}
	}
	return summary{N: len(s), P50: s.pct(0.50), P99: s.pct(0.99), P999: s.pct(0.999), Max: s[len(s)-1]}
}

func (s summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p99 %s  p999 %s  max %s  (n=%d)", ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max), s.N)
}

// ms prints a duration in milliseconds with three decimals, the unit every
// goal of the issue is stated in.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
