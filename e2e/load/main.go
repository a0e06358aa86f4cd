// Command load sends a traffic spike (ramp → hold → spike → cool-down) to
// one URL with vegeta and prints per-phase figures.
//
//	go run ./e2e/load --target http://127.0.0.1:8081/                 # the 3-minute "spike" profile
//	go run ./e2e/load --target http://127.0.0.1:8081/ --scale 0.1     # the same shape in 18 s
//	go run ./e2e/load --target URL --profile smoke --json             # 4 s, machine-readable
//	go run ./e2e/load --target URL --spike-rate 300 --spike-duration 20s
//
// A phase flag overrides that figure of the --profile preset; --scale then
// multiplies every duration. The run never outlasts --max-duration. Progress
// goes to stderr as JSON log lines; the report goes to stdout. Exit status 0
// when the run ended (even when cut by --max-duration: the report says
// "truncated"), 1 on bad flags or when interrupted (the partial report is
// still printed).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/smartscale/smartscale/e2e/load/traffic"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "", "URL to send GET requests to (required)")
	profile := fs.String("profile", "spike", "preset: "+strings.Join(traffic.Presets(), ", "))
	scale := fs.Float64("scale", 1, "multiply every phase duration by this (0.1 = ten times shorter; rates unchanged)")
	maxDuration := fs.Duration("max-duration", 15*time.Minute, "hard cap on the whole run")
	timeout := fs.Duration("timeout", traffic.DefaultTimeout, "per-request timeout")
	maxWorkers := fs.Uint64("max-workers", 0, "cap on requests in flight (0: none)")
	asJSON := fs.Bool("json", false, "print the report as JSON")

	// Phase overrides; the preset gives their values unless set.
	var s traffic.Spike
	overrides := map[string]func(){}
	rate := func(name, usage string, dst *float64) {
		v := fs.Float64(name, 0, usage+" (requests/s; default from --profile)")
		overrides[name] = func() { *dst = *v }
	}
	dur := func(name, usage string, dst *time.Duration) {
		v := fs.Duration(name, 0, usage+" (default from --profile)")
		overrides[name] = func() { *dst = *v }
	}
	rate("ramp-from", "rate at the start of the ramp", &s.RampFrom)
	dur("ramp-duration", "length of the ramp, which ends at --hold-rate", &s.RampDuration)
	rate("hold-rate", "rate of the hold", &s.HoldRate)
	dur("hold-duration", "length of the hold", &s.HoldDuration)
	rate("spike-rate", "rate of the spike", &s.SpikeRate)
	dur("spike-duration", "length of the spike", &s.SpikeDuration)
	rate("cool-rate", "rate of the cool-down", &s.CoolRate)
	dur("cool-duration", "length of the cool-down", &s.CoolDuration)

	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *target == "" {
		return errors.New("--target: required")
	}
	if *maxDuration <= 0 {
		return fmt.Errorf("--max-duration: want > 0, got %s", *maxDuration)
	}
	preset, err := traffic.Preset(*profile)
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	s = preset
	fs.Visit(func(f *flag.Flag) {
		if set, ok := overrides[f.Name]; ok {
			set()
		}
	})
	p, err := s.Profile(*profile).Scale(*scale)
	if err != nil {
		return fmt.Errorf("--%w", err)
	}
	if err := p.Validate(); err != nil {
		return err
	}

	log := slog.New(slog.NewJSONHandler(stderr, nil))
	log.Info("load starting", "target", *target, "profile", p.Name, "planned", p.Duration().String(),
		"planned_requests", int64(p.Requests()), "max_duration", maxDuration.String())
	rep, runErr := traffic.Run(ctx, p, *target, traffic.Options{
		MaxDuration: *maxDuration,
		Timeout:     *timeout,
		MaxWorkers:  *maxWorkers,
		PhaseStart: func(ph traffic.Phase) {
			log.Info("phase starting", "phase", ph.Name, "duration", ph.Duration.String(), "from_rps", ph.From, "to_rps", ph.To)
		},
		PhaseDone: func(pr traffic.PhaseReport) {
			log.Info("phase done", "phase", pr.Name, "requests", pr.Requests, "success", pr.Success,
				"p95", pr.P95.String(), "elapsed", pr.Elapsed.String())
		},
	})
	if rep.Truncated && runErr == nil {
		log.Warn("run cut by --max-duration", "max_duration", maxDuration.String())
	}
	if len(rep.Phases) > 0 || runErr == nil {
		if err := write(stdout, rep, *asJSON); err != nil {
			return err
		}
	}
	return runErr
}

func write(w io.Writer, rep traffic.Report, asJSON bool) error {
	if !asJSON {
		return rep.WriteText(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
