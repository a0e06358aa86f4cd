// Package traffic drives HTTP traffic shaped as a profile of phases (ramp,
// hold, spike, cool-down) at one target with vegeta's attack library, and
// reports per-phase figures. It is the load of the end-to-end scenarios and
// of `make demo`, and the library behind `go run ./e2e/load`.
//
// Every phase is one vegeta attack: a ConstantPacer for a steady rate, a
// LinearPacer (with an exact Pace, see rampPacer) for a ramp. All phases share one HTTP client, so
// keep-alive connections carry over from one phase to the next the way a
// real client population's would.
//
// A run is strictly bounded in time: Options.MaxDuration is a hard cap on
// the whole run, enforced on the pacer's waits (vegeta sleeps between hits
// without looking at a stop signal; the pacer here sleeps on a timer that
// the cap interrupts) and on the requests in flight (their context is
// cancelled), so Run returns within milliseconds of the cap.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// DefaultTimeout bounds one request when Options.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// maxErrors bounds the distinct error strings kept per figure set.
const maxErrors = 10

// Options tune a run; the zero value is usable.
type Options struct {
	// MaxDuration is the hard cap on the whole run. 0: the profile's
	// duration plus Timeout, the longest a run that goes to plan can take.
	MaxDuration time.Duration
	// Timeout bounds one request, from sending to the body read. 0: DefaultTimeout.
	Timeout time.Duration
	// MaxWorkers caps the requests in flight per phase (vegeta's workers);
	// past it the rate falls behind. 0: no cap.
	MaxWorkers uint64
	// PhaseStart and PhaseDone, when set, are called on Run's goroutine as
	// each phase starts sending and when its last answer is in (for
	// progress lines and timelines). Phases start on their planned schedule,
	// so with slow answers a phase's PhaseDone can follow the next one's
	// PhaseStart.
	PhaseStart func(Phase)
	PhaseDone  func(PhaseReport)
}

// Figures describe a set of requests.
type Figures struct {
	// Requests is how many requests were sent.
	Requests uint64 `json:"requests"`
	// Success is the fraction of requests answered 2xx or 3xx, 0..1.
	Success float64 `json:"success"`
	// Rate is requests sent per second; Throughput, successful answers per
	// second (vegeta's definitions).
	Rate       float64 `json:"rate"`
	Throughput float64 `json:"throughput"`
	// Latencies, from sending to the body read.
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P95  time.Duration `json:"p95_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	// StatusCodes counts answers by code; "0" counts requests that got no
	// answer (connection refused, timeout, cut by the cap).
	StatusCodes map[string]int `json:"status_codes"`
	// Errors holds up to 10 distinct error strings (non-2xx/3xx statuses included).
	Errors []string `json:"errors,omitempty"`
}

// PhaseReport is the plan of a phase and what happened in it.
type PhaseReport struct {
	Phase
	// Elapsed runs from the phase's start to its last answer (beyond
	// Duration by the slowest answer's latency).
	Elapsed time.Duration `json:"elapsed_ns"`
	Figures
}

// Report is the outcome of a run.
type Report struct {
	Target  string        `json:"target"`
	Profile string        `json:"profile"`
	Phases  []PhaseReport `json:"phases"` // the phases that started, in order
	Total   Figures       `json:"total"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Truncated says the run ended before the profile did: the hard cap
	// (Options.MaxDuration) or ctx ended it.
	Truncated bool `json:"truncated"`
}

