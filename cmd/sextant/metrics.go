package main

// The Prometheus metrics of issue 11: `--metrics-listen ADDR` opens an
// HTTP listener serving /metrics only (package metrics), off by default.

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/metrics"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/server"
	"github.com/sextant-dns/sextant/sharedcache"
	"github.com/sextant-dns/sextant/transport"
)

// metricsOptions is the flag that turns metrics on.
type metricsOptions struct {
	metricsListen string
}

func (o *metricsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsListen, "metrics-listen", "", "`ADDR:PORT` of an HTTP listener serving Prometheus metrics on /metrics, e.g. 127.0.0.1:9153 (default: off)")
}

// check reports a --metrics-listen that is not ADDR:PORT.
func (o *metricsOptions) check() error {
	if o.metricsListen == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(o.metricsListen); err != nil || port == "" {
		return fmt.Errorf("--metrics-listen %q: want ADDR:PORT", o.metricsListen)
	}
	return nil
}

// loopback reports whether --metrics-listen is on a loopback address, where
// only local users reach it ("localhost" counts; an empty host, every
// interface, does not).
func (o *metricsOptions) loopback() bool {
	host, _, err := net.SplitHostPort(o.metricsListen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// on reports whether metrics are asked for: only then do the front ends
// count responses and the handler time answers.
func (o *metricsOptions) on() bool { return o.metricsListen != "" }

// startMetrics opens the metrics listener, or returns nil when it is off.
func startMetrics(o *metricsOptions, res *resolver.Resolver, handler *server.Handler, lat *server.Latency,
	listeners *listenerSet, responses *transport.ResponseCounters, sec *secondary.Manager, log *slog.Logger) (*metrics.Server, error) {
	if !o.on() {
		return nil, nil
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	src := metrics.Sources{
		Latency:   lat,
		Resolver:  res,
		Answers:   handler.Answers(),
		Secondary: sec,
		Conns:     func() []metrics.ConnStats { return connStatsOf(listeners.list()) },
		Responses: responses,
		Handler:   handler,
		RateLimit: listeners.base.RateLimit, // shared by every front end
		RRL:       listeners.base.RRL,
	}
	if sc, ok := res.SharedCache().(*sharedcache.Cache); ok {
		src.SharedCache = sc
	}
	s, err := metrics.Listen(o.metricsListen, src, log)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	log.Info("serving Prometheus metrics", "addr", s.Addr().String(), "path", "/metrics")
	return s, nil
}

// connStatsOf is the connection statistics of the stream front ends, by
// kind (the listen addresses of one kind summed).
func connStatsOf(fes []frontEnd) []metrics.ConnStats {
	var out []metrics.ConnStats
	for _, n := range summedConnStats(fes) {
		out = append(out, metrics.ConnStats{FrontEnd: n.name[len("frontend."):], Stats: n.stats})
	}
	return out
}
