package cloudwatch

import (
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	dto "github.com/prometheus/client_model/go"
)

// CloudWatch rejects values outside ±2^360 and NaN/±Inf; a datum carrying
// one would fail the whole call, so such datums are dropped. Magnitudes
// below 2^-360 are sent as 0.
const (
	maxValue = 0x1p360
	minValue = 0x1p-360
)

// converter turns gathered families into datums. It remembers, per figure
// and source series, the counter value and histogram state CloudWatch last
// accepted, so each publish sends the increase since then: a failed call
// loses nothing, the next successful one carries its increase too.
//
// Counters start from zero: the sink reads the registry of its own process,
// whose series are created at 0 (or on their first event), so a series seen
// for the first time is sent with its whole value. A value below the one
// remembered is a reset (the series was deleted and created again): the
// increase is then the new value.
type converter struct {
	figures  []Figure
	byFamily map[string][]int
	static   []types.Dimension
	dimNames [][]*string // per figure, the dimension name of each By label
	counters []map[string]float64
	hists    []map[string]histPoint
}

// histPoint is a histogram series' state: cumulative bucket counts as
// Prometheus reports them (the +Inf bucket is count).
type histPoint struct {
	count   uint64
	sum     float64
	buckets []uint64
}

// pending is a datum and the baselines to advance once CloudWatch has it.
type pending struct {
	datum   types.MetricDatum
	size    int
	advance []advance
}

type advance struct {
	figure  int
	series  string
	counter float64
	hist    *histPoint
}

func newConverter(figures []Figure, static map[string]string) *converter {
	c := &converter{
		figures:  figures,
		byFamily: map[string][]int{},
		counters: make([]map[string]float64, len(figures)),
		hists:    make([]map[string]histPoint, len(figures)),
		dimNames: make([][]*string, len(figures)),
	}
	for i, f := range figures {
		c.byFamily[f.Metric] = append(c.byFamily[f.Metric], i)
		for _, label := range f.By {
			c.dimNames[i] = append(c.dimNames[i], aws.String(DimensionName(label)))
		}
		c.counters[i] = map[string]float64{}
		c.hists[i] = map[string]histPoint{}
	}
	for _, name := range slices.Sorted(maps.Keys(static)) {
		c.static = append(c.static, types.Dimension{Name: aws.String(name), Value: aws.String(static[name])})
	}
	return c
}

// group accumulates the series of one figure that share the kept labels.
type group struct {
	labels  []string // values of Figure.By
	value   float64
	hist    histPoint // deltas: count, sum, per-bucket (not cumulative)
	hasHist bool
	bounds  []float64
	advance []advance
	invalid bool
}

// convert returns the datums for one publish, stamped now. complete says
// the families are the whole registry: only then does a missing family or
// series drop its baselines (after a partial gather it may be back next
// time with its count, which must not be sent again).
func (c *converter) convert(families []*dto.MetricFamily, now time.Time, complete bool) []pending {
	var out []pending
	ts := aws.Time(now)
	seenFigure := make([]bool, len(c.figures))
	for _, fam := range families {
		for _, fi := range c.byFamily[fam.GetName()] {
			seenFigure[fi] = true
			out = append(out, c.convertFigure(fi, fam, ts, complete)...)
		}
	}
	// A family gone from the registry takes its baselines with it.
	for fi, seen := range seenFigure {
		if !seen && complete {
			clear(c.counters[fi])
			clear(c.hists[fi])
		}
	}
	return out
}

func (c *converter) convertFigure(fi int, fam *dto.MetricFamily, ts *time.Time, complete bool) []pending {
	f := c.figures[fi]
	groups := map[string]*group{}
	seen := map[string]bool{}
	for _, m := range fam.GetMetric() {
		if !matches(m, f.Only) {
			continue
		}
		series := seriesKey(m)
		seen[series] = true
		labels := make([]string, len(f.By))
		for i, name := range f.By {
			labels[i] = labelValue(m, name)
		}
		key := strings.Join(labels, "\xff")
		g := groups[key]
		if g == nil {
			g = &group{labels: labels}
			groups[key] = g
		}
		switch fam.GetType() {
		case dto.MetricType_COUNTER:
			v := m.GetCounter().GetValue()
			base := c.counters[fi][series]
			delta := v - base
			if v < base {
				delta = v
			}
			g.value += delta
			g.invalid = g.invalid || !valid(v)
			g.advance = append(g.advance, advance{figure: fi, series: series, counter: v})
		case dto.MetricType_GAUGE:
			g.value += m.GetGauge().GetValue()
		case dto.MetricType_UNTYPED:
			g.value += m.GetUntyped().GetValue()
		case dto.MetricType_HISTOGRAM:
			c.addHistogram(fi, series, m.GetHistogram(), g)
		default:
			// Summaries' quantiles cannot be summed or turned into deltas.
			g.invalid = true
		}
	}
	if complete {
		for series := range c.counters[fi] {
			if !seen[series] {
				delete(c.counters[fi], series)
			}
		}
		for series := range c.hists[fi] {
			if !seen[series] {
				delete(c.hists[fi], series)
			}
		}
	}

	var out []pending
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		g := groups[key]
		d := types.MetricDatum{
			MetricName: aws.String(f.Name),
			Unit:       f.Unit,
			Timestamp:  ts,
			Dimensions: c.dimensions(fi, g.labels),
		}
		switch fam.GetType() {
		case dto.MetricType_HISTOGRAM:
			if g.hist.count == 0 || g.invalid {
				// No observations since the last publish: nothing to say
				// (a statistic set needs a sample). The baseline still moves,
				// so a reset is not counted again next time.
				c.apply(g.advance)
				continue
			}
			d.StatisticValues = statistics(g.hist, g.bounds)
		default:
			if g.invalid || !valid(g.value) {
				continue
			}
			v := g.value
			if math.Abs(v) < minValue {
				v = 0 // CloudWatch's floor; smaller magnitudes are noise
			}
			d.Value = aws.Float64(v)
		}
		out = append(out, pending{datum: d, size: datumSize(d), advance: g.advance})
	}
	return out
}

