package stack_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Field 3, after the parenthesised command name, is the state.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// childPIDs lists the live children of this test process.
func childPIDs(t *testing.T) []int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // thread exited
		}
		for _, field := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(field); err == nil && processAlive(pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// assertGone fails if any of pids still runs or if this process still has
// children.
func assertGone(t *testing.T, pids []int) {
	t.Helper()
	if len(pids) == 0 {
		t.Fatal("no PIDs recorded: nothing was started?")
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("pid %d still running after Stop", pid)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("pid %d still exists after Stop", pid)
		}
	}
	if left := childPIDs(t); len(left) > 0 {
		t.Errorf("child processes left after Stop: %v", left)
	}
}
