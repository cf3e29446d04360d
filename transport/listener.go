package transport

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"
)

// ListenerConfig is what every front end shares (Do53, DoT, DoH, DoQ): the
// addresses, the handler and who it answers, the EDNS(0) size, the timeouts,
// the connection limits and the certificate. Each front end's config
// embeds it, so one value can be copied from front end to front end with
// only Addrs changed. Every field but Addrs and Handler may be left zero:
// zero means the default, which may differ between front ends where their
// protocols differ (the idle timeouts, the queries per connection); the
// defaults are the constants below.
type ListenerConfig struct {
	// Addrs are the listen addresses, "127.0.0.1:853", "[::1]:853"; port
	// 0 picks a free one (in tests).
	Addrs   []string
	Handler Handler
	// Allow lists the client networks served; nil means loopback only.
	// Clients outside get REFUSED.
	Allow []netip.Prefix
	// Access, when set, is used instead of Allow: an access list front
	// ends share and a program may change while they run.
	Access *AccessList
	// Certs supplies the certificate of DoT, DoH and DoQ; nil makes a
	// self-signed one for Addrs (its pin is then in the server's Certs()).
	// Do53 ignores it.
	Certs *TLSCertificates
	// EDNSSize is the EDNS(0) buffer size put in the OPT records we add,
	// and on Do53 over UDP the most we send; default 1232.
	EDNSSize int
	// IdleTimeout closes a connection with no query for that long: default
	// 10s on Do53 TCP and DoT (RFC 7766 6.2.3; on DoT it also bounds the
	// handshake and the arrival of one query), 30s on DoH and DoQ (QUIC's
	// max_idle_timeout too; on DoQ, PINGs do not count as activity).
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one answer, so a client that does not
	// read cannot hold a handler: default 5s; 10s on DoH, where it runs
	// from the end of the request's headers and so covers the resolution
	// too (net/http's WriteTimeout).
	WriteTimeout time.Duration
	// MaxConns bounds the open connections of the front end, all addresses
	// together (on DoH, per protocol: TCP and QUIC), default 1024; Conns
	// shares them among clients and evicts idle ones when they run short.
	// Connections refused are reset at once (TCP) or closed with
	// H3_EXCESSIVE_LOAD or DOQ_EXCESSIVE_LOAD (QUIC).
	MaxConns int
	Conns    ConnLimits
	// MaxInFlight bounds the queries in flight per connection: pipelined
	// on Do53 TCP (default 16) and DoT (default 32), concurrent streams
	// on HTTP/2, HTTP/3 and DoQ (default 100). Past it the connection is
	// not read, or the client may open no more streams.
	MaxInFlight int
	// Cookies, when set, gives DNS Server Cookies (RFC 7873, RFC 9018) to
	// clients that send a Client Cookie, on Do53 (UDP and TCP) and DoT;
	// share one between front ends so a cookie from one is valid on all.
	Cookies *ServerCookies
	// RateLimit, when set, limits Do53 UDP answers per client prefix
	// (ratelimit.go); stream protocols and clients with a valid Server
	// Cookie are not limited. Share one between front ends.
	RateLimit *RateLimiter
	// RRL, when set, limits identical authoritative (AA) Do53 UDP
	// answers per client prefix (rrl.go). Share one between front ends.
	RRL *ResponseRateLimiter
	// Proxy, when set, takes PROXY protocol v2 headers from the load
	// balancers it trusts on Do53 (UDP and TCP), DoT and DoH over TCP
	// (proxy.go): the client they name is the one the ACL, the rate
	// limit, cookies, connection shares and logs see. Share one between
	// front ends.
	Proxy *ProxyProtocol
	// Responses, when set, counts the responses sent by protocol and
	// rcode (counters.go). Share one between front ends.
	Responses *ResponseCounters
	Logger    *slog.Logger
}

