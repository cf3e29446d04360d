package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/authority/xfrout"
	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/server"
	"github.com/sextant-dns/sextant/transport"
	"github.com/sextant-dns/sextant/validator"
)

// resolverOptions are the flags shared by `sextant serve` and `sextant query`.
type resolverOptions struct {
	rootHints    string
	trustAnchors stringList
	negAnchors   stringList
	noDNSSEC     bool
	anchorState  string // --trust-anchor-state (validation.go)
	qmin         bool
	outgoing     addrList
	upstreamIPv4 bool
	upstreamIPv6 bool
	upstreamLoop bool
	clockFile    string
	cacheSize    int
	cacheBytes   int
	logLevel     string
	// serve-stale (RFC 8767) and prefetch (resolver/stale.go, prefetch.go)
	serveStale       time.Duration
	staleAnswerAfter time.Duration
	staleZones       stringList
	prefetch         bool
	shared           sharedCacheOptions
	// ntas is the running set of negative trust anchors (nil without
	// validation), made from negAnchors by configureValidation.
	ntas *validator.NegativeTrustAnchors
}

func (o *resolverOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.rootHints, "root-hints", "", "root hints `FILE` (zone-file syntax; default: built-in IANA hints)")
	fs.Var(&o.trustAnchors, "trust-anchor", "trust anchor `FILE` with DS and/or DNSKEY records (repeatable; default: built-in root anchors)")
	fs.Var(&o.negAnchors, "negative-trust-anchor", "`NAME` below which DNSSEC validation is off (repeatable)")
	fs.BoolVar(&o.noDNSSEC, "no-dnssec", false, "turn DNSSEC validation off")
	registerValidationFlags(fs, o)
	fs.BoolVar(&o.qmin, "qname-minimisation", true, "send each server only the labels it needs (RFC 9156)")
	fs.Var(&o.outgoing, "outgoing-address", "source `ADDR` for upstream queries (repeatable, one per address family)")
	fs.BoolVar(&o.upstreamIPv4, "upstream-ipv4", true, "query authoritative servers over IPv4")
	fs.BoolVar(&o.upstreamIPv6, "upstream-ipv6", true, "query authoritative servers over IPv6")
	fs.BoolVar(&o.upstreamLoop, "upstream-loopback", false, "allow upstream queries to loopback addresses (implied by loopback root hints)")
	fs.StringVar(&o.clockFile, "clock-file", "", "DNS time follows this libfaketime timestamp `FILE` (@YYYY-MM-DD HH:MM:SS, UTC)")
	fs.IntVar(&o.cacheSize, "cache-size", cache.DefaultMaxEntries, "maximum cached `ENTRIES` (RRsets and ready answers together)")
	fs.DurationVar(&o.serveStale, "serve-stale", resolver.DefaultMaxStale, "how long past expiry cached data may answer when its servers fail or are slow (RFC 8767, with TTL 30 and EDE 3); 0 turns serve-stale off")
	fs.DurationVar(&o.staleAnswerAfter, "serve-stale-answer-after", resolver.DefaultStaleAnswerAfter, "how long a client waits for a refresh before it gets stale data")
	fs.Var(&o.staleZones, "serve-stale-zone", "`ZONE=DURATION`: the serve-stale limit at and below ZONE (repeatable; 0 turns it off there)")
	o.shared.register(fs)
	fs.BoolVar(&o.prefetch, "prefetch", true, "refresh cached data asked for in the last tenth of its TTL in the background")
	fs.IntVar(&o.cacheBytes, "cache-max-bytes", cache.DefaultMaxBytes, "maximum memory held by cached entries, in `BYTES` (estimated; RRsets and ready answers together; sets the Go memory limit unless GOMEMLIMIT is set)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
}

// serveOptions are the flags of `sextant serve` (a stable interface: see README).
type serveOptions struct {
	resolverOptions
	frontEndOptions
	secondaryOptions
	configOptions
	ddrOptions
	controlOptions
	metricsOptions
	signOptions
	flattenOptions
	opsOptions
	zones          stringList
	shutdownWithin time.Duration
}

