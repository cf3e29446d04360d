package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Do53Config configures a classic DNS server (UDP and TCP, port 53). Port 0
// in an address picks a free port, the same for UDP and TCP. EDNSSize is
// also the most sent over UDP; the idle and write timeouts, the connection
// limits and MaxInFlight are TCP's.
type Do53Config struct {
	ListenerConfig
	// UDPSockets is the number of SO_REUSEPORT sockets per UDP address;
	// default runtime.GOMAXPROCS(0). They form a group no other program
	// shares: Start fails if anything else holds the address (bindDo53).
	UDPSockets int
	// MaxUDPInFlight bounds the handler calls running per UDP socket;
	// default 1024. Past it the socket is not read until one finishes.
	MaxUDPInFlight int
}

// defaultMaxUDPInFlight bounds the handler calls per UDP socket: enough
// for a cache-missing burst waiting on upstreams (each call holds a
// goroutine, a few KiB), small enough that a flood queues in the kernel's
// socket buffer, not in our memory.
const defaultMaxUDPInFlight = 1024

func (c *Do53Config) setDefaults() {
	c.ListenerConfig.setDefaults(listenerDefaults{
		idleTimeout:  defaultStreamIdleTimeout,
		writeTimeout: defaultWriteTimeout,
		maxInFlight:  defaultTCPInFlight,
	})
	if c.UDPSockets == 0 {
		c.UDPSockets = runtime.GOMAXPROCS(0)
	}
	if !reusePortSupported {
		c.UDPSockets = 1
	}
	if c.MaxUDPInFlight == 0 {
		c.MaxUDPInFlight = defaultMaxUDPInFlight
	}
}

