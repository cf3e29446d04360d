package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// DoHConfig configures a DNS over HTTPS server (RFC 8484).
type DoHConfig struct {
	// ListenerConfig's Addrs serve HTTP/1.1 and HTTP/2 over TLS on TCP,
	// and HTTP/3 on UDP with the same port (port 0 picks one free for
	// both), each advertising its own HTTP/3 port in Alt-Svc. MaxConns
	// bounds TCP and QUIC connections each; a connection is busy while a
	// request is served (HTTP/2 and QUIC PINGs do not count). MaxInFlight
	// bounds the concurrent requests per HTTP/2 or HTTP/3 connection.
	ListenerConfig
	// Path is the URL path served; default "/dns-query".
	Path string
	// DisableHTTP3 serves TCP only (no UDP socket, no Alt-Svc).
	DisableHTTP3 bool
	// HeaderTimeout bounds the TLS handshake and the arrival of a
	// request's headers (slowloris); default 5s. ReadTimeout bounds
	// reading one whole request; default 10s.
	HeaderTimeout time.Duration
	ReadTimeout   time.Duration
}

const (
	// defaultHeaderTimeout: a browser sends its headers right after the
	// handshake; a client that takes 5s is holding a slot (slowloris).
	defaultHeaderTimeout = 5 * time.Second
	// defaultReadTimeout bounds a whole request, at most a 64 KiB body.
	defaultReadTimeout = 10 * time.Second
	// defaultDoHPath is RFC 8484's example path, which every client
	// defaults to.
	defaultDoHPath = "/dns-query"
)

// Validate reports what is wrong with c, zero fields standing for their
// defaults.
func (c *DoHConfig) Validate() error {
	if err := c.ListenerConfig.Validate(); err != nil {
		return err
	}
	switch {
	case c.HeaderTimeout < 0 || c.ReadTimeout < 0:
		return errors.New("timeouts must not be negative")
	case c.Path != "" && !strings.HasPrefix(c.Path, "/"):
		return fmt.Errorf("path %q does not start with /", c.Path)
	}
	return nil
}

// DoH is a DNS over HTTPS server: GET ?dns=, POST application/dns-message
// and the JSON form (?name=&type=), over HTTP/1.1, HTTP/2 and HTTP/3.
type DoH struct {
	cfg    DoHConfig
	eng    *engine
	certs  *TLSCertificates
	ctx    context.Context
	cancel context.CancelFunc

	stopping atomic.Bool
	wg       sync.WaitGroup

	mu       sync.Mutex
	started  bool
	servers  []*http.Server
	tcpAddrs []net.Addr
	h3       *http3.Server
	quics    []*quicAcceptor
	// tcpAdm and quicAdm admit the connections of HTTP/1.1 and HTTP/2,
	// and of HTTP/3.
	tcpAdm, quicAdm *admission
	h3Slots         sync.Map // *quic.Conn to its *connSlot, while served
}

// h3ExcessiveLoad is HTTP/3's H3_EXCESSIVE_LOAD (RFC 9114 8.1).
const h3ExcessiveLoad quic.ApplicationErrorCode = 0x0107

// h3NoError is H3_NO_ERROR, used when closing at shutdown.
const h3NoError quic.ApplicationErrorCode = 0x0100

