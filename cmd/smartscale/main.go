// Command smartscale is SmartScale's one binary: the Alertmanager webhook
// (serve), configuration checks, rule tooling and state setup.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "smartscale:", err)
		os.Exit(1)
	}
}
