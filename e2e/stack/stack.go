package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Component names one part of the stack, for StopComponent and friends.
type Component string

// Components. Alertmanager replicas are named by AlertmanagerReplica(i).
const (
	Dynalite          Component = "dynalite"
	Etcd              Component = "etcd"
	APIServer         Component = "kube-apiserver"
	ControllerManager Component = "kube-controller-manager"
	Scheduler         Component = "kube-scheduler"
	Kwok              Component = "kwok"
	KubeStateMetrics  Component = "kube-state-metrics"
	NodeExporter      Component = "node-exporter"
	Prometheus        Component = "prometheus"
)

// AlertmanagerReplica names the i-th Alertmanager (from 0).
func AlertmanagerReplica(i int) Component {
	return Component(fmt.Sprintf("alertmanager-%d", i))
}

// readyTimeout bounds one component's wait for readiness.
const readyTimeout = 60 * time.Second

// component is one process (or the in-process node-exporter stand-in) the
// stack started, with what it takes to start it again on the same ports.
type component struct {
	name  Component
	cfg   func() (ProcessConfig, error) // nil for in-process components
	ready func(ctx context.Context) error
	proc  *Process

	// in-process components; startIn's ctx bounds the start, not the
	// component's life
	startIn func(ctx context.Context) error
	stopIn  func() error
}

// Stack is a running set of components. Fields are set for the components
// that were started and empty otherwise. Safe for concurrent use.
type Stack struct {
	// Dir holds configs, data and logs (<Dir>/logs/<component>.log).
	Dir string

	// DynamoEndpoint is dynalite's URL, http://127.0.0.1:PORT (region and
	// credentials are not checked; use any).
	DynamoEndpoint string

	// EtcdURL, APIServerURL (https, self-signed: skip verification),
	// KubeconfigPath (token auth, insecure-skip-tls-verify) and Token (bearer
	// token of user "admin" in group system:masters).
	EtcdURL        string
	APIServerURL   string
	KubeconfigPath string
	Token          string

	// KubeStateMetricsURL is the base URL; metrics at /metrics.
	KubeStateMetricsURL string
	// NodeExporterURL is the node-exporter stand-in's base URL:
	// /nodes/{node}/metrics per node and /targets for HTTP SD.
	NodeExporterURL string
	// PrometheusURL is the base URL of Prometheus' HTTP API.
	PrometheusURL string
	// AlertmanagerURLs are the base URLs of the Alertmanager replicas.
	AlertmanagerURLs []string

	opts  Options
	logf  func(string, ...any)
	mu    sync.Mutex
	comps map[Component]*component
	order []Component // start order; stopped in reverse

	amPorts []amPorts

	restConfig *rest.Config
	client     kubernetes.Interface

	bgCtx    context.Context // lives until Stop; for in-process components
	bgCancel context.CancelFunc
}

// Start launches opts in t.TempDir(), waits until every component is ready
// and registers a cleanup that stops exactly the processes it started; if
// the test failed, the cleanup prints each component's log tail first.
// It fails the test if anything does not come up. With
// SMARTSCALE_KEEP_STACK=1 the folder is kept and its path logged.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("SMARTSCALE_KEEP_STACK") == "1" {
		d, err := os.MkdirTemp("", "smartscale-stack-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
		t.Logf("stack folder kept: %s", dir)
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Launch(ctx, opts, dir)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.LogTails(40))
		}
		if err := s.Stop(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
	})
	return s
}

// Launch starts opts with dir as its folder (created if missing) and waits
// until every component is ready. On error whatever had started is stopped
// and the error carries the failing component's log tail. The caller must
// Stop the returned stack.
func Launch(ctx context.Context, opts Options, dir string) (*Stack, error) {
	opts = opts.normalized()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("stack dir: %w", err)
	}
	s := &Stack{Dir: dir, opts: opts, logf: opts.Logf, comps: map[Component]*component{}}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	start := time.Now()
	if err := s.launch(ctx); err != nil {
		stopErr := s.Stop()
		return nil, errors.Join(err, stopErr)
	}
	s.logf("stack ready in %s: %s", time.Since(start).Round(time.Millisecond), strings.Join(s.componentNames(), ", "))
	return s, nil
}

