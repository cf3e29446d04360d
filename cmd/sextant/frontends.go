package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/sextant-dns/sextant/transport"
)

// frontEnd is what serve needs of each transport server.
type frontEnd interface {
	Start() error
	Addrs() []net.Addr
	Shutdown(ctx context.Context) error
}

// frontEndOptions are the listen flags of `sextant serve`.
type frontEndOptions struct {
	listen  stringList // Do53
	dot     stringList
	doh     stringList
	doq     stringList
	tlsCert string
	tlsKey  string
	allow   prefixList
	// proxyFrom are the load balancers whose PROXY protocol v2 headers
	// name the client (transport.ProxyProtocol); empty: off.
	proxyFrom prefixList
	// maxConns caps each stream front end's connections (TCP, DoT, DoH
	// on TCP, DoH on QUIC, DoQ); connsPerClient and connsPerNetwork share
	// them among client addresses and /24 (/56) networks. Zero means the
	// transport package's defaults.
	maxConns, connsPerClient, connsPerNetwork int
	abuse                                     abuseOptions // cookies and rate limiting (ratelimit.go)
	// responses counts the responses sent, for metrics; nil when off.
	responses *transport.ResponseCounters
}

// listenerConfig is the configuration all front ends share, from the
// flags; each front end takes a copy with its own addresses.
func (o *frontEndOptions) listenerConfig(h transport.Handler, log *slog.Logger) transport.ListenerConfig {
	return transport.ListenerConfig{
		Handler:   h,
		Allow:     o.allow,
		Logger:    log,
		MaxConns:  o.maxConns,
		Conns:     transport.ConnLimits{PerClient: o.connsPerClient, PerPrefix: o.connsPerNetwork},
		Responses: o.responses,
	}
}

// encrypted reports whether any encrypted front end was asked for.
func (o *frontEndOptions) encrypted() bool { return len(o.dot)+len(o.doh)+len(o.doq) > 0 }

// listenerFor is the shared configuration with one front end's addresses.
func listenerFor(base transport.ListenerConfig, addrs []string) transport.ListenerConfig {
	base.Addrs = addrs
	return base
}

// startFrontEnds builds and starts every front end around one handler. The
// configuration of every front end asked for is checked before any binds.
// On an error, those already started are shut down. certs is nil without
// encrypted front ends.
func startFrontEnds(o *frontEndOptions, h transport.Handler, log *slog.Logger) (fes []frontEnd, certs *transport.TLSCertificates, err error) {
	defer func() {
		if err != nil {
			shutdownAll(context.Background(), fes)
			fes = nil
		}
	}()
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, nil, errors.New("--tls-cert and --tls-key go together")
	}
	if o.maxConns < 0 || o.connsPerClient < 0 || o.connsPerNetwork < 0 {
		return nil, nil, errors.New("--max-conns, --conns-per-client and --conns-per-network must not be negative")
	}
	base := o.listenerConfig(h, log)
	if err := o.abuse.attach(&base); err != nil {
		return nil, nil, err
	}
	if len(o.proxyFrom) > 0 {
		if base.Proxy, err = transport.NewProxyProtocol(o.proxyFrom); err != nil {
			return nil, nil, fmt.Errorf("--proxy-from: %w", err)
		}
		log.Info("PROXY protocol v2 taken from load balancers on Do53, DoT and DoH over TCP", "from", o.proxyFrom.String())
	}
	kinds := []struct {
		name  string
		addrs []string
	}{{"do53", o.listen}, {"dot", o.dot}, {"doh", o.doh}, {"doq", o.doq}}
	for _, k := range kinds {
		if len(k.addrs) == 0 {
			continue
		}
		lc := listenerFor(base, k.addrs)
		if err := lc.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", k.name, err)
		}
	}
	if o.encrypted() {
		certs, err = transport.NewTLSCertificates(o.tlsCert, o.tlsKey, certHosts(o), log)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		if o.tlsCert == "" {
			log.Warn("no --tls-cert: serving a self-signed certificate for local use", "spki_sha256_pin", certs.Pin())
		}
		base.Certs = certs
	}
	start := func(name string, fe frontEnd, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := fe.Start(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fes = append(fes, fe) // each front end logs its own addresses
		return nil
	}
	do53, err := transport.NewDo53(transport.Do53Config{ListenerConfig: listenerFor(base, o.listen)})
	if err := start("do53", do53, err); err != nil {
		return fes, certs, err
	}
	if len(o.dot) > 0 {
		s, err := transport.NewDoT(transport.DoTConfig{ListenerConfig: listenerFor(base, o.dot)})
		if err := start("dot", s, err); err != nil {
			return fes, certs, err
		}
	}
	if len(o.doh) > 0 {
		// Each --doh listener advertises its own HTTP/3 port (Alt-Svc).
		s, err := transport.NewDoH(transport.DoHConfig{ListenerConfig: listenerFor(base, o.doh)})
		if err := start("doh", s, err); err != nil {
			return fes, certs, err
		}
	}
	if len(o.doq) > 0 {
		s, err := transport.NewDoQ(transport.DoQConfig{ListenerConfig: listenerFor(base, o.doq)})
		if err := start("doq", s, err); err != nil {
			return fes, certs, err
		}
	}
	return fes, certs, nil
}

// certHosts are the names a self-signed certificate is made for: the hosts
// of the encrypted listen addresses (localhost and loopback are always added).
func certHosts(o *frontEndOptions) []string {
	var hosts []string
	for _, list := range []stringList{o.dot, o.doh, o.doq} {
		for _, a := range list {
			if h, _, err := net.SplitHostPort(a); err == nil && h != "" {
				if ip, err := netip.ParseAddr(h); err == nil && ip.IsUnspecified() {
					continue
				}
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// shutdownAll stops front ends in reverse order of their start.
func shutdownAll(ctx context.Context, fes []frontEnd) error {
	var errs []error
	for i := len(fes) - 1; i >= 0; i-- {
		errs = append(errs, fes[i].Shutdown(ctx))
	}
	return errors.Join(errs...)
}