// NewDoH checks cfg, fills in defaults and prepares the certificate.
func NewDoH(cfg DoHConfig) (*DoH, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("doh config: %w", err)
	}
	cfg.setDefaults(listenerDefaults{
		idleTimeout:  defaultQUICIdleTimeout,
		writeTimeout: defaultDoHWriteTimeout,
		maxInFlight:  defaultStreams,
	})
	if cfg.Path == "" {
		cfg.Path = defaultDoHPath
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = defaultHeaderTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = defaultReadTimeout
	}
	certs, err := certsOrSelfSigned(cfg.Certs, cfg.Addrs, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("doh: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &DoH{cfg: cfg, certs: certs, ctx: ctx, cancel: cancel}
	s.eng = cfg.newEngine()
	// No idle timer of the admission's own: the HTTP/2 and HTTP/3
	// servers' IdleTimeout already ignores PINGs.
	if s.tcpAdm, err = newAdmission("doh", cfg.MaxConns, cfg.Conns, 0, s.eng.log); err == nil {
		s.quicAdm, err = newAdmission("doh3", cfg.MaxConns, cfg.Conns, 0, s.eng.log)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("doh config: %w", err)
	}
	return s, nil
}

// ConnStats counts the TCP (HTTP/1.1 and HTTP/2) connections open,
// refused and evicted; H3ConnStats the QUIC ones.
func (s *DoH) ConnStats() ConnStats   { return s.tcpAdm.stats() }
func (s *DoH) H3ConnStats() ConnStats { return s.quicAdm.stats() }

// Certs returns the certificate source in use.
func (s *DoH) Certs() *TLSCertificates { return s.certs }

// Start binds TCP (and UDP for HTTP/3) on every address and serves. If
// any bind fails nothing stays bound.
func (s *DoH) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("doh: already started")
	}
	// tcps[i] and udps[i] share Addrs[i]'s port; udps[i] is nil without
	// HTTP/3.
	var tcps []net.Listener
	var udps []net.PacketConn
	fail := func(err error) error {
		for _, l := range tcps {
			l.Close()
		}
		for _, u := range udps {
			if u != nil {
				u.Close()
			}
		}
		return fmt.Errorf("doh: %w", err)
	}
	for _, a := range s.cfg.Addrs {
		t, u, err := s.bind(a)
		if err != nil {
			return fail(err)
		}
		tcps = append(tcps, t)
		udps = append(udps, u)
	}
	s.started = true
	altSvcs := s.serveHTTP3(udps)
	for i, l := range tcps {
		s.tcpAddrs = append(s.tcpAddrs, l.Addr())
		srv := s.newHTTPServer(altSvcs[i])
		s.servers = append(s.servers, srv)
		tl := newLimitListener(l, s.tcpAdm)
		tl.proxy, tl.headerTimeout, tl.log = s.eng.proxy, s.cfg.HeaderTimeout, s.eng.log
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ServeTLS(tl, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.eng.log.Error("doh serve", "addr", l.Addr(), "err", err)
			}
		}()
	}
	s.eng.log.Info("doh listening", "addrs", s.addrsLocked(), "pin", s.certs.Pin())
	return nil
}

// maxHeaderBytes bounds a request's headers, its URL included. It is set
// above the longest ?dns= a DNS message can make (base64url of 65535 bytes
// is 87380 characters), so that any GET carrying a DNS message reaches
// ServeHTTP, and a ?dns= too long to be one gets 414 URI Too Long from
// there. Only a request past this bound gets the HTTP library's own
// answer: 431 Request Header Fields Too Large over HTTP/1.1 and HTTP/2.
// (Go's own default is 1 MiB.)
const maxHeaderBytes = 96 << 10

// bind binds TCP on addr and, unless HTTP/3 is off, UDP on the same port;
// with port 0 it tries again when the UDP port is taken.
func (s *DoH) bind(addr string) (net.Listener, net.PacketConn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen address %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		t, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen tcp on %s: %w", addr, err)
		}
		if s.cfg.DisableHTTP3 {
			return t, nil, nil
		}
		u, err := listenUDPSamePort(t.Addr())
		if err == nil {
			return t, u, nil
		}
		t.Close()
		lastErr = err
	}
	return nil, nil, lastErr
}

func (s *DoH) newHTTPServer(altSvc string) *http.Server {
	srv := &http.Server{
		Handler:           altSvcHandler{doh: s, altSvc: altSvc},
		TLSConfig:         s.certs.serverTLSConfig("h2", "http/1.1"),
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ConnContext:       withConnSlot,
		ErrorLog:          slog.NewLogLogger(s.eng.log.Handler(), slog.LevelDebug),
		// HTTP/2 is served by our own lean server (doh_h2.go).
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){"h2": s.serveH2(altSvc)},
	}
	srv.SetKeepAlivesEnabled(true)
	return srv
}

// serveH3 serves one HTTP/3 connection, its slot known to withQUICSlot.
func (s *DoH) serveH3(c *quic.Conn, slot *connSlot) {
	s.h3Slots.Store(c, slot)
	defer s.h3Slots.Delete(c)
	s.h3.ServeQUICConn(c)
}