func parseServeFlags(args []string, stderr io.Writer) (*serveOptions, error) {
	o := &serveOptions{}
	fs := flag.NewFlagSet("sextant serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.resolverOptions.register(fs)
	fs.Var(&o.listen, "listen", "`ADDR:PORT` to answer on, UDP and TCP (repeatable; default 127.0.0.1:53 and [::1]:53)")
	fs.Var(&o.dot, "dot", "`ADDR:PORT` for DNS over TLS, e.g. 127.0.0.1:853 (repeatable)")
	fs.Var(&o.doh, "doh", "`ADDR:PORT` for DNS over HTTPS: HTTP/1.1 and HTTP/2 on TCP, HTTP/3 on UDP (repeatable)")
	fs.Var(&o.doq, "doq", "`ADDR:PORT` for DNS over QUIC, e.g. 127.0.0.1:853 (repeatable)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "certificate chain `FILE` (PEM) for DoT/DoH/DoQ; reloaded when it changes or on SIGHUP (default: self-signed)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "private key `FILE` (PEM) for --tls-cert")
	fs.Var(&o.allow, "allow", "client `CIDR` allowed to query (repeatable; default: loopback only)")
	fs.Var(&o.proxyFrom, "proxy-from", "load balancer `CIDR` (dnsdist useProxyProtocol) whose PROXY protocol v2 header names the client, on Do53, DoT and DoH over TCP; from it a header is required, from others refused (repeatable; default: off)")
	fs.IntVar(&o.maxConns, "max-conns", 1024, "open connections per stream front end (TCP, DoT, DoH, DoQ) and listen address, `N`")
	fs.IntVar(&o.connsPerClient, "conns-per-client", 64, "open connections per client address, front end and listen address, `N`")
	fs.IntVar(&o.connsPerNetwork, "conns-per-network", 256, "open connections per client /24 (IPv4) or /56 (IPv6), front end and listen address, `N`")
	o.abuse.register(fs)
	fs.Var(&o.zones, "zone", "zone `FILE` served by the co-located authoritative backend (repeatable)")
	o.secondaryOptions.register(fs)
	o.signOptions.register(fs)
	o.flattenOptions.register(fs)
	fs.DurationVar(&o.shutdownWithin, "shutdown-timeout", 5*time.Second, "how long to let in-flight queries finish at shutdown")
	o.configOptions.registerConfigFlag(fs)
	o.ddrOptions.register(fs)
	o.controlOptions.register(fs)
	o.opsOptions.register(fs)
	o.metricsOptions.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sextant serve: unexpected arguments %q\n", fs.Args())
		return nil, errUsage
	}
	if err := o.applyConfig(fs, args); err != nil {
		return nil, err
	}
	if len(o.listen) == 0 {
		o.listen = stringList{"127.0.0.1:53", "[::1]:53"}
	}
	return o, nil
}

