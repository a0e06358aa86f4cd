package traffic

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report as an aligned table, one line per phase and a
// total line.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	state := "complete"
	if r.Truncated {
		state = "truncated"
	}
	fmt.Fprintf(tw, "target %s  profile %s  elapsed %s  %s\n", r.Target, r.Profile, short(r.Elapsed), state)
	fmt.Fprintln(tw, "phase\tplanned\trate/s\trequests\tsent/s\tsuccess\tp50\tp95\tp99\tmax\tthroughput/s\tcodes")
	for _, p := range r.Phases {
		rate := fmt.Sprintf("%g", p.To)
		if p.From != p.To {
			rate = fmt.Sprintf("%g→%g", p.From, p.To)
		}
		row(tw, p.Name, short(p.Duration), rate, p.Figures)
	}
	var planned time.Duration
	for _, p := range r.Phases {
		planned += p.Duration
	}
	row(tw, "total", short(planned), "", r.Total)
	for _, e := range r.Total.Errors {
		fmt.Fprintf(tw, "error: %s\n", e)
	}
	return tw.Flush()
}

func row(w io.Writer, name, planned, rate string, f Figures) {
	fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%.1f\t%.2f%%\t%s\t%s\t%s\t%s\t%.1f\t%s\n",
		name, planned, rate, f.Requests, f.Rate, f.Success*100,
		short(f.P50), short(f.P95), short(f.P99), short(f.Max), f.Throughput, codes(f.StatusCodes))
}

// codes renders status counts as "200:95 500:5", in code order.
func codes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// short rounds a duration to three significant places or so, for reading.
func short(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}
