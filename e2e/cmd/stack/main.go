// Command stack starts the SmartScale local stack (package e2e/stack) by
// hand: `make stack-up` / `make stack-down`.
//
//	stack up [flags]   start everything in the background, wait until ready,
//	                   print URLs, kubeconfig and token; write <dir>/env.sh
//	stack down         stop what `up` started
//	stack status       print the running stack's details
//	stack run [flags]  the foreground supervisor `up` starts (Ctrl-C stops it)
//
// `up` re-executes this binary as `run` in its own session, so the stack
// outlives the command; the supervisor holds every component as a child
// (with a parent-death signal) and stops them by PID on SIGTERM. State lives
// in <dir>/state.json (default e2e/.stack, git-ignored).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/smartscale/smartscale/e2e/stack"
)

// state is what `run` writes once the stack is ready.
type state struct {
	SupervisorPID       int            `json:"supervisorPID"`
	Dir                 string         `json:"dir"`
	DynamoEndpoint      string         `json:"dynamoEndpoint"`
	APIServerURL        string         `json:"apiServerURL"`
	KubeconfigPath      string         `json:"kubeconfig"`
	Token               string         `json:"token"`
	PrometheusURL       string         `json:"prometheusURL"`
	AlertmanagerURLs    []string       `json:"alertmanagerURLs"`
	NodeExporterURL     string         `json:"nodeExporterURL"`
	KubeStateMetricsURL string         `json:"kubeStateMetricsURL"`
	PIDs                map[string]int `json:"pids"`
	ReadyIn             string         `json:"readyIn"`
}

type config struct {
	dir           string
	nodes         int
	alertmanagers int
	rules         multi
	amConfig      string
	scrapes       multi
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "up":
		err = up(args)
	case "run":
		err = run(args)
	case "down":
		err = down(args)
	case "status":
		err = status(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: stack up|down|status|run [flags] (see go doc ./e2e/cmd/stack)")
	os.Exit(2)
}

func defaultDir() string {
	if d, err := stack.ToolsDir(); err == nil {
		return filepath.Join(filepath.Dir(d), ".stack")
	}
	return ".stack"
}

func parse(name string, args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&c.dir, "dir", defaultDir(), "state, config, data and log folder")
	fs.IntVar(&c.nodes, "nodes", 2, "kwok nodes of group workers to create (t3.small-like, spread over us-east-1a/b/c)")
	fs.IntVar(&c.alertmanagers, "alertmanagers", 1, "Alertmanager replicas (2+ form a gossip cluster)")
	fs.Var(&c.rules, "rules", "Prometheus rule file (repeatable)")
	fs.StringVar(&c.amConfig, "alertmanager-config", "", "alertmanager.yml to use (default: a receiver that drops everything)")
	fs.Var(&c.scrapes, "scrape", "extra scrape target job=host:port (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(c.dir)
	if err != nil {
		return nil, err
	}
	c.dir = abs
	return c, nil
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	return &st, nil
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func up(args []string) error {
	c, err := parse("up", args)
	if err != nil {
		return err
	}
	if st, err := readState(c.dir); err == nil && alive(st.SupervisorPID) {
		fmt.Println("stack already running:")
		printState(st)
		return nil
	}
	// A fresh stack: drop the data of a previous one.
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, "supervisor.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	sup := exec.Command(self, append([]string{"run"}, args...)...)
	sup.Stdout, sup.Stderr = logf, logf
	// Own session: closing the terminal or Ctrl-C on `make` leaves it be.
	sup.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sup.Start(); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sup.Wait() }()
	fmt.Printf("starting the stack (supervisor pid %d, log %s) ...\n", sup.Process.Pid, logPath)
	deadline := time.After(4 * time.Minute)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("supervisor exited (%v):\n%s", err, tail(string(b), 40))
		case <-deadline:
			_ = sup.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("stack not ready after 4m; see %s", logPath)
		case <-time.After(200 * time.Millisecond):
		}
		if st, err := readState(c.dir); err == nil {
			printState(st)
			return nil
		}
	}
}