// newResolver builds the resolver (with its cache and validator) and the
// ready-to-send answer cache for its client handler from the shared flags:
// --cache-size and --cache-max-bytes bound the two caches together
// (cache.Config.Split). customHints reports whether --root-hints was given.
func newResolver(o *resolverOptions, log *slog.Logger) (res *resolver.Resolver, answers *cache.Answers, customHints bool, err error) {
	if o.cacheSize <= 0 {
		return nil, nil, false, fmt.Errorf("--cache-size must be positive, got %d", o.cacheSize)
	}
	if o.cacheBytes <= 0 {
		return nil, nil, false, fmt.Errorf("--cache-max-bytes must be positive, got %d", o.cacheBytes)
	}
	clk, err := dnsClock(o.clockFile)
	if err != nil {
		return nil, nil, false, err
	}
	cfg := resolver.DefaultConfig()
	cfg.Clock = clk
	cfg.Logger = log
	cfg.QNameMinimisation = o.qmin
	cfg.DisableUpstreamIPv4, cfg.DisableUpstreamIPv6 = !o.upstreamIPv4, !o.upstreamIPv6
	cfg.OutgoingAddrs = o.outgoing
	cfg.UpstreamLoopback = o.upstreamLoop
	customHints = o.rootHints != ""
	if customHints {
		h, err := roothints.LoadHints(o.rootHints)
		if err != nil {
			return nil, nil, false, fmt.Errorf("--root-hints: %w", err)
		}
		cfg.Hints = h
	}
	stale, err := o.staleConfig()
	if err != nil {
		return nil, nil, false, err
	}
	cfg.ServeStale, cfg.Prefetch = stale, o.prefetch
	shared, err := o.shared.open(clk, log)
	if err != nil {
		return nil, nil, false, err
	}
	if shared != nil {
		cfg.SharedCache = shared
	}
	cc := cache.Config{MaxEntries: o.cacheSize, MaxBytes: o.cacheBytes, Clock: clk, Prefetch: o.prefetch}
	if stale != nil {
		cc.ServeStale = stale.Longest()
	}
	rrsets, ready := cc.Split()
	cfg.Cache = cache.New(rrsets)
	if err := configureValidation(&cfg, o, customHints, log); err != nil {
		return nil, nil, false, err
	}
	res, err = resolver.New(cfg)
	if err != nil {
		return nil, nil, false, fmt.Errorf("resolver: %w", err)
	}
	return res, cache.NewAnswers(ready), customHints, nil
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// dnsClock returns the one DNS clock: the system's, or one following --clock-file.
func dnsClock(path string) (clock.Clock, error) {
	if path == "" {
		return clock.System{}, nil
	}
	c, err := clock.NewFile(path)
	if err != nil {
		return nil, fmt.Errorf("--clock-file: %w", err)
	}
	return c, nil
}

// loadZones builds the co-located authoritative backend from --zone files,
// with CNAME flattening for the origins of flatten.
func loadZones(paths []string, flatten map[string]authority.FlattenMode) (*authority.Server, error) {
	srv := authority.NewServer()
	for origin, mode := range flatten {
		srv.SetFlatten(origin, mode)
	}
	for _, p := range paths {
		if err := srv.LoadFile(p, ""); err != nil {
			return nil, fmt.Errorf("--zone: %w", err)
		}
	}
	return srv, nil
}

func serveMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := o.opsOptions.validate(); err != nil {
		return err
	}
	log, level, queryLogger, err := newServeLogger(o.logLevel, o.logFormat, stderr)
	if err != nil {
		return err
	}
	for _, w := range otherSecurityWarnings(o) {
		log.Warn("security: " + w)
	}
	res, answers, customHints, err := newResolver(&o.resolverOptions, log)
	if err != nil {
		return err
	}
	defer res.Close() // after the front ends: ends re-priming and RFC 5011 refreshes
	setMemoryLimit(o.cacheBytes, log)

	var local server.LocalZones
	var zones *authority.Server
	flatten, err := o.flattenOptions.modes()
	if err != nil {
		return err
	}
	if len(o.zones) > 0 {
		if zones, err = loadZones(o.zones, flatten); err != nil {
			return err
		}
		local = zones
	}
	keys, err := o.parseKeys()
	if err != nil {
		return err
	}
	secondaries, err := o.parseSecondaries(zones, keys)
	if err != nil {
		return err
	}
	outZones, err := o.parseXfrOut(zones, secondaries, keys)
	if err != nil {
		return err
	}
	if err := checkFlattened(flatten, zones, secondaries, o.sign); err != nil {
		return err
	}
	if zones == nil && len(secondaries) > 0 {
		zones = authority.NewServer()
		local = zones
	}
	if zones != nil {
		zones.SetFlattener(resolverFlattener{res}, res.Clock())
	}
	if err := startSigners(ctx, &o.signOptions, o.stateDir, zones, secondaries, o.clockFile, res, !o.noDNSSEC, log); err != nil {
		return err
	}
	// out sends NOTIFY when a zone it offers changes: a transfer in (the
	// secondary's callback) or a SIGHUP reload of a --zone file.
	var out *xfrout.Server
	if len(outZones) > 0 {
		var closeOut func()
		if out, closeOut, err = startXfrOut(&o.secondaryOptions, outZones, zones, log); err != nil {
			return err
		}
		defer closeOut()
	}
	// notifyTo answers NOTIFYs arriving on --listen (notify.go).
	var notifyTo *secondary.Manager
	if len(secondaries) > 0 {
		clk, err := dnsClock(o.clockFile)
		if err != nil {
			return err
		}
		var onNew func(string)
		if out != nil {
			onNew = func(string) { out.Check(ctx) }
		}
		var closeNotify func()
		notifyTo, closeNotify, err = startSecondaries(ctx, &o.secondaryOptions, secondaries, zones, clk, log, onNew)
		if err != nil {
			return err
		}
		defer closeNotify()
	}
	var lat *server.Latency
	if o.metricsOptions.on() {
		lat = server.NewLatency()
		o.frontEndOptions.responses = transport.NewResponseCounters()
	}
	handler := server.New(res, server.Config{Local: local, Answers: answers, Logger: log, Latency: lat,
		MaxRecursions: o.abuse.maxRecursions, MaxRecursionsPerNetwork: o.abuse.maxRecursionsPerNetwork})

	// SIGHUP is caught before any listener opens, so that a client that
	// got an answer can rely on it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ddr := newDDRHandler(handler)
	qlog := newQueryLog(queryLogger, o.queryLog, o.queryLogSample)
	tap, err := o.opsOptions.openDnstap(log)
	if err != nil {
		return err
	}
	defer tap.close() // after the front ends: their last answers are written
	// The DNS clock stamps the server cookies.
	if o.abuse.clock, err = dnsClock(o.clockFile); err != nil {
		return err
	}
	listeners, err := startListeners(&o.frontEndOptions, withQueryLog(withNotify(ddr, notifyTo), qlog, tap), log)
	if err != nil {
		return err
	}
	defer o.abuse.rotation.start(ctx)()
	ddr.update(&o.ddrOptions, o.tlsCert, listeners.list(), listeners.certs, log)
	rl := &reloader{o: o, log: log, level: level, listeners: listeners, qlog: qlog, res: res,
		answers: handler.Answers(), zones: zones, ntas: o.ntas}
	rl.after = func() { // what a reload does besides the configuration
		if reloadZones(zones, log) {
			// A reloaded zone may now cover names answered from the
			// ready-to-send cache, which is consulted before local zones.
			handler.Answers().Purge()
		}
		if out != nil {
			out.Check(ctx)
		}
		if certs := listeners.certs; certs != nil {
			if err := certs.Reload(); err != nil {
				log.Error("certificate reload failed; the previous certificate keeps serving", "err", err)
			}
		}
		ddr.update(&o.ddrOptions, o.tlsCert, listeners.list(), listeners.certs, log)
	}
	ctl, err := startControl(&o.controlOptions, res, handler.Answers(), &controlOps{listeners: listeners, reload: rl, qlog: qlog, ntas: o.ntas}, o.stateDir, log)
	if err != nil {
		_ = shutdownAll(context.Background(), listeners.list())
		return err
	}
	defer ctl.Close()
	ms, err := startMetrics(&o.metricsOptions, res, handler, lat, listeners, o.frontEndOptions.responses, notifyTo, log)
	if err != nil {
		_ = shutdownAll(context.Background(), listeners.list())
		return err
	}
	if ms != nil {
		defer ms.Close()
	}
	defer reportMemoryOnSignal(log, res.Cache(), handler.Answers())()
	sd := newNotifier()
	if err := sd.ready("answering"); err != nil {
		log.Warn("could not tell systemd the service is ready", "err", err)
	}

	// Priming runs in the background: the listeners are already open.
	go prime(ctx, res, customHints, log)

	for {
		select {
		case <-hup:
			_ = sd.reloading()
			rl.reload("SIGHUP")
			_ = sd.ready("answering")
		case <-ctx.Done():
			log.Info("shutting down")
			_ = sd.stopping()
			sctx, cancel := context.WithTimeout(context.Background(), rl.shutdownTimeout())
			defer cancel()
			if err := shutdownAll(sctx, listeners.list()); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		}
	}
}

