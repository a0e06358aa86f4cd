package stack_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smartscale/smartscale/e2e/stack"
)

func TestProcessStopEscalatesToKill(t *testing.T) {
	dir := t.TempDir()
	// Ignores SIGTERM, so Stop must fall back to SIGKILL after the grace.
	p := stack.StartTestProcess(t, stack.ProcessConfig{
		Name: "stubborn", Path: "/bin/sh",
		Args:    []string{"-c", `trap '' TERM; echo "trap-$((6*7))"; while :; do sleep 0.05; done`},
		LogPath: filepath.Join(dir, "stubborn.log"),
	})
	// The log's header line holds the script itself, so wait for what
	// only running it prints.
	waitLog(t, p, "trap-42")
	if err := p.Stop(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := p.Wait(); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("exit = %v, want killed by SIGKILL", err)
	}
	if processAlive(p.PID()) {
		t.Fatalf("pid %d alive after Stop", p.PID())
	}
}

func TestProcessKillAndEnv(t *testing.T) {
	dir := t.TempDir()
	p := stack.StartTestProcess(t, stack.ProcessConfig{
		Name: "env", Path: "/bin/sh",
		Args:    []string{"-c", `echo "value=$STACK_TEST_VALUE"; exec sleep 60`},
		Env:     []string{"STACK_TEST_VALUE=42"},
		LogPath: filepath.Join(dir, "env.log"),
	})
	waitLog(t, p, "value=42")
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("Exited() false after Kill")
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("Stop after exit: %v", err)
	}
	assertGone(t, []int{p.PID()})
}

func waitLog(t *testing.T, p *stack.Process, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.LogTail(20), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s log never showed %q:\n%s", p.Name(), want, p.LogTail(20))
}