// Run sends GET requests to target shaped by p and returns the figures. It
// returns when the profile is done or at Options.MaxDuration, whichever
// comes first (Report.Truncated is then set, and the error is nil). If ctx
// ends first, it returns the report so far and ctx's error.
func Run(ctx context.Context, p Profile, target string, opt Options) (Report, error) {
	rep := Report{Target: target, Profile: p.Name}
	if err := p.Validate(); err != nil {
		return rep, err
	}
	if err := checkTarget(target); err != nil {
		return rep, err
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.MaxDuration <= 0 {
		opt.MaxDuration = p.Duration() + opt.Timeout
	}

	began := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, opt.MaxDuration)
	defer cancel()
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: opt.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 10000, // vegeta's default: every worker keeps its connection
		IdleConnTimeout:     90 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: opt.Timeout, Transport: cancelTransport{ctx: runCtx, base: transport}}
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: target})

	total := &lockedMetrics{}
	type finished struct {
		i   int
		rep PhaseReport
	}
	done := make(chan finished)
	reports := make([]PhaseReport, 0, len(p.Phases))
	// Phase i starts at its planned offset from the run's start, whether or
	// not the previous phase's answers are all in: a client population does
	// not pause while slow answers arrive (with 2.5 s injected, each phase
	// would otherwise push the rest of the story 2.5 s later). Only the
	// sending of phases never overlaps; their answers may.
	next, running := 0, 0
	var offset time.Duration
	start := time.NewTimer(0)
	defer start.Stop()
	capped := runCtx.Done()
	for (next < len(p.Phases) && capped != nil) || running > 0 {
		startC := start.C
		if next == len(p.Phases) || capped == nil {
			startC = nil // nothing left to start, or past the cap
		}
		select {
		case <-startC:
			i, ph := next, p.Phases[next]
			if opt.PhaseStart != nil {
				opt.PhaseStart(ph)
			}
			reports = append(reports, PhaseReport{Phase: ph})
			go func() {
				done <- finished{i, runPhase(runCtx, client, targeter, ph, opt.MaxWorkers, total)}
			}()
			next++
			running++
			offset += ph.Duration
			start.Reset(time.Until(began.Add(offset)))
		case f := <-done:
			running--
			reports[f.i] = f.rep
			if opt.PhaseDone != nil {
				opt.PhaseDone(f.rep)
			}
		case <-capped:
			// No phase starts any more; the running ones stop on runCtx.
			capped = nil
		}
	}
	rep.Phases = reports
	rep.Total = total.figures()
	rep.Elapsed = time.Since(began)
	// A phase cut short leaves runCtx done; one that ended on plan does not,
	// unless the cap fell exactly on the profile's end.
	rep.Truncated = runCtx.Err() != nil
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("traffic to %s: %w", target, err)
	}
	return rep, nil
}

// lockedMetrics is the run's total, fed by phases whose answers overlap.
type lockedMetrics struct {
	mu sync.Mutex
	m  vegeta.Metrics
}

func (l *lockedMetrics) add(r *vegeta.Result) {
	l.mu.Lock()
	l.m.Add(r)
	l.mu.Unlock()
}

func (l *lockedMetrics) figures() Figures {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m.Close()
	return figures(&l.m)
}

// runPhase sends the phase's requests and returns once every answer is in
// (or ctx ended).
func runPhase(ctx context.Context, client *http.Client, targeter vegeta.Targeter, ph Phase, maxWorkers uint64, total *lockedMetrics) PhaseReport {
	began := time.Now()
	var m vegeta.Metrics
	if ph.From == 0 && ph.To == 0 {
		// A calm stretch: no requests, just time passing.
		t := time.NewTimer(ph.Duration)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	} else {
		opts := []func(*vegeta.Attacker){vegeta.Client(client), vegeta.MaxBody(1 << 10)}
		if maxWorkers > 0 {
			opts = append(opts, vegeta.MaxWorkers(maxWorkers))
		}
		atk := vegeta.NewAttacker(opts...)
		// Stop unblocks the attack loop when it waits for a free worker.
		stop := context.AfterFunc(ctx, func() { atk.Stop() })
		pacer := boundedPacer{Pacer: pacerFor(ph), ctx: ctx, end: ph.Duration}
		for res := range atk.Attack(targeter, pacer, ph.Duration, ph.Name) {
			m.Add(res)
			total.add(res)
		}
		stop()
	}
	m.Close()
	return PhaseReport{Phase: ph, Elapsed: time.Since(began), Figures: figures(&m)}
}