// launch brings components up in dependency waves; components of one wave
// start concurrently.
func (s *Stack) launch(ctx context.Context) error {
	o := s.opts
	var wave1 []func(context.Context) error
	if o.Dynalite {
		wave1 = append(wave1, s.addDynalite)
	}
	if o.Kube {
		wave1 = append(wave1, s.addEtcd)
	}
	if o.Alertmanager {
		// Replicas reach each other by port, so allocate all first.
		if err := s.prepareAlertmanagers(); err != nil {
			return err
		}
		for i := range o.AlertmanagerReplicas {
			wave1 = append(wave1, func(ctx context.Context) error { return s.addAlertmanager(ctx, i) })
		}
	}
	if err := s.parallel(ctx, wave1); err != nil {
		return err
	}
	if o.Kube {
		if err := s.addAPIServer(ctx); err != nil {
			return err
		}
		var wave2 []func(context.Context) error
		wave2 = append(wave2, s.addControllerManager, s.addScheduler)
		if o.Kwok {
			wave2 = append(wave2, s.addKwok)
		}
		if o.KubeStateMetrics {
			wave2 = append(wave2, s.addKubeStateMetrics)
		}
		if o.NodeExporter {
			wave2 = append(wave2, s.addNodeExporter)
		}
		if err := s.parallel(ctx, wave2); err != nil {
			return err
		}
	}
	if o.Prometheus {
		if err := s.addPrometheus(ctx); err != nil {
			return err
		}
	}
	if o.Kwok && len(o.KwokNodes) > 0 {
		if err := s.CreateNodes(ctx, o.KwokNodes...); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) parallel(ctx context.Context, fns []func(context.Context) error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = fn(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// register records a component and starts it on its ports, retrying on new
// ports (via realloc) if another process grabbed one between allocation and
// bind.
func (s *Stack) register(ctx context.Context, c *component, realloc func() error) error {
	s.mu.Lock()
	s.comps[c.name] = c
	s.order = append(s.order, c.name)
	s.mu.Unlock()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			if realloc == nil {
				break
			}
			if rerr := realloc(); rerr != nil {
				return rerr
			}
			s.logf("%s: port taken, retrying on new ports", c.name)
		}
		err = s.startComponent(ctx, c)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "address already in use") {
			return err
		}
	}
	return err
}

func (s *Stack) startComponent(ctx context.Context, c *component) error {
	start := time.Now()
	var logStart int64 // this run's part of a log kept across restarts
	if c.startIn != nil {
		sctx, cancel := context.WithTimeout(ctx, readyTimeout)
		err := c.startIn(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	} else {
		cfg, err := c.cfg()
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if fi, err := os.Stat(cfg.LogPath); err == nil {
			logStart = fi.Size()
		}
		p, err := StartProcess(cfg)
		if err != nil {
			return err
		}
		s.mu.Lock()
		c.proc = p
		s.mu.Unlock()
	}
	if err := s.waitReady(ctx, c); err != nil {
		return err
	}
	// A process that failed to bind one of its ports may stay up, and
	// something else on that port may answer the readiness check.
	if c.proc != nil && logContains(c.proc.LogPath(), logStart, "address already in use") {
		_ = c.proc.Kill()
		<-c.proc.Done()
		return fmt.Errorf("%s: address already in use; log tail:\n%s", c.name, c.proc.LogTail(10))
	}
	s.logf("%s ready in %s", c.name, time.Since(start).Round(time.Millisecond))
	return nil
}

// waitReady polls c.ready until it succeeds, the process exits or the
// timeout passes.
func (s *Stack) waitReady(ctx context.Context, c *component) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if c.proc != nil && c.proc.Exited() {
			return fmt.Errorf("%s exited before ready (%v); log tail:\n%s", c.name, c.proc.Wait(), c.proc.LogTail(30))
		}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		last = c.ready(rctx)
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			tail := ""
			if c.proc != nil {
				tail = c.proc.LogTail(30)
			}
			return fmt.Errorf("%s not ready: %w (last check: %v); log tail:\n%s", c.name, ctx.Err(), last, tail)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Stack) component(name Component) (*component, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.comps[name]
	if !ok {
		return nil, fmt.Errorf("component %s is not part of this stack (have: %s)", name, strings.Join(s.componentNamesLocked(), ", "))
	}
	return c, nil
}

// StopComponent stops one component (SIGTERM, then SIGKILL after
// DefaultGrace). Its ports stay reserved for StartComponent.
func (s *Stack) StopComponent(name Component) error {
	c, err := s.component(name)
	if err != nil {
		return err
	}
	return s.stopComponent(c, false)
}

// KillComponent SIGKILLs one component, as a crash would.
func (s *Stack) KillComponent(name Component) error {
	c, err := s.component(name)
	if err != nil {
		return err
	}
	return s.stopComponent(c, true)
}

func (s *Stack) stopComponent(c *component, kill bool) error {
	if c.stopIn != nil {
		return c.stopIn()
	}
	s.mu.Lock()
	p := c.proc
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	if kill {
		return p.Kill()
	}
	return p.Stop(DefaultGrace)
}

// StartComponent starts a stopped component again with the same arguments,
// ports and data folder, and waits until it is ready. Starting a running
// component is an error.
func (s *Stack) StartComponent(ctx context.Context, name Component) error {
	c, err := s.component(name)
	if err != nil {
		return err
	}
	if c.proc != nil && !c.proc.Exited() {
		return fmt.Errorf("%s is running (pid %d)", name, c.proc.PID())
	}
	return s.startComponent(ctx, c)
}

// RestartComponent stops and starts one component.
func (s *Stack) RestartComponent(ctx context.Context, name Component) error {
	if err := s.StopComponent(name); err != nil {
		return err
	}
	return s.StartComponent(ctx, name)
}

