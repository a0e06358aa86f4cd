package traffic

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Phase is one stretch of traffic: Duration long, at a rate that goes
// linearly from From to To requests per second (a constant rate when they
// are equal; no traffic at all when both are 0, for a calm stretch).
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	From     float64       `json:"from_rps"`
	To       float64       `json:"to_rps"`
}

// Profile is a sequence of phases run back to back against one target.
type Profile struct {
	Name   string  `json:"name"`
	Phases []Phase `json:"phases"`
}

// Spike is the four-phase traffic spike: a linear ramp from RampFrom to
// HoldRate, a hold at HoldRate, a spike at SpikeRate and a cool-down at
// CoolRate.
type Spike struct {
	RampFrom      float64
	RampDuration  time.Duration
	HoldRate      float64
	HoldDuration  time.Duration
	SpikeRate     float64
	SpikeDuration time.Duration
	CoolRate      float64
	CoolDuration  time.Duration
}

// Phase names of a Spike profile.
const (
	PhaseRamp  = "ramp"
	PhaseHold  = "hold"
	PhaseSpike = "spike"
	PhaseCool  = "cool-down"
)

// presets are the named spikes of --profile.
var presets = map[string]Spike{
	// Three minutes: enough for the 5-minute rate() windows of the rules to
	// see a clear step when exported with short `for:` durations.
	"spike": {RampFrom: 1, RampDuration: 30 * time.Second, HoldRate: 20, HoldDuration: 60 * time.Second,
		SpikeRate: 100, SpikeDuration: 30 * time.Second, CoolRate: 5, CoolDuration: 60 * time.Second},
	// Four seconds at low rates: a smoke test of the target and of the tool.
	"smoke": {RampFrom: 2, RampDuration: time.Second, HoldRate: 10, HoldDuration: time.Second,
		SpikeRate: 40, SpikeDuration: time.Second, CoolRate: 5, CoolDuration: time.Second},
}

// Presets lists the names Preset knows.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Preset returns a named spike ("spike", "smoke").
func Preset(name string) (Spike, error) {
	s, ok := presets[name]
	if !ok {
		return Spike{}, fmt.Errorf("profile %q: unknown, want one of %s", name, strings.Join(Presets(), ", "))
	}
	return s, nil
}

// Profile returns the spike as a profile of four phases: ramp, hold, spike,
// cool-down.
func (s Spike) Profile(name string) Profile {
	return Profile{Name: name, Phases: []Phase{
		{Name: PhaseRamp, Duration: s.RampDuration, From: s.RampFrom, To: s.HoldRate},
		{Name: PhaseHold, Duration: s.HoldDuration, From: s.HoldRate, To: s.HoldRate},
		{Name: PhaseSpike, Duration: s.SpikeDuration, From: s.SpikeRate, To: s.SpikeRate},
		{Name: PhaseCool, Duration: s.CoolDuration, From: s.CoolRate, To: s.CoolRate},
	}}
}

// Scale returns the profile with every phase duration multiplied by f
// (0.1: ten times shorter) and the rates unchanged, so a compressed run
// keeps the shape and the request rates of the full one.
func (p Profile) Scale(f float64) (Profile, error) {
	if !(f > 0) || math.IsInf(f, 1) {
		return Profile{}, fmt.Errorf("scale: want a factor > 0, got %v", f)
	}
	out := Profile{Name: p.Name, Phases: slices.Clone(p.Phases)}
	for i := range out.Phases {
		out.Phases[i].Duration = time.Duration(math.Round(float64(out.Phases[i].Duration) * f))
	}
	return out, nil
}

// Duration is the planned length of the whole profile.
func (p Profile) Duration() time.Duration {
	var d time.Duration
	for _, ph := range p.Phases {
		d += ph.Duration
	}
	return d
}

// Requests is how many requests the profile plans to send.
func (p Profile) Requests() float64 {
	var n float64
	for _, ph := range p.Phases {
		n += (ph.From + ph.To) / 2 * ph.Duration.Seconds()
	}
	return n
}

// Validate says what is wrong with the profile, naming the phase and field.
func (p Profile) Validate() error {
	if len(p.Phases) == 0 {
		return errors.New("profile: no phases")
	}
	var errs []error
	for i, ph := range p.Phases {
		name := ph.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		if ph.Duration <= 0 {
			errs = append(errs, fmt.Errorf("phase %s: duration: want > 0, got %s", name, ph.Duration))
		}
		for _, r := range []struct {
			field string
			v     float64
		}{{"from", ph.From}, {"to", ph.To}} {
			switch {
			case !(r.v >= 0) || math.IsInf(r.v, 1):
				errs = append(errs, fmt.Errorf("phase %s: %s: want a rate ≥ 0 requests/s, got %v", name, r.field, r.v))
			case ph.From != ph.To && r.v < 1:
				// vegeta's LinearPacer reads a zero start as "unlimited",
				// and below 1/s its first waits overshoot by seconds.
				errs = append(errs, fmt.Errorf("phase %s: %s: a ramp's ends must be ≥ 1 request/s, got %v", name, r.field, r.v))
			}
		}
	}
	return errors.Join(errs...)
}
