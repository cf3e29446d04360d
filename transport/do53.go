package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Do53Config configures a classic DNS server (UDP and TCP, port 53).
type Do53Config struct {
	// Addrs are the listen addresses, "127.0.0.1:53", "[::1]:53"; port 0
	// picks a free port, the same for UDP and TCP.
	Addrs   []string
	Handler Handler
	// Allow lists the client networks served; nil means loopback only.
	// Clients outside get REFUSED.
	Allow []netip.Prefix
	// UDPSize is the EDNS0 buffer size advertised and the most sent over
	// UDP; default 1232 (DNS flag day 2020).
	UDPSize int
	// UDPSockets is the number of SO_REUSEPORT sockets per UDP address;
	// default runtime.GOMAXPROCS(0).
	UDPSockets int
	// MaxUDPInFlight bounds the handler calls running per UDP socket;
	// default 1024. Past it the socket is not read until one finishes.
	MaxUDPInFlight int
	// TCPIdleTimeout closes a TCP connection with nothing to do; default
	// 10s (RFC 7766 6.2.3).
	TCPIdleTimeout time.Duration
	// TCPWriteTimeout bounds one response write, so a client that does not
	// read cannot hold a handler; default 5s.
	TCPWriteTimeout time.Duration
	// MaxTCPConns bounds open TCP connections; default 1024. TCPConns
	// shares them among clients and evicts idle ones when they run
	// short; connections refused are reset at once.
	MaxTCPConns int
	TCPConns    ConnLimits
	// MaxTCPInFlight bounds pipelined queries in flight per TCP
	// connection; default 16. Past it the connection is not read.
	MaxTCPInFlight int
	Logger         *slog.Logger
}

func (c *Do53Config) setDefaults() {
	if c.UDPSize == 0 {
		c.UDPSize = 1232
	}
	if c.UDPSockets == 0 {
		c.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if !reusePortSupported {
		c.UDPSockets = 1
	}
	if c.MaxUDPInFlight == 0 {
		c.MaxUDPInFlight = 1024
	}
	if c.TCPIdleTimeout == 0 {
		c.TCPIdleTimeout = 10 * time.Second
	}
	if c.TCPWriteTimeout == 0 {
		c.TCPWriteTimeout = 5 * time.Second
	}
	if c.MaxTCPConns == 0 {
		c.MaxTCPConns = 1024
	}
	if c.MaxTCPInFlight == 0 {
		c.MaxTCPInFlight = 16
	}
}

func (c *Do53Config) validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("no listen address")
	case c.Handler == nil:
		return errors.New("no handler")
	case c.UDPSize < 512 || c.UDPSize > 65535:
		return fmt.Errorf("UDPSize %d outside [512, 65535]", c.UDPSize)
	case c.UDPSockets < 1 || c.MaxUDPInFlight < 1 || c.MaxTCPConns < 1 || c.MaxTCPInFlight < 1:
		return errors.New("socket, connection and in-flight limits must be positive")
	case c.TCPIdleTimeout < 0 || c.TCPWriteTimeout < 0:
		return errors.New("negative timeout")
	}
	return nil
}

// Do53 is a DNS server over UDP and TCP on one or more addresses.
type Do53 struct {
	cfg    Do53Config
	eng    *engine
	ctx    context.Context
	cancel context.CancelFunc

	stopping atomic.Bool
	wg       sync.WaitGroup
	tcp      *streamServer

	mu        sync.Mutex
	started   bool
	udp       []*udpSocket
	listeners []net.Listener
}

// NewDo53 checks cfg and fills in its defaults; Start binds.
func NewDo53(cfg Do53Config) (*Do53, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("do53 config: %w", err)
	}
	for _, a := range cfg.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("do53 config: listen address %q: %w", a, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Do53{cfg: cfg, ctx: ctx, cancel: cancel}
	s.eng = newEngine(cfg.Handler, cfg.Allow, cfg.UDPSize, cfg.Logger)
	adm, err := newAdmission("tcp", cfg.MaxTCPConns, cfg.TCPConns, 0, s.eng.log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("do53 config: %w", err)
	}
	s.tcp = &streamServer{
		eng:          s.eng,
		proto:        TCP,
		idleTimeout:  cfg.TCPIdleTimeout,
		writeTimeout: cfg.TCPWriteTimeout,
		maxInFlight:  cfg.MaxTCPInFlight,
		adm:          adm,
		extras:       extras{keepalive: keepaliveUnits(cfg.TCPIdleTimeout)},
		ctx:          ctx,
		stopping:     &s.stopping,
		wg:           &s.wg,
		conns:        make(map[*streamConn]struct{}),
	}
	return s, nil
}

