package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
)

// Main runs `sextant lab`: it starts a lab, writes root.hints, root.ds and
// root.key into --out, prints the servers, the cases and the command line
// that resolves through the lab, and serves until ctx is cancelled.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stdout)
	out := fs.String("out", "lab-out", "directory for root.hints, root.ds and root.key")
	addrBase := fs.String("addr-base", "", "first address of the /16 for the servers, e.g. 127.53.0.0 (default: first free of 127.53-62.0.0)")
	bulk := fs.Int("bulk", DefaultBulkHosts, "number of bulk host names h<i>.bulk.test (0 for none)")
	slow := fs.Duration("delay-slow", DefaultSlowDelay, "delay of the slow name server")
	var forge []string
	fs.Func("forge-signatures", "HOST (e.g. ns1.nic.test) corrupts every RRSIG it sends, its sibling stays intact (repeatable)", func(h string) error {
		forge = append(forge, h)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lab: unexpected arguments %q", fs.Args())
	}
	cfg := Config{BulkHosts: *bulk, SlowDelay: *slow}
	if *bulk == 0 {
		cfg.BulkHosts = -1
	}
	if *addrBase != "" {
		a, err := netip.ParseAddr(*addrBase)
		if err != nil {
			return fmt.Errorf("lab: --addr-base: %w", err)
		}
		cfg.AddrBase = a
	}
	t0 := time.Now()
	l, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer l.Close()
	for _, h := range forge {
		s := l.Server(dns.Fqdn(h))
		if s == nil {
			return fmt.Errorf("lab: --forge-signatures: no server %q", h)
		}
		s.SetForgeSignatures(true)
	}
	if err := l.WriteFiles(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Sextant lab: %d servers in %s/16, started in %v\n\n", len(l.Servers()), l.AddrBase(), time.Since(t0).Round(time.Millisecond))
	l.PrintServers(stdout)
	fmt.Fprintln(stdout)
	PrintCases(stdout)
	hints, ds := filepath.Join(*out, FileRootHints), filepath.Join(*out, FileRootDS)
	fmt.Fprintf(stdout, "\nFiles: %s, %s, %s\n", hints, ds, filepath.Join(*out, FileRootKey))
	fmt.Fprintf(stdout, "Resolve through the lab:\n  sextant serve --root-hints %s --trust-anchor %s --listen 127.0.0.1:5353\n", hints, ds)
	fmt.Fprintf(stdout, "Ask a lab server directly:\n  dig @%s www.%s A +dnssec\n", l.Server(HostZones1).Addr(), SecureAlg13)
	fmt.Fprintln(stdout, "Serving until interrupted.")
	return l.keepSigned(ctx, resignEvery)
}

// resignEvery is how often a lab left running re-signs its zones: well
// inside the signatures' lifetime, so that they never expire under it.
const resignEvery = sigLifetime / 3

// keepSigned re-signs every zone each period until ctx is done.
func (l *Lab) keepSigned(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.Resign(); err != nil {
				return fmt.Errorf("lab: re-sign: %w", err)
			}
		}
	}
}

// PrintServers writes a table of the lab's servers.
func (l *Lab) PrintServers(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tADDRESS\tMODE\tZONES")
	for _, s := range l.Servers() {
		mode := "normal"
		switch {
		case s.Dropping():
			mode = "drops all"
		case s.Refusing():
			mode = "REFUSED"
		case s.forge.Load():
			mode = "forges RRSIGs"
		case s.Delay() > 0:
			mode = "delay " + s.Delay().String()
		}
		host := strings.Join(s.Names(), " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", host, s.Addr(), mode, strings.Join(s.Zones(), " "))
	}
	tw.Flush()
}

// PrintCases writes a table of the lab's cases.
func PrintCases(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tQUERY\tEXPECT\tEXERCISES")
	for _, c := range Cases() {
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\n", c.Name, c.QName, dns.TypeToString[c.QType], c.Expect, c.Exercises)
	}
	tw.Flush()
}
