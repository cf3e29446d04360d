package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

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

// startFrontEnds builds and starts every front end around one handler
// (startListeners) and returns them in start order.
func startFrontEnds(o *frontEndOptions, h transport.Handler, log *slog.Logger) ([]frontEnd, *transport.TLSCertificates, error) {
	ls, err := startListeners(o, h, log)
	if err != nil {
		return nil, nil, err
	}
	return ls.list(), ls.certs, nil
}

// startListeners builds and starts one front end per listen address, all
// around one handler and sharing one access list, rate limiter, cookie
// secret and certificate, so that a reload can open or close one address
// without touching the others (reload.go). The configuration of every
// front end asked for is checked before any binds. On an error, those
// already started are shut down. certs is nil without encrypted front ends.
func startListeners(o *frontEndOptions, h transport.Handler, log *slog.Logger) (ls *listenerSet, err error) {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if o.maxConns < 0 || o.connsPerClient < 0 || o.connsPerNetwork < 0 {
		return nil, errors.New("--max-conns, --conns-per-client and --conns-per-network must not be negative")
	}
	base := o.listenerConfig(h, log)
	base.Access = transport.NewAccessList(o.allow)
	if err := o.abuse.attach(&base); err != nil {
		return nil, err
	}
	if len(o.proxyFrom) > 0 {
		if base.Proxy, err = transport.NewProxyProtocol(o.proxyFrom); err != nil {
			return nil, fmt.Errorf("--proxy-from: %w", err)
		}
		log.Info("PROXY protocol v2 taken from load balancers on Do53, DoT and DoH over TCP", "from", o.proxyFrom.String())
	}
	if err := validateListeners(o, base); err != nil {
		return nil, err
	}
	ls = &listenerSet{base: base, log: log, fes: make(map[listenerKey]frontEnd)}
	if o.encrypted() {
		if err := ls.makeCerts(o); err != nil {
			return nil, err
		}
	}
	for _, k := range o.listenerKeys() {
		if _, err := ls.start(k); err != nil {
			_ = shutdownAll(context.Background(), ls.list())
			return nil, err
		}
	}
	return ls, nil
}

// validateListeners checks the configuration of each kind of front end
// asked for, naming the kind in the error.
func validateListeners(o *frontEndOptions, base transport.ListenerConfig) error {
	for _, k := range []struct {
		name  string
		addrs []string
	}{{kindDo53, o.listen}, {kindDoT, o.dot}, {kindDoH, o.doh}, {kindDoQ, o.doq}} {
		if len(k.addrs) == 0 {
			continue
		}
		lc := listenerFor(base, k.addrs)
		if err := lc.Validate(); err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
	}
	return nil
}

// Kinds of front end, as the flags name them.
const (
	kindDo53 = "do53"
	kindDoT  = "dot"
	kindDoH  = "doh"
	kindDoQ  = "doq"
)

// listenerKey names one listener: its kind and its address as configured,
// and which of the listeners so named it is (port 0 may be given twice).
type listenerKey struct {
	kind, addr string
	nth        int
}

// listenerKeys are the listeners o asks for, in start order.
func (o *frontEndOptions) listenerKeys() []listenerKey {
	var keys []listenerKey
	for _, k := range []struct {
		kind  string
		addrs []string
	}{{kindDo53, o.listen}, {kindDoT, o.dot}, {kindDoH, o.doh}, {kindDoQ, o.doq}} {
		seen := make(map[string]int)
		for _, a := range k.addrs {
			keys = append(keys, listenerKey{k.kind, a, seen[a]})
			seen[a]++
		}
	}
	return keys
}

// listenerSet is the running front ends, one per listen address, and what
// they share (base: the handler, the access list, the rate limiter, the
// cookies, the certificate and the connection limits).
type listenerSet struct {
	base  transport.ListenerConfig
	certs *transport.TLSCertificates // nil until an encrypted listener is asked for
	log   *slog.Logger

	mu   sync.Mutex
	keys []listenerKey
	fes  map[listenerKey]frontEnd
}

// makeCerts loads --tls-cert and --tls-key, or makes a self-signed
// certificate, for the encrypted listeners.
func (ls *listenerSet) makeCerts(o *frontEndOptions) error {
	certs, err := transport.NewTLSCertificates(o.tlsCert, o.tlsKey, certHosts(o), ls.log)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if o.tlsCert == "" {
		ls.log.Warn("no --tls-cert: serving a self-signed certificate for local use", "spki_sha256_pin", certs.Pin())
	}
	ls.certs, ls.base.Certs = certs, certs
	return nil
}

// list returns the running front ends in start order.
func (ls *listenerSet) list() []frontEnd {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]frontEnd, 0, len(ls.keys))
	for _, k := range ls.keys {
		out = append(out, ls.fes[k])
	}
	return out
}

// running returns the keys of the running front ends.
func (ls *listenerSet) running() []listenerKey {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return slices.Clone(ls.keys)
}

// start builds and starts the front end of k and adds it to the set.
func (ls *listenerSet) start(k listenerKey) (frontEnd, error) {
	fe, err := newFrontEnd(k, ls.base)
	if err == nil {
		err = fe.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.kind, err)
	}
	ls.mu.Lock()
	ls.keys = append(ls.keys, k)
	ls.fes[k] = fe
	ls.mu.Unlock()
	return fe, nil
}

// stop shuts k's front end down and takes it out of the set.
func (ls *listenerSet) stop(ctx context.Context, k listenerKey) error {
	ls.mu.Lock()
	fe := ls.fes[k]
	delete(ls.fes, k)
	ls.keys = slices.DeleteFunc(ls.keys, func(x listenerKey) bool { return x == k })
	ls.mu.Unlock()
	if fe == nil {
		return nil
	}
	return fe.Shutdown(ctx)
}

// newFrontEnd builds (without starting) the front end of k.
func newFrontEnd(k listenerKey, base transport.ListenerConfig) (frontEnd, error) {
	lc := listenerFor(base, []string{k.addr})
	switch k.kind {
	case kindDo53:
		return transport.NewDo53(transport.Do53Config{ListenerConfig: lc})
	case kindDoT:
		return transport.NewDoT(transport.DoTConfig{ListenerConfig: lc})
	case kindDoH:
		// Each --doh listener advertises its own HTTP/3 port (Alt-Svc).
		return transport.NewDoH(transport.DoHConfig{ListenerConfig: lc})
	case kindDoQ:
		return transport.NewDoQ(transport.DoQConfig{ListenerConfig: lc})
	}
	return nil, fmt.Errorf("unknown front end kind %q", k.kind)
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