// withQUICSlot is the HTTP/3 server's ConnContext: it makes the
// connection's slot reachable from its requests.
func (s *DoH) withQUICSlot(ctx context.Context, c *quic.Conn) context.Context {
	if slot, ok := s.h3Slots.Load(c); ok {
		return context.WithValue(ctx, slotKey{}, slot)
	}
	return ctx
}

// Addrs returns the bound TCP addresses, then the UDP (HTTP/3) ones.
func (s *DoH) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrsLocked()
}

func (s *DoH) addrsLocked() []net.Addr {
	out := append([]net.Addr(nil), s.tcpAddrs...)
	for _, q := range s.quics {
		out = append(out, q.pconn.LocalAddr())
	}
	return out
}

// Shutdown stops accepting, cancels the handlers' context, lets requests
// in flight finish and closes everything; at ctx's end it closes at once.
func (s *DoH) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping.CompareAndSwap(false, true) {
		return nil
	}
	s.cancel()
	var errs []error
	for _, q := range s.quics {
		q.stopAccepting()
	}
	var h3wg sync.WaitGroup
	if s.h3 != nil {
		h3wg.Add(1)
		go func() {
			defer h3wg.Done()
			s.h3.Shutdown(ctx) // GOAWAY, then waits for requests
		}()
	}
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
			errs = append(errs, err)
		}
	}
	h3wg.Wait()
	for _, q := range s.quics {
		q.closeAll(h3NoError)
	}
	if err := waitGroupCtx(ctx, &s.wg); err != nil {
		errs = append(errs, err)
	}
	for _, q := range s.quics {
		q.pconn.Close()
	}
	if len(errs) > 0 {
		return fmt.Errorf("doh shutdown: %w", errors.Join(errs...))
	}
	return nil
}

// serveHTTP3 serves HTTP/3 on each UDP socket not nil, and returns for each
// the Alt-Svc value its TCP listener advertises (RFC 7838, RFC 9114 3.1.1):
// its own port, since listeners on different ports would otherwise send
// browsers to another listener's port for a day (ma=86400); "" where
// there is no HTTP/3.
func (s *DoH) serveHTTP3(udps []net.PacketConn) []string {
	altSvcs := make([]string, len(udps))
	if s.cfg.DisableHTTP3 {
		return altSvcs
	}
	s.h3 = &http3.Server{
		Handler:        s,
		IdleTimeout:    s.cfg.IdleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		Logger:         s.eng.log,
		ConnContext:    s.withQUICSlot,
	}
	tlsConf := http3.ConfigureTLSConfig(s.certs.serverTLSConfig())
	for i, u := range udps {
		if u == nil {
			continue
		}
		ln, err := quic.Listen(u, tlsConf, &quic.Config{
			MaxIdleTimeout:     s.cfg.IdleTimeout,
			MaxIncomingStreams: int64(s.cfg.MaxInFlight),
		})
		if err != nil { // cannot happen for a bound socket; keep serving TCP
			s.eng.log.Error("doh http3 listen", "addr", u.LocalAddr(), "err", err)
			u.Close()
			continue
		}
		a := &quicAcceptor{
			pconn:    u,
			ln:       ln,
			adm:      s.quicAdm,
			busyCode: h3ExcessiveLoad,
			doneCode: h3NoError,
			serve:    s.serveH3,
			log:      s.eng.log,
			wg:       &s.wg,
			stopping: &s.stopping,
			conns:    make(map[*quic.Conn]*connSlot),
		}
		s.quics = append(s.quics, a)
		s.wg.Add(1)
		go a.acceptLoop(s.ctx)
		altSvcs[i] = fmt.Sprintf(`h3=":%d"; ma=%d`, u.LocalAddr().(*net.UDPAddr).Port, altSvcMaxAge)
	}
	return altSvcs
}

// altSvcMaxAge is how long, in seconds, a client may remember our HTTP/3
// port (RFC 7838 3): a day, the common value (Google's, Cloudflare's).
const altSvcMaxAge = 86400

// altSvcHandler serves one TCP listener's requests (HTTP/1.1 and HTTP/2),
// adding that listener's Alt-Svc.
type altSvcHandler struct {
	doh    *DoH
	altSvc string
}

func (h altSvcHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.altSvc != "" {
		w.Header().Set("Alt-Svc", h.altSvc)
	}
	h.doh.ServeHTTP(w, r)
}
