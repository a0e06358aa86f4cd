package stack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultGrace is how long Stop waits after SIGTERM before SIGKILL.
const DefaultGrace = 5 * time.Second

// ProcessConfig describes a child process.
type ProcessConfig struct {
	// Name labels the process in errors and log dumps.
	Name string
	// Path is the binary; Args are its arguments (without argv[0]).
	Path string
	Args []string
	// Env is added to the parent's environment (later entries win).
	Env []string
	// Dir is the working directory; empty means the parent's.
	Dir string
	// LogPath receives stdout and stderr, appended, so a restarted process
	// keeps one log. Required.
	LogPath string
	// Detach lets the process outlive its parent. By default a child gets
	// SIGKILL when the process that started it dies, so a crashed test
	// leaves nothing running.
	Detach bool
}

// Process is a child process started by this package (or a test) and
// stopped by its own PID only, never by name.
type Process struct {
	cfg     ProcessConfig
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}

	mu      sync.Mutex
	waitErr error
}

// StartProcess starts cfg. The caller owns the process and must Stop or Kill
// it; StartTestProcess does that through t.Cleanup.
func StartProcess(cfg ProcessConfig) (*Process, error) {
	if cfg.LogPath == "" {
		return nil, fmt.Errorf("start %s: LogPath is required", cfg.Name)
	}
	lf, err := os.OpenFile(cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Name, err)
	}
	fmt.Fprintf(lf, "==== %s: start %s %s\n", time.Now().Format(time.RFC3339Nano), cfg.Path, strings.Join(cfg.Args, " "))
	cmd := exec.Command(cfg.Path, cfg.Args...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	cmd.Dir = cfg.Dir
	cmd.Stdout = lf
	cmd.Stderr = lf
	// Own process group: a terminal's Ctrl-C reaches only the parent, which
	// then stops the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !cfg.Detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", cfg.Name, cfg.Path, err)
	}
	p := &Process{cfg: cfg, cmd: cmd, logFile: lf, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		fmt.Fprintf(lf, "==== %s: exited: %v\n", time.Now().Format(time.RFC3339Nano), cmd.ProcessState)
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// StartTestProcess starts cfg and registers a cleanup that stops it (SIGTERM,
// SIGKILL after DefaultGrace) and, if the test failed, prints its log tail.
func StartTestProcess(t testing.TB, cfg ProcessConfig) *Process {
	t.Helper()
	p, err := StartProcess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop(DefaultGrace)
		if t.Failed() {
			t.Logf("---- %s log tail (%s) ----\n%s", cfg.Name, cfg.LogPath, p.LogTail(60))
		}
	})
	return p
}

// Name is the configured name.
func (p *Process) Name() string { return p.cfg.Name }

// PID is the operating-system process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is the file holding stdout and stderr.
func (p *Process) LogPath() string { return p.cfg.LogPath }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait blocks until the process exits and returns its exit error (nil for
// status 0; an *exec.ExitError otherwise).
func (p *Process) Wait() error {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Signal sends sig to the process (not its group) if it still runs.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s (pid %d): %w", p.cfg.Name, p.PID(), err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL, and waits for the
// process to be reaped. Stopping an exited process is a no-op.
func (p *Process) Stop(grace time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	return p.Kill()
}

// Kill sends SIGKILL (a crash, as far as the process is concerned) and waits
// for it to be reaped.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// LogTail returns the last n lines of the log.
func (p *Process) LogTail(n int) string {
	return fileTail(p.cfg.LogPath, n)
}

func fileTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const max = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		if _, err := f.Seek(st.Size()-max, io.SeekStart); err != nil {
			return fmt.Sprintf("(log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