func run(args []string) error {
	c, err := parse("run", args)
	if err != nil {
		return err
	}
	opts := stack.All()
	opts.AlertmanagerReplicas = c.alertmanagers
	opts.RuleFiles = c.rules
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	for i := range c.nodes {
		opts.KwokNodes = append(opts.KwokNodes, stack.NodeSpec{
			Name: fmt.Sprintf("worker-%d", i+1), Zone: zones[i%len(zones)],
			NodeGroup: "workers", Market: "on-demand", InstanceType: "t3.small",
		})
	}
	if c.amConfig != "" {
		b, err := os.ReadFile(c.amConfig)
		if err != nil {
			return err
		}
		opts.AlertmanagerConfig = string(b)
	}
	for _, sc := range c.scrapes {
		job, target, ok := strings.Cut(sc, "=")
		if !ok {
			return fmt.Errorf("-scrape %q: want job=host:port", sc)
		}
		opts.ScrapeTargets = append(opts.ScrapeTargets, stack.ScrapeTarget{JobName: job, Targets: []string{target}})
	}
	opts.Logf = func(f string, a ...any) { fmt.Printf(time.Now().Format("15:04:05 ")+f+"\n", a...) }

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	start := time.Now()
	s, err := stack.Launch(ctx, opts, c.dir)
	cancel()
	if err != nil {
		return err
	}
	st := &state{
		SupervisorPID: os.Getpid(), Dir: c.dir,
		DynamoEndpoint: s.DynamoEndpoint, APIServerURL: s.APIServerURL,
		KubeconfigPath: s.KubeconfigPath, Token: s.Token,
		PrometheusURL: s.PrometheusURL, AlertmanagerURLs: s.AlertmanagerURLs,
		NodeExporterURL: s.NodeExporterURL, KubeStateMetricsURL: s.KubeStateMetricsURL,
		PIDs:    map[string]int{},
		ReadyIn: time.Since(start).Round(time.Millisecond).String(),
	}
	for _, name := range s.Components() {
		if p := s.Process(name); p != nil {
			st.PIDs[string(name)] = p.PID()
		}
	}
	if err := writeEnv(st); err != nil {
		_ = s.Stop()
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	// Written last and atomically: its presence means ready.
	tmp := statePath(c.dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		_ = s.Stop()
		return err
	}
	if err := os.Rename(tmp, statePath(c.dir)); err != nil {
		_ = s.Stop()
		return err
	}
	fmt.Println("stack ready; waiting for a signal")
	got := <-sig
	fmt.Printf("%s: stopping\n", got)
	err = s.Stop()
	_ = os.Remove(statePath(c.dir))
	return err
}

func writeEnv(st *state) error {
	env := fmt.Sprintf(`# source this file to talk to the local stack
export KUBECONFIG=%q
export SMARTSCALE_DYNAMODB_ENDPOINT=%q
export SMARTSCALE_PROMETHEUS_URL=%q
export SMARTSCALE_ALERTMANAGER_URL=%q
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x
`, st.KubeconfigPath, st.DynamoEndpoint, st.PrometheusURL, strings.Join(st.AlertmanagerURLs, ","))
	return os.WriteFile(filepath.Join(st.Dir, "env.sh"), []byte(env), 0o644)
}

func printState(st *state) {
	fmt.Printf(`stack ready in %s (supervisor pid %d)
  dynamodb (dynalite)   %s
  kube-apiserver        %s
  kubeconfig            %s
  token                 %s
  prometheus            %s
  alertmanager          %s
  node-exporter (fake)  %s  (/targets, /nodes/<node>/metrics)
  kube-state-metrics    %s/metrics
  logs                  %s/logs/
  env                   source %s/env.sh
stop with: make stack-down
`, st.ReadyIn, st.SupervisorPID, st.DynamoEndpoint, st.APIServerURL, st.KubeconfigPath, st.Token,
		st.PrometheusURL, strings.Join(st.AlertmanagerURLs, " "), st.NodeExporterURL, st.KubeStateMetricsURL,
		st.Dir, st.Dir)
}

func status(args []string) error {
	c, err := parse("status", args)
	if err != nil {
		return err
	}
	st, err := readState(c.dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !alive(st.SupervisorPID)) {
		fmt.Println("stack not running")
		return nil
	}
	if err != nil {
		return err
	}
	printState(st)
	return nil
}

func down(args []string) error {
	c, err := parse("down", args)
	if err != nil {
		return err
	}
	st, err := readState(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("stack not running")
		return nil
	}
	if err != nil {
		return err
	}
	if alive(st.SupervisorPID) {
		_ = syscall.Kill(st.SupervisorPID, syscall.SIGTERM)
		for i := 0; i < 150 && alive(st.SupervisorPID); i++ {
			time.Sleep(200 * time.Millisecond)
		}
		if alive(st.SupervisorPID) {
			_ = syscall.Kill(st.SupervisorPID, syscall.SIGKILL)
		}
	}
	// The children die with the supervisor (parent-death signal); check
	// the recorded PIDs anyway, and only those that still run our binaries.
	for name, pid := range st.PIDs {
		if alive(pid) && runsFrom(pid, c.dir, name) {
			fmt.Printf("killing leftover %s (pid %d)\n", name, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.Remove(statePath(c.dir))
	fmt.Println("stack stopped")
	return nil
}

// runsFrom reports whether pid's command line still mentions the stack dir
// or the component, so a recycled PID is never killed.
func runsFrom(pid int, dir, name string) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	cmd := string(b)
	return strings.Contains(cmd, dir) || strings.Contains(cmd, name)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
