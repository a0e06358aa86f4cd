//go:build failpoints

package failpoint

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"testing"
	"time"
)

func TestPauseBlocksOnlyAtAnArmedPoint(t *testing.T) {
	if !Enabled {
		t.Fatal("Enabled is false in a failpoints build")
	}
	var buf bytes.Buffer
	if pause(context.Background(), &buf, "scale_up/launching/before,scale_down/draining/after", "scale_up/launching/after") {
		t.Fatal("paused at a point that is not armed")
	}
	if pause(context.Background(), &buf, "", "scale_up/launching/after") {
		t.Fatal("paused with nothing armed")
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %q for points that are not armed", buf.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() {
		done <- pause(ctx, &buf, "scale_up/launching/before,scale_down/draining/after", "scale_down/draining/after")
	}()
	select {
	case <-done:
		t.Fatal("returned before its context ended")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if !<-done {
		t.Fatal("did not report the pause")
	}
	var line map[string]string
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("stderr line %q: %v", buf.String(), err)
	}
	if line["msg"] != "failpoint reached" || line["failpoint"] != "scale_down/draining/after" {
		t.Fatalf("line %v", line)
	}
	if _, err := time.Parse(time.RFC3339Nano, line["time"]); err != nil {
		t.Fatalf("time: %v", err)
	}
}

// Hit reads the armed points from the environment and writes to stderr.
func TestHitReadsTheEnvironment(t *testing.T) {
	t.Setenv(Env, "scale_up/waiting_ready/after")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stderr := os.Stderr
	os.Stderr = w
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // an ended context: Hit reports and returns at once
	Hit(ctx, "scale_up", "waiting_ready", After)
	Hit(context.Background(), "scale_up", "waiting_ready", Before) // not armed: returns
	os.Stderr = stderr
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`"failpoint":"scale_up/waiting_ready/after"`)) || bytes.Count(out, []byte("\n")) != 1 {
		t.Fatalf("stderr %q, want one line for the armed point", out)
	}
}
