package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/validator"
)

const checkConfigUsage = `usage: sextant check-config FILE [serve flags]

Reads FILE as "sextant serve --config FILE [serve flags]" would, checks
every setting without opening a listener or writing a file, and prints the
effective configuration (defaults, then FILE, then the flags) as TOML,
with the settings that weaken security first. Exit status 1 on any error.
`

// checkConfigMain is `sextant check-config FILE [serve flags]`.
func checkConfigMain(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprint(stdout, checkConfigUsage)
		return nil
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, checkConfigUsage)
		return errUsage
	}
	o, err := parseServeFlags(append([]string{"--" + configFlag, args[0]}, args[1:]...), stderr)
	if err != nil {
		return err
	}
	if err := checkServeOptions(o, true); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "# sextant serve: effective configuration (defaults, then %s, then the command line)\n", o.configFile)
	for _, w := range securityWarnings(o) {
		fmt.Fprintf(stdout, "# WARNING: %s\n", w)
	}
	o.writeEffectiveConfig(stdout)
	return nil
}

// checkServeOptions runs the checks serve makes before it starts, without
// opening a socket or writing a file (the RFC 5011 state file is only
// read): each file named is loaded, each specification parsed. withZones
// also loads the zone files (a SIGHUP leaves that to reloadZones, which
// keeps a zone that fails to load serving).
func checkServeOptions(o *serveOptions, withZones bool) error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err := newLogger(o.logLevel, io.Discard)
	add(err)
	add(o.opsOptions.validate())
	if o.cacheSize <= 0 {
		add(fmt.Errorf("--cache-size must be positive, got %d", o.cacheSize))
	}
	if o.cacheBytes <= 0 {
		add(fmt.Errorf("--cache-max-bytes must be positive, got %d", o.cacheBytes))
	}
	_, err = dnsClock(o.clockFile)
	add(err)
	if o.rootHints != "" {
		if _, err := roothints.LoadHints(o.rootHints); err != nil {
			add(fmt.Errorf("--root-hints: %w", err))
		}
	}
	if len(o.trustAnchors) > 0 {
		if _, err := roothints.LoadAnchors(o.trustAnchors...); err != nil {
			add(fmt.Errorf("--trust-anchor: %w", err))
		}
	}
	add(checkAnchorState(&o.resolverOptions))
	add(checkFrontEndOptions(&o.frontEndOptions))
	add(o.abuse.validate())
	add(checkListenAddrs(o.flags))
	add(o.metricsOptions.check())
	var zones *authority.Server
	flatten, flattenErr := o.flattenOptions.modes()
	add(flattenErr)
	if withZones && len(o.zones) > 0 {
		zones, err = loadZones(o.zones, flatten)
		add(err)
	}
	keys, err := o.parseKeys()
	add(err)
	secondaries, err := o.parseSecondaries(zones, keys)
	add(err)
	if withZones && flattenErr == nil && (zones != nil || len(o.zones) == 0) {
		add(checkFlattened(flatten, zones, secondaries, o.sign))
	}
	_, err = o.parseXfrOut(zones, secondaries, keys)
	add(err)
	return errors.Join(errs...)
}

// checkAnchorState reads the --trust-anchor-state file, or checks that it
// could be started from the configured anchors (without writing it).
func checkAnchorState(o *resolverOptions) error {
	if o.anchorState == "" || o.noDNSSEC {
		return nil
	}
	f, err := os.Open(o.anchorState)
	switch {
	case err == nil:
		defer f.Close()
		if _, err := validator.LoadManagedAnchors(f); err != nil {
			return fmt.Errorf("--trust-anchor-state: %w", err)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if o.rootHints != "" && len(o.trustAnchors) == 0 {
			return fmt.Errorf("--trust-anchor-state %s does not exist yet and there are no anchors to start it from: give --trust-anchor", o.anchorState)
		}
		return nil
	default:
		return fmt.Errorf("--trust-anchor-state: %w", err)
	}
}

// checkFrontEndOptions checks the TLS pair and the connection limits.
func checkFrontEndOptions(o *frontEndOptions) error {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey); err != nil {
			return fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
	}
	if o.maxConns < 0 || o.connsPerClient < 0 || o.connsPerNetwork < 0 {
		return errors.New("--max-conns, --conns-per-client and --conns-per-network must not be negative")
	}
	return nil
}

