package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smartscale/smartscale/cmd/demoapp/app"
	"github.com/smartscale/smartscale/e2e/harness"
	"github.com/smartscale/smartscale/e2e/load/traffic"
)

// demoProc is a cmd/demoapp process this test started.
type demoProc struct {
	cmd  *exec.Cmd
	base string
	done chan error

	mu  sync.Mutex
	log bytes.Buffer // its stderr
}

func (d *demoProc) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// startDemoApp builds cmd/demoapp into a temp dir, starts it on a free
// loopback port and waits for /healthz. Cleanup kills it (by its PID) if the
// test did not stop it.
func startDemoApp(t *testing.T, args ...string) *demoProc {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "demoapp")
	build := exec.Command("go", "build", "-o", bin, "github.com/smartscale/smartscale/cmd/demoapp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/demoapp: %v\n%s", err, out)
	}
	d := &demoProc{cmd: exec.Command(bin, append([]string{"--listen", "127.0.0.1:0"}, args...)...), done: make(chan error, 1)}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start demoapp: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.log.Write(sc.Bytes())
			d.log.WriteByte('\n')
			d.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				addr <- line.Addr
			}
		}
		d.done <- d.cmd.Wait()
	}()
	select {
	case a := <-addr:
		d.base = "http://" + a
	case <-time.After(15 * time.Second):
		t.Fatalf("demoapp did not log its address:\n%s", d.logs())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(d.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("demoapp /healthz not ready: %v\n%s", err, d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (d *demoProc) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM demoapp (pid %d): %v", d.cmd.Process.Pid, err)
	}
	select {
	case err := <-d.done:
		d.done <- err // for Cleanup
		if err != nil {
			t.Errorf("demoapp exited with %v after SIGTERM:\n%s", err, d.logs())
		}
		if !strings.Contains(d.logs(), `"msg":"stopped"`) {
			t.Errorf("demoapp did not log its graceful stop:\n%s", d.logs())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("demoapp still running 15 s after SIGTERM:\n%s", d.logs())
	}
}

// requestsTotal sums the app's http_requests_total by code.
func requestsTotal(t *testing.T, base string) map[string]float64 {
	t.Helper()
	out, err := harness.CounterBy(t.Context(), base+"/metrics", "http_requests_total", "code", map[string]string{"handler": "work"})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The command, through the real demoapp binary: every request it reports
// as sent is one the app counted, and the injected errors match.
func TestLoadAgainstDemoAppProcess(t *testing.T) {
	d := startDemoApp(t, "--error-rate", "0.5")
	var out, logs bytes.Buffer
	args := []string{"--target", d.base + "/", "--profile", "smoke", "--scale", "0.75", "--spike-rate", "60", "--json"}
	if err := run(t.Context(), args, &out, &logs); err != nil {
		t.Fatalf("load %v: %v\n%s", args, err, logs.String())
	}
	var rep traffic.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	if len(rep.Phases) != 4 || rep.Truncated {
		t.Fatalf("report: %d phases, truncated %v", len(rep.Phases), rep.Truncated)
	}
	if sp := rep.Phases[2]; sp.Name != traffic.PhaseSpike || sp.To != 60 || sp.Duration != 750*time.Millisecond {
		t.Errorf("spike phase %+v, want --spike-rate 60 over 1s×0.75", sp.Phase)
	}
	if !strings.Contains(logs.String(), `"msg":"phase done","phase":"cool-down"`) {
		t.Errorf("no progress line for the cool-down:\n%s", logs.String())
	}

	n := rep.Total.Requests
	if n < 20 {
		t.Fatalf("only %d requests sent", n)
	}
	got := requestsTotal(t, d.base)
	var sum float64
	for _, v := range got {
		sum += v
	}
	if sum != float64(n) {
		t.Errorf("app counted %v requests (%v), load sent %d", sum, got, n)
	}
	codes := rep.Total.StatusCodes
	if codes["500"] != int(n/2) || got["500"] != float64(codes["500"]) || got["200"] != float64(codes["200"]) {
		t.Errorf("error rate 0.5 over %d requests: load saw %v, app counted %v, want 500×%d", n, codes, got, n/2)
	}
	d.stop(t)
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--target: required"},
		{[]string{"--target", "http://127.0.0.1:1/", "--profile", "nope"}, `--profile "nope": unknown`},
		{[]string{"--target", "http://127.0.0.1:1/", "--scale", "0"}, "--scale: want a factor > 0"},
		{[]string{"--target", "http://127.0.0.1:1/", "--ramp-from", "0"}, "phase ramp: from: a ramp's ends must be ≥ 1"},
		{[]string{"--target", "http://127.0.0.1:1/", "--hold-duration", "0s"}, "phase hold: duration"},
		{[]string{"--target", "http://127.0.0.1:1/", "--max-duration", "0s"}, "--max-duration: want > 0"},
		{[]string{"--target", "127.0.0.1:1", "--profile", "smoke"}, "target: want an http://"},
		{[]string{"--target", "http://127.0.0.1:1/", "extra"}, "unexpected arguments"},
		{[]string{"--spike-rate", "many"}, "invalid value"},
	} {
		var out, logs bytes.Buffer
		err := run(context.Background(), tc.args, &out, &logs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("load %v: %v, want %q", tc.args, err, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("load %v printed a report on a flag error:\n%s", tc.args, out.String())
		}
	}
	var out, logs bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out, &logs); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	for _, name := range []string{"--hold-rate", "--cool-duration", "--max-duration", "--json"} {
		if !strings.Contains(logs.String(), strings.TrimPrefix(name, "-")) {
			t.Errorf("-h does not mention %s:\n%s", name, logs.String())
		}
	}
}

// A run cut by --max-duration still prints its report, marked truncated.
func TestMaxDurationTruncates(t *testing.T) {
	a, err := app.New(app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(a.Handler())
	defer ts.Close()
	srv := ts.URL
	var out, logs bytes.Buffer
	// smoke: four 1 s phases; the cap falls in the middle of the second.
	args := []string{"--target", srv + "/", "--profile", "smoke", "--max-duration", "1500ms"}
	began := time.Now()
	if err := run(t.Context(), args, &out, &logs); err != nil {
		t.Fatalf("load %v: %v", args, err)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("a 4 s profile capped at 1.5 s ran %v", took)
	}
	report := out.String()
	for _, want := range []string{"truncated", "\nramp ", "\nhold ", "\ntotal "} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "\nspike ") {
		t.Errorf("the spike phase started after the cap:\n%s", report)
	}
	if !strings.Contains(logs.String(), "run cut by --max-duration") {
		t.Errorf("no warning about the cap:\n%s", logs.String())
	}
	t.Logf("report:\n%s", out.String())
}
