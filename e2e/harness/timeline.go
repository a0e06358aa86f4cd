package harness

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Timeline is a scenario's measured story: named moments, printed in
// order with the time since the previous one and since the first.
type Timeline struct {
	marks []mark
}

type mark struct {
	name string
	at   time.Time
}

// Mark records a moment; a zero time is ignored (the moment did not happen).
func (tl *Timeline) Mark(name string, at time.Time) {
	if at.IsZero() {
		return
	}
	tl.marks = append(tl.marks, mark{name, at})
}

// Between is the time from the first moment called from to the first
// called to (false if either is missing).
func (tl *Timeline) Between(from, to string) (time.Duration, bool) {
	var a, b time.Time
	for _, m := range tl.marks {
		if m.name == from && a.IsZero() {
			a = m.at
		}
		if m.name == to && b.IsZero() {
			b = m.at
		}
	}
	if a.IsZero() || b.IsZero() {
		return 0, false
	}
	return b.Sub(a), true
}

func (tl *Timeline) String() string {
	marks := append([]mark(nil), tl.marks...)
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].at.Before(marks[j].at) })
	var b strings.Builder
	for i, m := range marks {
		since := time.Duration(0)
		if i > 0 {
			since = m.at.Sub(marks[i-1].at)
		}
		fmt.Fprintf(&b, "  %s  %+8.3fs  (+%6.3fs)  %s\n", m.at.Format("15:04:05.000"),
			m.at.Sub(marks[0].at).Seconds(), since.Seconds(), m.name)
	}
	return b.String()
}
