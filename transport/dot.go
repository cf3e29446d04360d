package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// DoTConfig configures a DNS over TLS server (RFC 7858, RFC 8310): port
// 853 by convention. IdleTimeout also bounds the TLS handshake and the
// arrival of one whole query.
type DoTConfig struct {
	ListenerConfig
}

// DoT is a DNS over TLS server: the RFC 7766 stream server of Do53 behind a
// TLS 1.2+ handshake with ALPN "dot", padding responses to padded queries.
type DoT struct {
	cfg    DoTConfig
	eng    *engine
	certs  *TLSCertificates
	ctx    context.Context
	cancel context.CancelFunc
	srv    *streamServer

	stopping atomic.Bool
	wg       sync.WaitGroup

	mu        sync.Mutex
	started   bool
	listeners []net.Listener
}

// NewDoT checks cfg, fills in defaults and prepares the certificate.
func NewDoT(cfg DoTConfig) (*DoT, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dot config: %w", err)
	}
	cfg.setDefaults(listenerDefaults{
		idleTimeout:  defaultStreamIdleTimeout,
		writeTimeout: defaultWriteTimeout,
		maxInFlight:  defaultDoTInFlight,
	})
	certs, err := certsOrSelfSigned(cfg.Certs, cfg.Addrs, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("dot: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &DoT{cfg: cfg, certs: certs, ctx: ctx, cancel: cancel}
	s.eng = cfg.newEngine()
	adm, err := newAdmission("dot", cfg.MaxConns, cfg.Conns, 0, s.eng.log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("dot config: %w", err)
	}
	tlsConf := certs.serverTLSConfig("dot")
	s.srv = &streamServer{
		eng:          s.eng,
		proto:        TLS,
		idleTimeout:  cfg.IdleTimeout,
		writeTimeout: cfg.WriteTimeout,
		maxInFlight:  cfg.MaxInFlight,
		adm:          adm,
		extras:       extras{keepalive: keepaliveUnits(cfg.IdleTimeout)},
		wrap: func(conn net.Conn) (net.Conn, error) {
			tc := tls.Server(conn, tlsConf)
			if err := tc.HandshakeContext(ctx); err != nil {
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			return tc, nil
		},
		ctx:      ctx,
		stopping: &s.stopping,
		wg:       &s.wg,
		conns:    make(map[*streamConn]struct{}),
	}
	return s, nil
}

// ConnStats counts the connections open, refused and evicted.
func (s *DoT) ConnStats() ConnStats { return s.srv.adm.stats() }

// Certs returns the certificate source in use (for its Pin and Reload).
func (s *DoT) Certs() *TLSCertificates { return s.certs }

// Start binds every address and serves; on any bind failure nothing stays
// bound.
func (s *DoT) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("dot: already started")
	}
	lns, err := listenTCPAll(s.cfg.Addrs)
	if err != nil {
		return fmt.Errorf("dot: %w", err)
	}
	s.started = true
	s.listeners = lns
	for _, l := range lns {
		s.wg.Add(1)
		go s.srv.acceptLoop(l)
	}
	s.eng.log.Info("dot listening", "addrs", addrsOf(lns), "pin", s.certs.Pin())
	return nil
}

// Addrs returns the bound TCP addresses.
func (s *DoT) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return addrsOf(s.listeners)
}

// Shutdown stops accepting, cancels the handlers' context, lets queries in
// flight be answered and closes connections; at ctx's end it closes them
// at once.
func (s *DoT) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping.CompareAndSwap(false, true) {
		return nil
	}
	s.cancel()
	for _, l := range s.listeners {
		l.Close()
	}
	s.srv.wake()
	if err := waitGroupCtx(ctx, &s.wg); err != nil {
		s.srv.closeAll()
		return fmt.Errorf("dot shutdown: %w", err)
	}
	return nil
}

// listenTCPAll binds a TCP listener on each address, all or none.
func listenTCPAll(addrs []string) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		lns = append(lns, l)
	}
	return lns, nil
}

func addrsOf(lns []net.Listener) []net.Addr {
	out := make([]net.Addr, len(lns))
	for i, l := range lns {
		out[i] = l.Addr()
	}
	return out
}