// StopDynalite stops dynalite; requests to DynamoEndpoint then fail with
// connection refused. Without Options.DynalitePersist its tables are gone.
func (s *Stack) StopDynalite() error { return s.StopComponent(Dynalite) }

// StartDynalite starts dynalite again on the same port (and, with
// Options.DynalitePersist, the same data) and waits for ListTables.
func (s *Stack) StartDynalite(ctx context.Context) error { return s.StartComponent(ctx, Dynalite) }

// Process returns the child process of a component (nil for the in-process
// node-exporter stand-in or an unknown name).
func (s *Stack) Process(name Component) *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.comps[name]; ok {
		return c.proc
	}
	return nil
}

// PIDs returns the PIDs of the child processes currently running.
func (s *Stack) PIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []int
	for _, n := range s.order {
		if p := s.comps[n].proc; p != nil && !p.Exited() {
			pids = append(pids, p.PID())
		}
	}
	return pids
}

// Components lists the components in start order.
func (s *Stack) Components() []Component {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

func (s *Stack) componentNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.componentNamesLocked()
}

func (s *Stack) componentNamesLocked() []string {
	names := make([]string, len(s.order))
	for i, n := range s.order {
		names[i] = string(n)
	}
	return names
}

// LogPath is the log file of a component.
func (s *Stack) LogPath(name Component) string {
	return filepath.Join(s.Dir, "logs", string(name)+".log")
}

// LogTails returns the last n lines of every component's log.
func (s *Stack) LogTails(n int) string {
	var b strings.Builder
	for _, name := range s.Components() {
		if _, err := os.Stat(s.LogPath(name)); err != nil {
			continue // in-process (node-exporter stand-in) or never started
		}
		fmt.Fprintf(&b, "---- %s (%s) ----\n%s\n", name, s.LogPath(name), fileTail(s.LogPath(name), n))
	}
	return b.String()
}

// Stop stops every component in reverse start order: SIGTERM, SIGKILL after
// DefaultGrace, by PID. It returns once all have been reaped.
func (s *Stack) Stop() error {
	s.mu.Lock()
	order := slices.Clone(s.order)
	s.mu.Unlock()
	var errs []error
	for i := len(order) - 1; i >= 0; i-- {
		c, _ := s.component(order[i])
		if err := s.stopComponent(c, false); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
		}
	}
	if s.bgCancel != nil {
		s.bgCancel()
	}
	return errors.Join(errs...)
}

// RESTConfig returns a copy of the admin client config (nil without Kube).
func (s *Stack) RESTConfig() *rest.Config {
	if s.restConfig == nil {
		return nil
	}
	return rest.CopyConfig(s.restConfig)
}

// Client returns an admin clientset (nil without Kube).
func (s *Stack) Client() kubernetes.Interface { return s.client }

// freePorts asks the kernel for n distinct free loopback ports. Another
// process may take one before the component binds; register retries on new
// ports then.
// Ports are handed out from below Linux's ephemeral range (32768–60999
// by default), which the kernel uses for the local end of outgoing
// connections and for bind(0): a port taken from there, released and
// bound again by a child a moment later can meanwhile become the source
// port of some client's connection (seen: kwok failing to bind while
// another process answered its health check). Below that range only
// listeners that choose their port live, and within this process no port
// is handed out twice.
const (
	portRangeLow  = 20000
	portRangeHigh = 32768
)

// handedOut is process-wide on purpose: stacks of parallel tests in one
// test binary must not get the same port.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// FreePort returns a port on 127.0.0.1 that is free now, outside the
// ephemeral range and never returned before in this process.
func FreePort() (int, error) {
	p, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func freePorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 2000 {
			return nil, fmt.Errorf("free port: none found in %d–%d after %d tries", portRangeLow, portRangeHigh-1, tries)
		}
		p := portRangeLow + mathrand.IntN(portRangeHigh-portRangeLow)
		if handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", hostPort(p))
		if err != nil {
			continue // in use by someone else
		}
		l.Close()
		handedOut.ports[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

func hostPort(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func (s *Stack) logFile(name Component) string { return s.LogPath(name) }

func (s *Stack) subdir(name string) (string, error) {
	d := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("mkdir %s: %w", d, err)
	}
	return d, nil
}

// onePort allocates a free loopback port into *port, then calls moved
// (when not nil) so URLs derived from it follow, and returns the
// allocator, which register calls again when a component must move to a
// new port.
func onePort(port *int, moved func(port int)) (func() error, error) {
	alloc := func() error {
		p, err := freePorts(1)
		if err != nil {
			return err
		}
		*port = p[0]
		if moved != nil {
			moved(p[0])
		}
		return nil
	}
	return alloc, alloc()
}

// logContains reports whether the file, from offset on, contains s.
func logContains(path string, offset int64, s string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	return err == nil && strings.Contains(string(b), s)
}
