// Command demo is `make demo`: SmartScale's whole loop on the local stack,
// told as a traffic spike.
//
// It starts, on 127.0.0.1 only: a Kubernetes control plane with kwok
// (fake kubelets), kube-state-metrics, the node-exporter stand-in,
// dynalite (DynamoDB), Prometheus with SmartScale's rules (for: durations
// compressed 50×), Alertmanager with alertmanager/alertmanager.yml (the
// smartscale route's timers shortened), the demo app (cmd/demoapp) and
// `smartscale serve` (DynamoDB state, kwok provider, a Slack sink that
// prints its notices). Then the story: the reconciler brings the empty
// group to its minimum; the load generator ramps traffic on the demo app
// and spikes it; the demo plays the HorizontalPodAutoscaler and scales the
// app's Deployment with the traffic, so pods go Pending; Prometheus fires,
// Alertmanager delivers, SmartScale adds nodes; the traffic calms, the
// group goes idle, SmartScale drains and removes nodes down to the
// minimum. A live timeline shows alerts, decisions, nodes and notices.
//
// It exits 0 once the scale-up and the scale-down have happened (1 if
// not within the time limit), stopping everything it started by PID.
// DEMO_KEEP=1 keeps everything running until Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/load/traffic"
	"github.com/smartscale/smartscale/e2e/stack"
)

func main() {
	bin := flag.String("bin", "bin/smartscale", "smartscale binary")
	demoApp := flag.String("demoapp", "bin/demoapp", "demo app binary")
	limit := flag.Duration("limit", 6*time.Minute, "give up if the story has not completed by then")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *demoApp, *limit, os.Getenv("DEMO_KEEP") == "1"); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// The story's timing. Rules fire after for: × forScale (3m → 3.6s, 10m →
// 12s); Alertmanager's smartscale route waits groupWait.
const (
	forScale       = 0.02
	groupWait      = time.Second
	groupInterval  = 2 * time.Second
	repeatInterval = 4 * time.Second
)

func run(ctx context.Context, bin, demoApp string, limit time.Duration, keep bool) error {
	d := &demo{start: time.Now(), out: os.Stdout}
	work, err := os.MkdirTemp("", "smartscale-demo-")
	if err != nil {
		return err
	}
	keepWork := false // a failed story leaves its logs for reading
	defer func() {
		if !keepWork {
			os.RemoveAll(work)
		}
	}()

	rules, err := harness.ExportRules(ctx, bin, filepath.Join(work, "rules"), forScale)
	if err != nil {
		return err
	}
	appPort, err := stack.FreePort()
	if err != nil {
		return err
	}
	appAddr := fmt.Sprintf("127.0.0.1:%d", appPort)

	d.say("starting the local stack on 127.0.0.1: etcd, kube-apiserver, controller-manager, scheduler, kwok, kube-state-metrics, node-exporter stand-in, dynalite, Prometheus, Alertmanager")
	opts := stack.All()
	opts.RuleFiles = rules
	opts.ScrapeTargets = []stack.ScrapeTarget{{JobName: "demoapp", Targets: []string{appAddr}}}
	opts.Logf = func(string, ...any) {}
	st, err := stack.Launch(ctx, opts, filepath.Join(work, "stack"))
	if err != nil {
		return fmt.Errorf("start the stack (`make tools` builds what is missing): %w", err)
	}
	defer st.Stop()
	d.st = st

	app, err := stack.StartProcess(stack.ProcessConfig{Name: "demoapp", Path: demoApp,
		Args: []string{"--listen", appAddr}, LogPath: filepath.Join(work, "demoapp.log")})
	if err != nil {
		return err
	}
	defer func() { _ = app.Stop(5 * time.Second) }()

	slack, err := harness.StartSlackSink()
	if err != nil {
		return err
	}
	defer slack.Close()
	sv, err := harness.NewServe(work, harness.ServeOptions{Bin: bin, Stack: st, SlackURL: slack.URL, ClusterID: "demo"})
	if err != nil {
		return err
	}
	if err := sv.StartContext(ctx); err != nil {
		return err
	}
	defer func() { _ = sv.Stop(10 * time.Second) }()
	d.sv, d.slack = sv, slack
	err = harness.PointAlertmanagers(ctx, st, sv.Token, harness.AlertmanagerOptions{
		WebhookURLs: []string{sv.URL}, Dir: work,
		GroupWait: groupWait, GroupInterval: groupInterval, RepeatInterval: repeatInterval,
	})
	if err != nil {
		return err
	}

	d.say("ready. Look around while it runs:")
	fmt.Fprintf(d.out, `           Prometheus alerts   %s/api/v1/alerts
           Alertmanager        %s/api/v2/alerts   (silences: %s/api/v2/silences)
           silence scale-downs $(e2e/tools/path.sh amtool) silence add smartscale_action=scale_down --alertmanager.url=%s
           SmartScale          %s/v1/decisions   (Authorization: Bearer %s)
           demo app            http://%s/metrics
           kubectl             KUBECONFIG=%s kubectl get nodes -L topology.kubernetes.io/zone,smartscale.io/market
`, st.PrometheusURL, st.AlertmanagerURLs[0], st.AlertmanagerURLs[0], st.AlertmanagerURLs[0], sv.URL, sv.Token, appAddr, st.KubeconfigPath)

	storyCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	watchDone := make(chan struct{})
	watchCtx, stopWatch := context.WithCancel(ctx)
	go func() {
		defer close(watchDone)
		d.watch(watchCtx)
	}()
	storyErr := d.story(storyCtx, "http://"+appAddr+"/")
	if storyErr == nil {
		d.summary(ctx)
	}
	if keep && ctx.Err() == nil {
		d.say("DEMO_KEEP=1: everything keeps running; Ctrl-C stops it")
		<-ctx.Done()
	}
	stopWatch()
	<-watchDone
	d.say("stopping smartscale, the demo app and the stack")
	switch {
	case ctx.Err() != nil:
		d.say("interrupted: everything it started is stopped")
		return nil
	case storyErr != nil:
		keepWork = true
		if errors.Is(storyErr, context.DeadlineExceeded) {
			storyErr = fmt.Errorf("the story did not complete within %s", limit)
		}
		return fmt.Errorf("%w (logs: %s, %s, %s)", storyErr, sv.LogPath, filepath.Join(work, "stack", "logs"), filepath.Join(work, "demoapp.log"))
	}
	return nil
}

