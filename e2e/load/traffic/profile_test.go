package traffic

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPresets(t *testing.T) {
	if got := strings.Join(Presets(), ","); got != "smoke,spike" {
		t.Errorf("Presets() = %s", got)
	}
	for _, name := range Presets() {
		s, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		p := s.Profile(name)
		if err := p.Validate(); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
		var names []string
		for _, ph := range p.Phases {
			names = append(names, ph.Name)
		}
		if strings.Join(names, ",") != "ramp,hold,spike,cool-down" {
			t.Errorf("preset %s phases %v", name, names)
		}
		if p.Phases[0].To != p.Phases[1].From {
			t.Errorf("preset %s: the ramp ends at %v, the hold is at %v", name, p.Phases[0].To, p.Phases[1].From)
		}
	}
	spike, _ := Preset("spike")
	if p := spike.Profile("spike"); p.Duration() != 3*time.Minute || p.Requests() != 10.5*30+20*60+100*30+5*60 {
		t.Errorf("spike: %v, %v requests", p.Duration(), p.Requests())
	}
	if _, err := Preset("nope"); err == nil || !strings.Contains(err.Error(), "smoke, spike") {
		t.Errorf("unknown preset: %v", err)
	}
}

func TestScale(t *testing.T) {
	s, _ := Preset("spike")
	p, err := s.Profile("spike").Scale(0.1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Duration() != 18*time.Second || p.Phases[0].Duration != 3*time.Second || p.Phases[2].To != 100 {
		t.Errorf("scaled: %+v", p)
	}
	if orig := s.Profile("spike"); orig.Phases[0].Duration != 30*time.Second {
		t.Error("Scale changed the original's phases")
	}
	for _, f := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := s.Profile("x").Scale(f); err == nil {
			t.Errorf("Scale(%v) accepted", f)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		ph   Phase
		want string // "" = valid
	}{
		{Phase{Name: "a", Duration: time.Second, From: 5, To: 5}, ""},
		{Phase{Name: "calm", Duration: time.Second}, ""},
		{Phase{Name: "r", Duration: time.Second, From: 1, To: 50}, ""},
		{Phase{Name: "down", Duration: time.Second, From: 50, To: 1}, ""},
		{Phase{Name: "slow", Duration: time.Second, From: 0.2, To: 0.2}, ""},
		{Phase{Name: "z", Duration: 0, From: 1, To: 1}, "phase z: duration"},
		{Phase{Duration: -time.Second, From: 1, To: 1}, "phase #1: duration"},
		{Phase{Name: "n", Duration: time.Second, From: -1, To: -1}, "phase n: from"},
		{Phase{Name: "nan", Duration: time.Second, From: 1, To: math.NaN()}, "phase nan: to"},
		{Phase{Name: "inf", Duration: time.Second, From: math.Inf(1), To: math.Inf(1)}, "phase inf: from"},
		{Phase{Name: "r0", Duration: time.Second, From: 0, To: 20}, "phase r0: from: a ramp's ends must be ≥ 1"},
		{Phase{Name: "r1", Duration: time.Second, From: 20, To: 0.5}, "phase r1: to: a ramp's ends must be ≥ 1"},
	} {
		err := Profile{Phases: []Phase{tc.ph}}.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.ph, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", tc.ph, err, tc.want)
		}
	}
	if err := (Profile{}).Validate(); err == nil {
		t.Error("empty profile accepted")
	}
}

// The ramp pacer sends its n-th hit when the planned count reaches n: over
// the whole ramp, floor(planned) hits, in increasing time, none late.
func TestRampPacerExact(t *testing.T) {
	for _, ph := range []Phase{
		{Duration: 1500 * time.Millisecond, From: 1, To: 20},
		{Duration: 30 * time.Second, From: 1, To: 20},
		{Duration: 2 * time.Second, From: 50, To: 1},
		{Duration: 10 * time.Second, From: 3, To: 3.0000001},
	} {
		p := pacerFor(ph).(rampPacer)
		planned := (ph.From + ph.To) / 2 * ph.Duration.Seconds()
		var hits uint64
		var last time.Duration
		for {
			// Ask as vegeta does right after the previous hit went out.
			wait, stop := p.Pace(last, hits)
			if stop {
				break
			}
			due := last + wait
			if due > ph.Duration {
				break
			}
			if wait < 0 {
				t.Fatalf("%+v: hit %d due %v before the previous one at %v", ph, hits+1, due, last)
			}
			// The planned count at the due time is the hit's number.
			x := due.Seconds()
			if h := ph.From*x + p.Slope*x*x/2; math.Abs(h-float64(hits+1)) > 1e-6 {
				t.Fatalf("%+v: hit %d due at %v where the plan counts %v", ph, hits+1, due, h)
			}
			hits++
			last = due
		}
		if want := uint64(math.Floor(planned + 1e-6)); hits != want {
			t.Errorf("%+v: %d hits, want floor(%v) = %d", ph, hits, planned, want)
		}
		if r := p.Rate(ph.Duration); math.Abs(r-ph.To) > 1e-6 {
			t.Errorf("%+v: rate at the end %v, want %v", ph, r, ph.To)
		}
	}
}