// Defaults of ListenerConfig, the same on every front end unless named for
// one.
const (
	// DefaultEDNSSize is DNS Flag Day 2020's buffer size: answers that fit
	// in 1232 bytes cross a 1280-byte IPv6 path unfragmented.
	DefaultEDNSSize = 1232
	// defaultMaxConns caps each front end's connections: far above what
	// the clients of one resolver keep open, and small enough that each
	// connection's buffers (tens of KiB with TLS) stay within tens of MiB.
	defaultMaxConns = 1024
	// defaultStreamIdleTimeout is Do53 TCP's and DoT's: RFC 7766 6.2.3
	// asks for seconds, not minutes; 10s lets a stub reuse a connection
	// for a burst of lookups without holding it for long.
	defaultStreamIdleTimeout = 10 * time.Second
	// defaultQUICIdleTimeout is DoH's and DoQ's: browsers and stubs keep
	// one connection for all their lookups, and a TLS or QUIC handshake
	// costs more than an idle connection; 30s is quic-go's own
	// max_idle_timeout default.
	defaultQUICIdleTimeout = 30 * time.Second
	// defaultWriteTimeout bounds one answer's write: a client that has not
	// taken a few KiB in 5s is not reading.
	defaultWriteTimeout = 5 * time.Second
	// defaultDoHWriteTimeout is longer since net/http starts it when the
	// request's headers are read, before the handler resolves.
	defaultDoHWriteTimeout = 10 * time.Second
	// defaultTCPInFlight and defaultDoTInFlight bound pipelined queries
	// per connection: a stub pipelines a handful; DoT clients
	// (systemd-resolved, Android) send all their lookups down one
	// connection, so they get more.
	defaultTCPInFlight = 16
	defaultDoTInFlight = 32
	// defaultStreams bounds the concurrent streams per HTTP/2, HTTP/3 or
	// DoQ connection: RFC 9113 6.5.2 asks HTTP/2 servers for no fewer
	// than 100, and DoQ's streams are as many queries.
	defaultStreams = 100
)

// listenerDefaults are the defaults a front end gives the fields of
// ListenerConfig whose defaults depend on its protocol.
type listenerDefaults struct {
	idleTimeout, writeTimeout time.Duration
	maxInFlight               int
}

// setDefaults fills in the zero fields.
func (c *ListenerConfig) setDefaults(d listenerDefaults) {
	if c.EDNSSize == 0 {
		c.EDNSSize = DefaultEDNSSize
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.idleTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.writeTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = defaultMaxConns
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = d.maxInFlight
	}
}

// Validate reports what is wrong with c, zero fields standing for their
// defaults. Every front end's constructor calls it; a program can call it
// first to report every flag's error before anything binds.
func (c *ListenerConfig) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("no listen address")
	case c.Handler == nil:
		return errors.New("no handler")
	case c.EDNSSize != 0 && (c.EDNSSize < 512 || c.EDNSSize > 65535):
		// 512: the least any DNS client takes (RFC 1035 4.2.1); 65535: the
		// field's width.
		return fmt.Errorf("EDNS size %d outside [512, 65535]", c.EDNSSize)
	case c.MaxConns < 0 || c.MaxInFlight < 0:
		return errors.New("connection and in-flight limits must not be negative")
	case c.IdleTimeout < 0 || c.WriteTimeout < 0:
		return errors.New("timeouts must not be negative")
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("listen address %q: %w", a, err)
		}
	}
	maxConns := c.MaxConns
	if maxConns == 0 {
		maxConns = defaultMaxConns
	}
	if _, err := c.Conns.resolve(maxConns); err != nil {
		return err
	}
	return nil
}

// newEngine makes the engine of a front end whose defaults are set.
func (c *ListenerConfig) newEngine() *engine {
	access := c.Access
	if access == nil {
		access = NewAccessList(c.Allow)
	}
	e := newEngine(c.Handler, access, c.EDNSSize, c.Logger)
	e.cookies, e.limiter, e.proxy = c.Cookies, c.RateLimit, c.Proxy
	e.responses = c.Responses
	e.rrl = c.RRL
	return e
}
