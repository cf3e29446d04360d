// Command sextant is a DNSSEC-validating recursive DNS resolver.
//
//	sextant serve [flags]        answer clients (Do53 UDP/TCP)
//	sextant check-config FILE    check a --config file and print the effective configuration
//	sextant query NAME [TYPE]    one resolution in-process, like delv
//	sextant lab --out DIR        a simulated DNSSEC-signed internet on loopback
//	sextant zone status [ZONE]   secondary zones: serial, last refresh, expiry, last error
//	sextant ctl COMMAND          control a running serve over its --control-socket
//
// This package only parses flags and wires packages together; the logic lives
// in the packages, so that Go programs can embed the resolver without it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: sextant <command> [flags]

commands:
  serve    run the resolver (Do53 on UDP and TCP); --config FILE reads its flags from a TOML file
  check-config FILE [flags]
           check a serve configuration without starting, print the effective one and its security warnings
  query    resolve one name in-process and print the answer and its security status
  lab      start a simulated DNSSEC-signed internet on loopback for testing
  zone     zone status: the secondary zones of a running serve (serial, refresh, expiry, last error)
  ctl      control a running serve over its --control-socket: stats, flush, reload, zone status, trace

Run "sextant <command> -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serveMain(ctx, args[1:], stdout, stderr)
	case "check-config":
		err = checkConfigMain(args[1:], stdout, stderr)
	case "query":
		err = queryMain(ctx, args[1:], stdout, stderr)
	case "lab":
		err = labMain(ctx, args[1:], stdout, stderr)
	case "zone":
		err = zoneMain(args[1:], stdout, stderr)
	case "ctl":
		err = ctlMain(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sextant: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if err == errUsage {
		return 2
	}
	if err == errReported {
		return 1
	}
	// One line each for joined errors (every mistake of a config file).
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "sextant %s: %s\n", args[0], line)
	}
	return 1
}