// Start binds every listener and returns once all are ready to serve. If
// any bind fails, whatever was bound is closed and the error returned.
func (s *Do53) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("do53: already started")
	}
	var udps []*net.UDPConn
	var tcps []net.Listener
	wild := make(map[*net.UDPConn]bool)
	fail := func(err error) error {
		for _, c := range udps {
			c.Close()
		}
		for _, l := range tcps {
			l.Close()
		}
		return err
	}
	for _, addr := range s.cfg.Addrs {
		u, t, w, err := bindDo53(addr, s.cfg.UDPSockets)
		if err != nil {
			return fail(fmt.Errorf("do53: listen on %s: %w", addr, err))
		}
		for _, c := range u {
			wild[c] = w
		}
		udps = append(udps, u...)
		tcps = append(tcps, t)
	}
	s.started = true
	for _, c := range udps {
		sock := &udpSocket{
			eng:        s.eng,
			conn:       c,
			local:      addrPortOf(c.LocalAddr()),
			ctx:        s.ctx,
			stopping:   &s.stopping,
			wg:         &s.wg,
			maxWorkers: s.cfg.MaxUDPInFlight,
			pktinfo:    wild[c],
			jobs:       make(chan *udpJob),
			done:       make(chan struct{}),
		}
		s.udp = append(s.udp, sock)
		s.wg.Add(1)
		go sock.readLoop()
	}
	for _, l := range tcps {
		s.listeners = append(s.listeners, l)
		s.wg.Add(1)
		go s.tcp.acceptLoop(l)
	}
	s.eng.log.Info("do53 listening", "addrs", s.addrsLocked())
	return nil
}

// bindDo53 binds n SO_REUSEPORT UDP sockets and a TCP listener on addr. With
// port 0 the UDP port is chosen first and TCP bound to the same number,
// trying again with another port if TCP's is taken.
//
// On a wildcard address the UDP sockets report each query's destination
// (IP_PKTINFO), so that answers leave from the address they were sent to;
// the third result says so.
func bindDo53(addr string, n int) ([]*net.UDPConn, net.Listener, bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, false, err
	}
	lc := net.ListenConfig{}
	if n > 1 {
		lc.Control = reusePort
	}
	ulc := lc
	ip, _ := netip.ParseAddr(host)
	wildcard := pktinfoSupported && (host == "" || ip.IsUnspecified())
	if wildcard {
		ulc.Control = func(network, address string, c syscall.RawConn) error {
			if n > 1 {
				if err := reusePort(network, address, c); err != nil {
					return err
				}
			}
			return setPktinfo(network, c)
		}
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		udps, err := bindUDP(ulc, addr, n)
		if err != nil {
			return nil, nil, false, err
		}
		bound := net.JoinHostPort(host, fmt.Sprint(udps[0].LocalAddr().(*net.UDPAddr).Port))
		tl, err := lc.Listen(context.Background(), "tcp", bound)
		if err == nil {
			return udps, tl, wildcard, nil
		}
		for _, c := range udps {
			c.Close()
		}
		lastErr = err
	}
	return nil, nil, false, lastErr
}

// bindUDP binds n sockets on the same address; the first fixes the port.
func bindUDP(lc net.ListenConfig, addr string, n int) ([]*net.UDPConn, error) {
	var conns []*net.UDPConn
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		c := pc.(*net.UDPConn)
		conns = append(conns, c)
		if i == 0 {
			addr = c.LocalAddr().String()
		}
	}
	return conns, nil
}

// TCPConnStats counts the TCP connections open, refused and evicted.
func (s *Do53) TCPConnStats() ConnStats { return s.tcp.adm.stats() }

// Addrs returns the bound addresses: each UDP address once, then each TCP
// listener.
func (s *Do53) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrsLocked()
}

func (s *Do53) addrsLocked() []net.Addr {
	var out []net.Addr
	seen := make(map[string]bool)
	for _, u := range s.udp {
		a := u.conn.LocalAddr()
		if !seen[a.String()] {
			seen[a.String()] = true
			out = append(out, a)
		}
	}
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Shutdown stops reading new queries, cancels the handlers' context, lets
// the queries in flight be answered and closes everything. If ctx ends
// first, connections are closed at once and ctx's error returned.
func (s *Do53) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping.CompareAndSwap(false, true) {
		return nil
	}
	s.cancel()
	for _, u := range s.udp {
		u.conn.SetReadDeadline(time.Unix(1, 0)) // wakes the read loop; writes still work
	}
	for _, l := range s.listeners {
		l.Close()
	}
	s.tcp.wake()
	err := waitGroupCtx(ctx, &s.wg)
	if err != nil {
		s.tcp.closeAll()
	}
	for _, u := range s.udp {
		u.conn.Close()
	}
	if err != nil {
		return fmt.Errorf("do53 shutdown: %w", err)
	}
	return nil
}

// waitGroupCtx waits for wg or for ctx, whichever comes first.
func waitGroupCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