// story drives traffic and the app's replicas and waits for the group to
// grow and shrink back.
func (d *demo) story(ctx context.Context, target string) error {
	d.say("the group starts empty: the reconciler enforces minNodes=2, one per zone, with no alert")
	if err := d.waitNodes(ctx, func(n []harness.Node) bool { return harness.ReadyCount(n) == 2 }); err != nil {
		return err
	}
	if err := d.ensureApp(ctx); err != nil {
		return err
	}

	// The demo plays the HorizontalPodAutoscaler: replicas follow the
	// phase's traffic, 500m requested each, and the CPU they use goes to
	// the node-exporter stand-in.
	scaling := map[string]struct {
		replicas int32
		usage    string
	}{
		traffic.PhaseRamp:  {3, "100m"},
		traffic.PhaseHold:  {4, "200m"},
		traffic.PhaseSpike: {14, "300m"},
		traffic.PhaseCool:  {2, "0"},
	}
	profile := traffic.Spike{
		RampFrom: 1, RampDuration: 8 * time.Second, HoldRate: 20, HoldDuration: 8 * time.Second,
		SpikeRate: 80, SpikeDuration: 35 * time.Second, CoolRate: 2, CoolDuration: 10 * time.Second,
	}.Profile("demo-spike")

	loadErr := make(chan error, 1)
	go func() {
		rep, err := traffic.Run(ctx, profile, target, traffic.Options{
			Timeout: 5 * time.Second,
			PhaseStart: func(p traffic.Phase) {
				s := scaling[p.Name]
				d.say("traffic: %s phase, %s (%.0f→%.0f req/s); HPA: app → %d replicas using %s CPU each", p.Name, p.Duration, p.From, p.To, s.replicas, s.usage)
				if err := d.scaleApp(ctx, s.replicas, s.usage); err != nil {
					d.say("scaling the app failed: %v", err)
				}
			},
			PhaseDone: func(r traffic.PhaseReport) {
				d.say("traffic: %s done: %d requests, %.0f%% ok, p95 %s", r.Phase.Name, r.Figures.Requests, 100*r.Figures.Success, r.Figures.P95.Round(time.Millisecond))
			},
		})
		if err == nil {
			d.say("traffic done: %d requests in %s", rep.Total.Requests, rep.Elapsed.Round(time.Second))
		}
		loadErr <- err
	}()

	if err := d.waitNodes(ctx, func(n []harness.Node) bool { return harness.ReadyCount(n) >= 3 }); err != nil {
		return fmt.Errorf("waiting for the scale-up: %w", err)
	}
	d.say("scale-up done: the pending pods have room")
	if err := <-loadErr; err != nil {
		return fmt.Errorf("traffic: %w", err)
	}
	d.say("calm: the group is idle; SmartScale removes one node per scale-down cooldown, down to minNodes")
	if err := d.waitNodes(ctx, func(n []harness.Node) bool { return len(n) == 2 && harness.ReadyCount(n) == 2 }); err != nil {
		return fmt.Errorf("waiting for the scale-down: %w", err)
	}
	d.say("scale-down done: back at the minimum, one node per zone")
	return nil
}

type demo struct {
	mu    sync.Mutex
	usage string // CPU each app pod uses now

	start time.Time
	out   io.Writer
	st    *stack.Stack
	sv    *harness.Serve
	slack *harness.SlackSink
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}