// prime primes the root NS set once, saying plainly when the roots cannot be
// reached, then lets the resolver re-prime on its own when the set expires.
func prime(ctx context.Context, res *resolver.Resolver, customHints bool, log *slog.Logger) {
	if err := res.Prime(ctx); err != nil && ctx.Err() == nil {
		if customHints {
			log.Error("priming failed: the root servers in --root-hints do not answer", "err", err)
		} else {
			log.Error("priming failed: the internet's root servers are unreachable from here. "+
				"Without internet access, start a simulated internet with `sextant lab --out DIR` "+
				"and serve it with `sextant serve --root-hints DIR/root.hints --trust-anchor DIR/root.ds`", "err", err)
		}
	} else if err == nil {
		log.Info("primed the root name servers")
	}
	res.Start(ctx)
}

// reloadZones re-reads every --zone file on SIGHUP: a zone whose file is
// gone or now holds another origin stops being served (its names go to the
// resolver like any other), and a zone that fails to load keeps its previous
// version serving. It reports whether there were zones.
func reloadZones(zones *authority.Server, log *slog.Logger) bool {
	if zones == nil {
		return false
	}
	for _, c := range zones.Reload() {
		if c.Err != nil {
			log.Error("zone reload failed; the previous version keeps serving", "file", c.File, "zone", c.Origin, "err", c.Err)
			continue
		}
		if c.Removed != "" {
			log.Warn("zone no longer served", "zone", c.Removed, "file", c.File, "reason", c.Reason)
		}
		if c.Origin != "" {
			log.Info("zone reloaded", "file", c.File, "zone", c.Origin)
		}
	}
	return true
}