func (c *converter) addHistogram(fi int, series string, h *dto.Histogram, g *group) {
	cur := histPoint{count: h.GetSampleCount(), sum: h.GetSampleSum(), buckets: make([]uint64, len(h.GetBucket()))}
	bounds := make([]float64, len(h.GetBucket()))
	for i, b := range h.GetBucket() {
		cur.buckets[i] = b.GetCumulativeCount()
		bounds[i] = b.GetUpperBound()
	}
	base, ok := c.hists[fi][series]
	if !ok || cur.count < base.count || len(base.buckets) != len(cur.buckets) {
		base = histPoint{buckets: make([]uint64, len(cur.buckets))}
	}
	// Per-bucket (not cumulative) increases, then the overflow past the
	// last bound, as one more bucket.
	deltas := make([]uint64, len(cur.buckets)+1)
	var prev uint64
	for i := range cur.buckets {
		cum := cur.buckets[i] - min(base.buckets[i], cur.buckets[i])
		deltas[i] = cum - min(prev, cum)
		prev = cum
	}
	dCount := cur.count - base.count
	deltas[len(cur.buckets)] = dCount - min(prev, dCount)

	switch {
	case !g.hasHist:
		g.hasHist = true
		g.bounds = bounds
		g.hist.buckets = deltas
	case g.bounds != nil && slices.Equal(g.bounds, bounds):
		for i := range deltas {
			g.hist.buckets[i] += deltas[i]
		}
	default:
		// Series of one family with different buckets: the bounds say
		// nothing any more, statistics falls back to the mean.
		g.bounds = nil
		g.hist.buckets = nil
	}
	g.hist.count += dCount
	g.hist.sum += cur.sum - base.sum
	g.invalid = g.invalid || !valid(cur.sum)
	g.advance = append(g.advance, advance{figure: fi, series: series, hist: &cur})
}

// statistics builds the statistic set of a histogram's increase. Count and
// Sum are exact. Prometheus keeps no minimum or maximum, so those come from
// the buckets: Minimum is the lower bound of the lowest bucket that got an
// observation (0 for the first bucket: the figures are durations),
// Maximum the upper bound of the highest one, never above Sum (for
// observations past the last bound, Sum is the bound). One observation in
// the interval is exact: Minimum = Maximum = Sum.
func statistics(h histPoint, bounds []float64) *types.StatisticSet {
	n := float64(h.count)
	mean := h.sum / n
	lo, hi := mean, mean
	first, last := -1, -1
	if len(bounds) > 0 && len(h.buckets) == len(bounds)+1 {
		for i, c := range h.buckets {
			if c > 0 {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
	}
	switch {
	case h.count == 1:
		lo, hi = h.sum, h.sum
	case first >= 0:
		lo = 0
		if first > 0 {
			lo = bounds[first-1]
		}
		hi = h.sum
		if last < len(bounds) {
			hi = min(bounds[last], h.sum)
		}
		// Keep Minimum ≤ Average ≤ Maximum whatever the data.
		lo, hi = min(lo, mean), max(hi, mean)
	}
	return &types.StatisticSet{
		SampleCount: aws.Float64(n),
		Sum:         aws.Float64(h.sum),
		Minimum:     aws.Float64(lo),
		Maximum:     aws.Float64(hi),
	}
}

func (c *converter) dimensions(fi int, labels []string) []types.Dimension {
	dims := make([]types.Dimension, 0, len(c.static)+len(labels))
	dims = append(dims, c.static...)
	for i, name := range c.dimNames[fi] {
		// CloudWatch refuses empty dimension values; an absent label is
		// an absent dimension.
		if labels[i] == "" {
			continue
		}
		dims = append(dims, types.Dimension{Name: name, Value: aws.String(labels[i])})
	}
	return dims
}

// apply advances the baselines of datums CloudWatch accepted.
func (c *converter) apply(adv []advance) {
	for _, a := range adv {
		if a.hist != nil {
			c.hists[a.figure][a.series] = *a.hist
		} else {
			c.counters[a.figure][a.series] = a.counter
		}
	}
}

func matches(m *dto.Metric, only map[string][]string) bool {
	for name, values := range only {
		if !slices.Contains(values, labelValue(m, name)) {
			return false
		}
	}
	return true
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// seriesKey identifies a series within its family (Gather sorts labels).
func seriesKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.GetLabel() {
		b.WriteString(l.GetName())
		b.WriteByte('=')
		b.WriteString(l.GetValue())
		b.WriteByte(0xff)
	}
	return b.String()
}

func valid(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && math.Abs(v) <= maxValue
}
