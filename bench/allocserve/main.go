// Command allocserve runs Sextant's resolver and front ends (Do53, DoT, DoH,
// DoQ) in one process, wired as `sextant serve` wires them, and reports the
// process's heap allocation counters to whoever connects to -counter: one
// line, "objects bytes gc-cycles", from runtime/metrics, then it closes.
//
// bench/run.sh reads the counters before and after a load-generator run and
// divides by the answers counted: allocations per answered query of the
// server alone. The Go benchmarks in transport/ run their client in the same
// process, so their allocs/op include the client's allocations; the load
// generators here are separate processes (dnsperf, h2load, quicload).
// With -pprof it also serves net/http/pprof, to profile the hit paths under
// load. Used only by the bench; it listens only where it is told.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof: CPU, heap and allocation profiles of the server under load
	"os"
	"os/signal"
	"runtime/metrics"
	"strings"
	"syscall"
	"time"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/server"
	"github.com/sextant-dns/sextant/transport"
)

// counterNames are the runtime/metrics counters reported, in line order.
var counterNames = []string{"/gc/heap/allocs:objects", "/gc/heap/allocs:bytes", "/gc/cycles/total:gc-cycles"}

type options struct {
	hints, anchors, zone, cert, key string
	listen, dot, doh, doq, counter  string
	pprof                           string
}

func main() {
	var o options
	flag.StringVar(&o.hints, "root-hints", "", "root hints file (the lab's)")
	flag.StringVar(&o.anchors, "trust-anchor", "", "trust anchor file (the lab's); empty: no validation")
	flag.StringVar(&o.zone, "zone", "", "zone file for the co-located authoritative backend")
	flag.StringVar(&o.cert, "tls-cert", "", "PEM certificate; empty: self-signed")
	flag.StringVar(&o.key, "tls-key", "", "PEM key")
	flag.StringVar(&o.listen, "listen", "", "Do53 address (UDP and TCP)")
	flag.StringVar(&o.dot, "dot", "", "DoT address")
	flag.StringVar(&o.doh, "doh", "", "DoH address (TCP and UDP)")
	flag.StringVar(&o.doq, "doq", "", "DoQ address")
	flag.StringVar(&o.counter, "counter", "", "TCP address that reports the allocation counters")
	flag.StringVar(&o.pprof, "pprof", "", "HTTP address for net/http/pprof (go tool pprof http://ADDR/debug/pprof/profile); empty: off")
	flag.Parse()
	if o.hints == "" || o.listen == "" || o.counter == "" {
		log.Fatal("allocserve: -root-hints, -listen and -counter are required")
	}
	if err := serve(o); err != nil {
		log.Fatalf("allocserve: %v", err)
	}
}

// frontEnd is what every transport front end has.
type frontEnd interface {
	Start() error
	Shutdown(context.Context) error
}

func serve(o options) error {
	h, err := handler(o)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	certs, err := transport.NewTLSCertificates(o.cert, o.key, nil, logger)
	if err != nil {
		return err
	}
	var servers []frontEnd
	add := func(s frontEnd, err error) error {
		if err != nil {
			return err
		}
		if err := s.Start(); err != nil {
			return err
		}
		servers = append(servers, s)
		return nil
	}
	err = add(transport.NewDo53(transport.Do53Config{ListenerConfig: transport.ListenerConfig{Addrs: []string{o.listen}, Handler: h, Logger: logger}}))
	if err == nil && o.dot != "" {
		err = add(transport.NewDoT(transport.DoTConfig{ListenerConfig: transport.ListenerConfig{Addrs: []string{o.dot}, Handler: h, Certs: certs, Logger: logger}}))
	}
	if err == nil && o.doh != "" {
		err = add(transport.NewDoH(transport.DoHConfig{ListenerConfig: transport.ListenerConfig{Addrs: []string{o.doh}, Handler: h, Certs: certs, Logger: logger}}))
	}
	if err == nil && o.doq != "" {
		err = add(transport.NewDoQ(transport.DoQConfig{ListenerConfig: transport.ListenerConfig{Addrs: []string{o.doq}, Handler: h, Certs: certs, Logger: logger}}))
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, s := range servers {
			s.Shutdown(ctx)
		}
	}()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.counter)
	if err != nil {
		return err
	}
	go reportCounters(ln)
	defer ln.Close()
	if o.pprof != "" {
		pl, err := net.Listen("tcp", o.pprof)
		if err != nil {
			return err
		}
		defer pl.Close()
		go http.Serve(pl, nil) // the default mux holds only the pprof handlers
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return nil
}

// handler builds the resolver as `sextant serve` does with --root-hints,
// --trust-anchor and --zone, and the other flags at their defaults.
func handler(o options) (transport.Handler, error) {
	cfg := resolver.DefaultConfig()
	hints, err := roothints.LoadHints(o.hints)
	if err != nil {
		return nil, err
	}
	cfg.Hints = hints
	if o.anchors != "" {
		a, err := roothints.LoadAnchors(o.anchors)
		if err != nil {
			return nil, err
		}
		cfg.DNSSEC = &resolver.DNSSECConfig{Anchors: a.Records()}
	}
	res, err := resolver.New(cfg)
	if err != nil {
		return nil, err
	}
	var local server.LocalZones
	if o.zone != "" {
		zones := authority.NewServer()
		if err := zones.LoadFile(o.zone, ""); err != nil {
			return nil, err
		}
		local = zones
	}
	return server.New(res, server.Config{Local: local}), nil
}

// reportCounters writes one line of counters to each connection.
func reportCounters(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, counters())
		c.Close()
	}
}

// counters is the line "objects bytes gc-cycles".
func counters() string {
	samples := make([]metrics.Sample, len(counterNames))
	for i, n := range counterNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	vals := make([]string, len(samples))
	for i, s := range samples {
		vals[i] = fmt.Sprint(s.Value.Uint64())
	}
	return strings.Join(vals, " ")
}
