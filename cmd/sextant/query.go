package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/resolver"
)

// queryMain is `sextant query NAME [TYPE]`: one resolution in-process, like
// delv or unbound-host, printing the answer, rcode and security status.
func queryMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := &resolverOptions{}
	fs := flag.NewFlagSet("sextant query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.register(fs)
	trace := fs.Bool("trace", false, "print each server asked, why it was chosen, its RTT and what it returned")
	asJSON := fs.Bool("json", false, "print one JSON object (schema in README: \"sextant query --json\") instead of dig-like text")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sextant query [flags] NAME [TYPE]")
		fs.PrintDefaults()
	}
	// Let flags come after the name as well as before it.
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return errUsage
	}
	name := dns.Fqdn(pos[0])
	if _, ok := dns.IsDomainName(name); !ok {
		return fmt.Errorf("%q is not a domain name", pos[0])
	}
	qtype := dns.TypeA
	if len(pos) == 2 {
		t, ok := dns.StringToType[strings.ToUpper(pos[1])]
		if !ok {
			return fmt.Errorf("unknown type %q", pos[1])
		}
		qtype = t
	}
	if o.logLevel == "info" {
		o.logLevel = "warn" // a one-shot command keeps its output for the answer
	}
	log, err := newLogger(o.logLevel, stderr)
	if err != nil {
		return err
	}
	res, _, _, err := newResolver(o, log)
	if err != nil {
		return err
	}
	var traced []string
	if *trace {
		ctx = resolver.WithTrace(ctx, func(e resolver.TraceEvent) {
			if *asJSON {
				traced = append(traced, e.String())
			} else {
				fmt.Fprintf(stdout, ";; %s\n", e)
			}
		})
	}
	began := time.Now()
	result, failure, err := resolveForReport(ctx, res, name, qtype)
	if err != nil {
		return err
	}
	report := newQueryReport(name, qtype, result, failure, time.Since(began), inProcessServer)
	report.Trace = traced
	if *asJSON {
		if err := report.writeJSON(stdout); err != nil {
			return err
		}
	} else {
		report.writeText(stdout)
	}
	if failure != nil {
		return errReported // exit 1: scripts must not take a failure for an answer
	}
	return nil
}