// Validate reports what is wrong with c, zero fields standing for their
// defaults.
func (c *Do53Config) Validate() error {
	if err := c.ListenerConfig.Validate(); err != nil {
		return err
	}
	if c.UDPSockets < 0 || c.MaxUDPInFlight < 0 {
		return errors.New("socket and in-flight limits must not be negative")
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
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("do53 config: %w", err)
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Do53{cfg: cfg, ctx: ctx, cancel: cancel}
	s.eng = cfg.newEngine()
	adm, err := newAdmission("tcp", cfg.MaxConns, cfg.Conns, 0, s.eng.log)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("do53 config: %w", err)
	}
	s.tcp = &streamServer{
		eng:          s.eng,
		proto:        TCP,
		idleTimeout:  cfg.IdleTimeout,
		writeTimeout: cfg.WriteTimeout,
		maxInFlight:  cfg.MaxInFlight,
		adm:          adm,
		extras:       extras{keepalive: keepaliveUnits(cfg.IdleTimeout)},
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
	var senders []int
	var tcps []net.Listener
	wild := make(map[*net.UDPConn]bool)
	fail := func(err error) error {
		closeUDP(udps, senders)
		for _, l := range tcps {
			l.Close()
		}
		return err
	}
	for _, addr := range s.cfg.Addrs {
		u, snd, t, w, err := bindDo53(addr, s.cfg.UDPSockets)
		if err != nil {
			return fail(fmt.Errorf("do53: listen on %s: %w", addr, err))
		}
		for _, c := range u {
			wild[c] = w
		}
		udps = append(udps, u...)
		senders = append(senders, snd...)
		tcps = append(tcps, t)
	}
	s.started = true
	for i, c := range udps {
		sock := &udpSocket{
			eng:        s.eng,
			conn:       c,
			sendFD:     senders[i],
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

// bindDo53 binds n UDP sockets sharing addr (with their send-only
// companions, bindUDP) and one TCP listener on it. With
// port 0 the UDP port is chosen first and TCP bound to the same number,
// trying again with another port if TCP's is taken.
//
// Nothing else may serve the address (issue 8: a second instance on the
// same address used to start silently and take half the queries). The TCP
// listener is a single socket without SO_REUSEPORT, and the UDP sockets are
// an SO_REUSEPORT group that only ours can join or receive from (bindUDP).
// Either bind fails with EADDRINUSE when another socket holds the address,
// or an overlapping one (0.0.0.0 against 127.0.0.1: Linux refuses both
// ways), whatever its owner and options.
//
// On a wildcard address the UDP sockets report each query's destination
// (IP_PKTINFO), so that answers leave from the address they were sent to;
// the third result says so.
func bindDo53(addr string, n int) ([]*net.UDPConn, []int, net.Listener, bool, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, nil, false, err
	}
	ip, _ := netip.ParseAddr(host)
	wildcard := pktinfoSupported && (host == "" || ip.IsUnspecified())
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		udps, senders, err := bindUDP(addr, n, wildcard)
		if err != nil {
			return nil, nil, nil, false, inUseError("UDP", addr, err)
		}
		bound := net.JoinHostPort(host, fmt.Sprint(udps[0].LocalAddr().(*net.UDPAddr).Port))
		tl, err := net.Listen("tcp", bound)
		if err == nil {
			return udps, senders, tl, wildcard, nil
		}
		closeUDP(udps, senders)
		lastErr = inUseError("TCP", bound, err)
	}
	return nil, nil, nil, false, lastErr
}

// inUseError says plainly that another program serves addr when a bind
// failed with EADDRINUSE.
func inUseError(proto, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s %s is already served by another socket (another sextant or DNS server?): %w", proto, addr, err)
	}
	return err
}

// bindUDP binds n sockets on addr as one SO_REUSEPORT group that no other
// program can share. The first socket is bound without SO_REUSEPORT, so
// the bind fails if any socket holds the address (with or without
// SO_REUSEPORT, any user), and nothing can slip in beside it; SO_REUSEPORT
// is set on it afterwards, which makes it the group's first member, and the
// other n-1 join. Linux lets any later socket of the same effective user
// that sets SO_REUSEPORT join too, so a BPF program attached to the group
// (steerToFirst) hands queries only to the first n members: a latecomer
// receives nothing. Our own latecomers are the send-only
// companions below (udpSocket.sendFD).
//
// What remains: a program of the same user can replace or detach that BPF
// program, or bind a more specific address inside a wildcard one of ours
// with SO_REUSEPORT and take that address's queries; a second sextant does
// neither, as its own first bind fails.
//
// Each socket also gets a send-only companion in the group (joinSendOnly,
// -1 where the platform has none), bound after the n readers so that the
// steering program gives it nothing: the batch readers send their answers
// through it, outside Go's poller (udp_batch_linux.go). Binding them here
// also makes a group of one socket a real group, which the kernel needs
// before it takes a steering program.
func bindUDP(addr string, n int, pktinfo bool) ([]*net.UDPConn, []int, error) {
	var lc net.ListenConfig
	if pktinfo {
		lc.Control = func(network, _ string, c syscall.RawConn) error { return setPktinfo(network, c) }
	}
	first, err := listenUDP(lc, addr)
	if err != nil {
		return nil, nil, err
	}
	conns := []*net.UDPConn{first}
	senders := []int{-1}
	fail := func(err error) ([]*net.UDPConn, []int, error) {
		closeUDP(conns, senders)
		return nil, nil, err
	}
	if !reusePortSupported {
		return conns, senders, nil
	}
	if err := shareBound(first); err != nil {
		return fail(err)
	}
	lc.Control = func(network, address string, c syscall.RawConn) error {
		if err := reusePort(network, address, c); err != nil {
			return err
		}
		if pktinfo {
			return setPktinfo(network, c)
		}
		return nil
	}
	addr = first.LocalAddr().String()
	for range n - 1 {
		c, err := listenUDP(lc, addr)
		if err != nil {
			return fail(err)
		}
		conns = append(conns, c)
	}
	// Steer before the companions join where the group exists already,
	// so that no query reaches one meanwhile; a group of one exists only
	// once its companion has joined.
	if n > 1 {
		if err := steerToFirst(first, n); err != nil {
			return fail(err)
		}
	}
	senders = senders[:0]
	for _, c := range conns {
		fd, err := joinSendOnly(c)
		if err != nil {
			return fail(err)
		}
		senders = append(senders, fd)
	}
	if n == 1 {
		if err := steerToFirst(first, n); err != nil {
			return fail(err)
		}
	}
	return conns, senders, nil
}

// closeUDP closes bound sockets and their send-only companions (-1: none),
// the companions first: a socket leaving an SO_REUSEPORT group moves the
// group's last member, a companion, into its place, where it would get
// queries nobody reads.
func closeUDP(conns []*net.UDPConn, senders []int) {
	for _, fd := range senders {
		closeSendOnly(fd)
	}
	for _, c := range conns {
		c.Close()
	}
}

func listenUDP(lc net.ListenConfig, addr string) (*net.UDPConn, error) {
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// Proxy returns the PROXY protocol's headers taker of the configuration
// (its Stats), nil when off.
func (s *Do53) Proxy() *ProxyProtocol { return s.cfg.Proxy }

// RateLimiter is the UDP rate limiter (ListenerConfig.RateLimit), nil when
// off; Responses the response counters, nil when off.
func (s *Do53) RateLimiter() *RateLimiter    { return s.cfg.RateLimit }
func (s *Do53) Responses() *ResponseCounters { return s.cfg.Responses }

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
