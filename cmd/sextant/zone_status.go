package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/authority/signer"
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// zoneMain runs `sextant zone status [--state-dir DIR] [--key-dir DIR]
// [ZONE]`: what a running `sextant serve` last wrote about its secondary
// zones (after each refresh) in its state directory, and about the zones it
// signs (after each signing) in its key directory.
func zoneMain(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprintln(stderr, "usage: sextant zone status [--state-dir DIR] [--key-dir DIR] [ZONE]")
		return errUsage
	}
	fs := flag.NewFlagSet("sextant zone status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state-dir", defaultStateDir, "the --state-dir of the serve to report on")
	keyDir := fs.String("key-dir", "", "the --key-dir of the serve to report on (default: --state-dir/keys)")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "sextant zone status: unexpected arguments %q\n", fs.Args()[1:])
		return errUsage
	}
	if *keyDir == "" {
		*keyDir = filepath.Join(*stateDir, "keys")
	}
	st, err := secondary.ReadStatus(filepath.Join(*stateDir, "secondary"))
	signing, serr := signer.ReadAllStatus(*keyDir)
	if err != nil && serr != nil {
		return fmt.Errorf("%w (is a serve with --secondary or --sign zones running with --state-dir %s?)", err, *stateDir)
	}
	var want string
	if fs.NArg() == 1 {
		want = dnsname.Canonical(fs.Arg(0))
	}
	signed := make(map[string]signer.Status, len(signing))
	for _, s := range signing {
		signed[s.Zone] = s
	}
	found := false
	now := time.Now()
	for _, z := range st {
		if want != "" && z.Zone != want {
			continue
		}
		found = true
		printZoneStatus(stdout, z, now)
		if s, ok := signed[z.Zone]; ok {
			printSigningStatus(stdout, s, now)
			delete(signed, z.Zone)
		}
	}
	for _, s := range signing {
		if _, ok := signed[s.Zone]; !ok || (want != "" && s.Zone != want) {
			continue
		}
		found = true
		fmt.Fprintf(stdout, "%s\n  role:            primary (zone file)\n", s.Zone)
		printSigningStatus(stdout, s, now)
	}
	if !found && want != "" {
		return fmt.Errorf("%s is not a secondary zone of that serve, nor one it signs", want)
	}
	return nil
}

func printZoneStatus(w io.Writer, z secondary.Status, now time.Time) {
	state := "not yet transferred"
	switch {
	case z.Loaded && z.Expired:
		state = "EXPIRED (answering SERVFAIL)"
	case z.Loaded:
		state = "serving"
	}
	prims := make([]string, len(z.Primaries))
	for i, p := range z.Primaries {
		prims[i] = p.String()
	}
	outcome := "ok"
	if z.LastError != "" {
		outcome = "failed"
	}
	fmt.Fprintf(w, "%s\n", z.Zone)
	fmt.Fprintf(w, "  role:            secondary, %s\n", state)
	if z.Loaded {
		fmt.Fprintf(w, "  serial:          %d\n", z.Serial)
	}
	fmt.Fprintf(w, "  primaries:       %s\n", strings.Join(prims, ", "))
	fmt.Fprintf(w, "  last refresh:    %s, %s\n", when(z.LastAttempt, now), outcome)
	fmt.Fprintf(w, "  last success:    %s\n", when(z.LastSuccess, now))
	fmt.Fprintf(w, "  last transfer:   %s (%d since start)\n", when(z.LastTransfer, now), z.Transfers)
	if !z.ExpiresAt.IsZero() {
		if left := z.ExpiresAt.Sub(now); left > 0 {
			fmt.Fprintf(w, "  expires in:      %s\n", left.Round(time.Second))
		} else {
			fmt.Fprintf(w, "  expired:         %s\n", when(z.ExpiresAt, now))
		}
	}
	if z.LastError != "" {
		fmt.Fprintf(w, "  last error:      %s\n", z.LastError)
	}
	fmt.Fprintf(w, "  NOTIFYs refused: %d\n", z.NotifiesRefused)
}

func when(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
}