// pacerFor turns a phase's rates into a vegeta pacer. Rates are expressed
// as one hit per 1/rate so that fractional rates keep their precision.
func pacerFor(ph Phase) vegeta.Pacer {
	if ph.From == ph.To {
		return vegeta.ConstantPacer{Freq: 1, Per: per(ph.To)}
	}
	return rampPacer{LinearPacer: vegeta.LinearPacer{
		StartAt: vegeta.Rate{Freq: 1, Per: per(ph.From)},
		Slope:   (ph.To - ph.From) / ph.Duration.Seconds(),
	}}
}

func per(rate float64) time.Duration {
	return time.Duration(float64(time.Second) / rate)
}

// rampPacer is vegeta's LinearPacer with an exact Pace. LinearPacer waits
// (hits+1-expected) intervals at the current rate, which on a steep ramp
// from a low start overshoots by seconds (1→20/s over 1.5 s: its second wait
// is 2 s, where the second hit is due at 0.49 s) and then bursts to catch
// up. Here the n-th hit is sent when the planned count H(t) = b·t + a·t²/2
// (b the start rate, a the slope) reaches n, as ConstantPacer does for a flat
// rate, so a ramp sends floor(H(duration)) hits, evenly spread.
type rampPacer struct {
	vegeta.LinearPacer
}

func (p rampPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	a := p.Slope
	b := p.StartAt.Rate(0)
	n := float64(hits + 1)
	disc := b*b + 2*a*n
	if disc < 0 {
		// A falling ramp that would reach 0/s before the n-th hit.
		return 0, true
	}
	// The root of a/2·t² + b·t − n = 0 written without cancellation, and
	// valid for a = 0 and a < 0 alike.
	due := 2 * n / (b + math.Sqrt(disc))
	return time.Duration(due*float64(time.Second)) - elapsed, false
}

// boundedPacer sleeps the wrapped pacer's waits itself, on a timer that ctx
// interrupts, and returns a zero wait to vegeta: vegeta's own sleep cannot be
// interrupted, which at low rates would let a stopped attack linger for a
// whole interval. It also stops at the phase's end instead of sending one
// last hit after it.
type boundedPacer struct {
	vegeta.Pacer
	ctx context.Context
	end time.Duration
}

func (p boundedPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	wait, stop := p.Pacer.Pace(elapsed, hits)
	if stop || elapsed+wait > p.end || p.ctx.Err() != nil {
		return 0, true
	}
	if wait <= 0 {
		return 0, false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, false
	case <-p.ctx.Done():
		return 0, true
	}
}

// cancelTransport ties every request to the run's context: vegeta builds
// its requests without one, and requests in flight at the hard cap must end
// with it, not at their timeout.
type cancelTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t cancelTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(t.ctx, cancel)
	release := func() { stop(); cancel() }
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		release()
		return nil, err
	}
	resp.Body = releaseBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// releaseBody keeps the request's context alive until the body is closed:
// cancelling it earlier would cut the body mid-read.
type releaseBody struct {
	io.ReadCloser
	release func()
}

func (b releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

func figures(m *vegeta.Metrics) Figures {
	f := Figures{
		Requests:    m.Requests,
		Success:     m.Success,
		Rate:        m.Rate,
		Throughput:  m.Throughput,
		Mean:        m.Latencies.Mean,
		P50:         m.Latencies.P50,
		P95:         m.Latencies.P95,
		P99:         m.Latencies.P99,
		Max:         m.Latencies.Max,
		StatusCodes: map[string]int{},
	}
	for code, n := range m.StatusCodes {
		f.StatusCodes[code] = n
	}
	if len(m.Errors) > maxErrors {
		f.Errors = append(f.Errors, m.Errors[:maxErrors]...)
	} else {
		f.Errors = append(f.Errors, m.Errors...)
	}
	return f
}

func checkTarget(target string) error {
	u, err := url.Parse(target)
	if err == nil && (u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
		err = errors.New("no http or https scheme, or no host")
	}
	if err != nil {
		return fmt.Errorf("target: want an http:// or https:// URL with a host, got %q: %w", target, err)
	}
	return nil
}