// checkListenAddrs checks the flags taking ADDR:PORT values: whatever
// front end is added, a flag whose usage says ADDR:PORT is checked here too.
func checkListenAddrs(flags *flag.FlagSet) error {
	var errs []error
	flags.VisitAll(func(f *flag.Flag) {
		if name, _ := flag.UnquoteUsage(f); name != "ADDR:PORT" || kindOf(f) != kindList {
			return
		}
		for _, a := range strings.Split(f.Value.String(), ",") {
			if a == "" {
				continue
			}
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				errs = append(errs, fmt.Errorf("--%s %q: want ADDR:PORT", f.Name, a))
			}
		}
	})
	return errors.Join(errs...)
}

// securityWarnings are the settings that weaken what the resolver
// guarantees. check-config prints them before the configuration; serve
// logs them at every start (the validation one from configureValidation,
// the others from otherSecurityWarnings).
func securityWarnings(o *serveOptions) []string {
	return append(validationWarnings(o), otherSecurityWarnings(o)...)
}

// validationWarnings says when DNSSEC validation is off altogether.
func validationWarnings(o *serveOptions) []string {
	var w []string
	switch {
	case o.noDNSSEC:
		w = append(w, "DNSSEC validation is OFF (no-dnssec): forged answers reach clients unnoticed")
	case o.rootHints != "" && len(o.trustAnchors) == 0 && o.anchorState == "":
		w = append(w, "DNSSEC validation is OFF: root-hints is set without trust-anchor (or trust-anchor-state), "+
			"and the built-in anchors belong to the IANA root; forged answers reach clients unnoticed. "+
			"Give the trust anchor of these roots to validate")
	}
	return w
}

// otherSecurityWarnings are the weakening settings other than validation
// being off.
func otherSecurityWarnings(o *serveOptions) []string {
	var w []string
	if len(o.negAnchors) > 0 && !o.noDNSSEC {
		w = append(w, "DNSSEC validation is off at and below "+strings.Join(o.negAnchors, ", ")+" (negative-trust-anchor)")
	}
	if o.clockFile != "" {
		w = append(w, "DNS time follows clock-file "+o.clockFile+": whoever can write it decides which signatures are valid")
	}
	if slices.ContainsFunc(o.allow, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
		w = append(w, "allow admits every address: an open resolver is used to amplify attacks on others")
	}
	if slices.ContainsFunc(o.proxyFrom, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
		w = append(w, "proxy-from trusts every address: any client can send a PROXY header and pass for any other, past the ACL and the rate limit")
	}
	if o.metricsListen != "" && !o.metricsOptions.loopback() {
		w = append(w, "metrics-listen "+o.metricsListen+" is not a loopback address and has no access control: whoever reaches it reads the query rates and the upstream servers asked")
	}
	if o.encrypted() && o.tlsCert == "" {
		w = append(w, "DoT/DoH/DoQ without tls-cert serve a self-signed certificate: clients cannot authenticate this server")
	}
	if len(o.tsigKeys) > 0 {
		if o.onCommandLine["tsig-key"] {
			w = append(w, "tsig-key on the command line is visible to every local user (ps); use tsig-key-file")
		} else if configWorldReadable(o.configFile) {
			w = append(w, o.configFile+" holds TSIG secrets (tsig-key) and is readable by other users: chmod 600 it")
		}
	}
	return w
}

// addZones loads the zone files of want that are not served yet and
// reports whether that was the whole change; a file taken out of the list
// needs a restart (its zone keeps serving until then), and so does the
// first zone of a serve started without any.
func (o *serveOptions) addZones(zones *authority.Server, want stringList, log *slog.Logger) bool {
	if zones == nil {
		return false
	}
	whole := true
	for _, p := range o.zones {
		whole = whole && slices.Contains(want, p)
	}
	for _, p := range want {
		if slices.Contains(o.zones, p) {
			continue
		}
		z, err := zones.ParseFile(p, "")
		if err == nil && zones.Zone(z.Origin()) != nil {
			err = fmt.Errorf("zone %s is already served", z.Origin())
		}
		if err == nil {
			err = zones.LoadFile(p, "")
		}
		if err != nil {
			log.Error("zone not added", "file", p, "err", err)
			whole = false
			continue
		}
		o.zones = append(o.zones, p)
		log.Info("zone added", "file", p, "zone", z.Origin())
	}
	return whole
}
