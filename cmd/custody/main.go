// Command custody keeps the HIPAA chain of custody for a contact center's ePHI: it
// writes validated facts to an immutable JetStream log and replays them for forensics.
// Run "custody --help" for the subcommands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
