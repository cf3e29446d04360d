package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// Connection-flood tests use source addresses in 127.71.0.0/16 (every
// 127/8 address is loopback on Linux): 127.71.1-9.x for attackers,
// 127.71.200.x for the victim, 127.71.10.x for the eviction test.

// floodConn is one client connection to a front end.
type floodConn interface {
	// query sends one query and reads its answer.
	query() error
	// done is closed when the server has closed the connection, where the
	// client can tell without sending (QUIC); nil otherwise.
	done() <-chan struct{}
	close()
}

// floodTarget starts one front end with the given cap and shares and
// says how to connect to it from a given source address.
type floodTarget struct {
	name string
	// pingOnly: the attacker keeps its connections with transport PINGs
	// alone, no queries.
	pingOnly bool
	// victimPerConn is how many of its 100 queries the victim sends on
	// each new connection: 1 for TCP (a resolver falling back after a
	// truncated answer), 10 where handshakes are dear.
	victimPerConn int
	start         func(t *testing.T, max int, l ConnLimits) (dial func(local netip.Addr) (floodConn, error), adm func() *admission)
}

// floodTimeout bounds one dial or query: generous, for a machine busy
// with the attack itself (and the race detector).
const floodTimeout = 5 * time.Second

func floodQuery(t testing.TB) []byte {
	q := dnstest.Query("example.", dns.TypeA)
	q.Id = 0
	return mustPack(t, q)
}

// checkAnswer reports whether raw is an answer to a query.
func checkAnswer(raw []byte) error {
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		return err
	}
	if !m.Response || m.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("not a good answer: %v", m.MsgHdr)
	}
	return nil
}

// streamFloodConn is a TCP or DoT connection.
type streamFloodConn struct {
	c net.Conn
	q []byte
}

func (s *streamFloodConn) query() error {
	s.c.SetDeadline(time.Now().Add(floodTimeout))
	if err := writeFramed(s.c, s.q); err != nil {
		return err
	}
	raw, err := readFramed(s.c)
	if err != nil {
		return err
	}
	return checkAnswer(raw)
}
func (s *streamFloodConn) done() <-chan struct{} { return nil }
func (s *streamFloodConn) close()                { s.c.Close() }

func dialFrom(local netip.Addr, target string, conf *tls.Config) (net.Conn, error) {
	d := &net.Dialer{Timeout: floodTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
	c, err := d.Dial("tcp", target)
	if err != nil || conf == nil {
		return c, err
	}
	tc := tls.Client(c, conf)
	tc.SetDeadline(time.Now().Add(floodTimeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// dohFloodConn is a DoH client bound to one source address; its transport
// holds one connection (HTTP/2 or HTTP/3).
type dohFloodConn struct {
	client *http.Client
	url    string
	q      []byte
	closer func()
}

func (d *dohFloodConn) query() error {
	resp, err := d.client.Post(d.url, mimeDNSMessage, bytes.NewReader(d.q))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return checkAnswer(raw)
}
func (d *dohFloodConn) done() <-chan struct{} { return nil }
func (d *dohFloodConn) close()                { d.closer() }

// onceDial lets a DoH flood connection dial once: when the server closes
// it, the attacker loop, not the HTTP transport, opens the next.
func onceDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var used atomic.Bool
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if used.Swap(true) {
			return nil, errors.New("flood connection already used")
		}
		return dial(ctx, network, addr)
	}
}

// doqFloodConn is a DoQ connection on its own UDP socket, sending PINGs.
type doqFloodConn struct {
	c  *quic.Conn
	tr *quic.Transport
	q  []byte
}

func (d *doqFloodConn) query() error {
	raw, err := doqExchange(d.c, d.q)
	if err != nil {
		return err
	}
	if len(raw) < 2 {
		return errors.New("short answer")
	}
	return checkAnswer(raw[2:])
}
func (d *doqFloodConn) done() <-chan struct{} { return d.c.Context().Done() }
func (d *doqFloodConn) close() {
	d.c.CloseWithError(0, "")
	d.tr.Close()
}

// floodKeepAlive is how often attackers send a PING (DoQ); floodRedial
// how long they wait before opening a new connection when one is closed
// or refused (a handshake flood is another attack, not tested here).
const (
	floodKeepAlive    = 50 * time.Millisecond
	floodRedial       = time.Second
	floodRefusedRetry = 2 * time.Second
)

func quicTransportFrom(local netip.Addr) (*quic.Transport, error) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		return nil, err
	}
	return &quic.Transport{Conn: pc}, nil
}

func floodTargets(t *testing.T) []floodTarget {
	certs, ctls := testCerts(t)
	return []floodTarget{
		{name: "tcp", victimPerConn: 1, start: func(t *testing.T, max int, l ConnLimits) (func(netip.Addr) (floodConn, error), func() *admission) {
			_, tcp, s := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), MaxConns: max, Conns: l}})
			q := floodQuery(t)
			return func(local netip.Addr) (floodConn, error) {
				c, err := dialFrom(local, tcp, nil)
				if err != nil {
					return nil, err
				}
				return &streamFloodConn{c: c, q: q}, nil
			}, func() *admission { return s.tcp.adm }
		}},
		{name: "dot", victimPerConn: 10, start: func(t *testing.T, max int, l ConnLimits) (func(netip.Addr) (floodConn, error), func() *admission) {
			addr, s := startDoT(t, "127.0.0.1:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs, MaxConns: max, Conns: l}})
			conf := ctls.Clone()
			conf.NextProtos = []string{"dot"}
			conf.ServerName = "127.0.0.1"
			q := floodQuery(t)
			return func(local netip.Addr) (floodConn, error) {
				c, err := dialFrom(local, addr, conf)
				if err != nil {
					return nil, err
				}
				return &streamFloodConn{c: c, q: q}, nil
			}, func() *admission { return s.srv.adm }
		}},
		{name: "doh-h2", victimPerConn: 10, start: func(t *testing.T, max int, l ConnLimits) (func(netip.Addr) (floodConn, error), func() *admission) {
			tcp, _, s := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs, MaxConns: max, Conns: l}, DisableHTTP3: true})
			q := floodQuery(t)
			return func(local netip.Addr) (floodConn, error) {
				d := &net.Dialer{Timeout: floodTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
				tr := &http.Transport{TLSClientConfig: ctls.Clone(), Protocols: new(http.Protocols), DialContext: onceDial(d.DialContext), MaxConnsPerHost: 1}
				tr.Protocols.SetHTTP2(true)
				c := &dohFloodConn{client: &http.Client{Transport: tr, Timeout: floodTimeout}, url: "https://" + tcp + "/dns-query", q: q, closer: tr.CloseIdleConnections}
				return c, nil
			}, func() *admission { return s.tcpAdm }
		}},
		{name: "doh-h3", victimPerConn: 10, start: func(t *testing.T, max int, l ConnLimits) (func(netip.Addr) (floodConn, error), func() *admission) {
			_, udp, s := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs, MaxConns: max, Conns: l}})
			q := floodQuery(t)
			udpAddr, err := net.ResolveUDPAddr("udp", udp)
			if err != nil {
				t.Fatal(err)
			}
			return func(local netip.Addr) (floodConn, error) {
				qtr, err := quicTransportFrom(local)
				if err != nil {
					return nil, err
				}
				var used atomic.Bool
				h3 := &http3.Transport{TLSClientConfig: ctls.Clone(),
					Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
						if used.Swap(true) {
							return nil, errors.New("flood connection already used")
						}
						return qtr.DialEarly(ctx, udpAddr, tc, qc)
					}}
				c := &dohFloodConn{client: &http.Client{Transport: h3, Timeout: floodTimeout}, url: "https://" + udp + "/dns-query", q: q,
					closer: func() { h3.Close(); qtr.Close() }}
				return c, nil
			}, func() *admission { return s.quicAdm }
		}},
		{name: "doq", pingOnly: true, victimPerConn: 10, start: func(t *testing.T, max int, l ConnLimits) (func(netip.Addr) (floodConn, error), func() *admission) {
			cfg := DoQConfig{ListenerConfig: ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: answerA(1), Certs: certs, MaxConns: max, Conns: l}}
			s, err := NewDoQ(cfg)
			if err != nil {
				t.Fatal(err)
			}
			udp, _ := serveForTest(t, s)
			udpAddr, err := net.ResolveUDPAddr("udp", udp)
			if err != nil {
				t.Fatal(err)
			}
			conf := ctls.Clone()
			conf.NextProtos = []string{"doq"}
			q := frame(floodQuery(t))
			return func(local netip.Addr) (floodConn, error) {
				qtr, err := quicTransportFrom(local)
				if err != nil {
					return nil, err
				}
				ctx, cancel := context.WithTimeout(context.Background(), floodTimeout)
				defer cancel()
				c, err := qtr.Dial(ctx, udpAddr, conf, &quic.Config{KeepAlivePeriod: floodKeepAlive})
				if err != nil {
					qtr.Close()
					return nil, err
				}
				return &doqFloodConn{c: c, tr: qtr, q: q}, nil
			}, func() *admission { return s.adm }
		}},
	}
}

// attacker holds connections from one source address: it opens one,
// queries at once (or keeps it with PINGs only) and then every
// queryEvery, and opens a new one when the server closes it.
func attacker(ctx context.Context, wg *sync.WaitGroup, dial func(netip.Addr) (floodConn, error), from netip.Addr, pingOnly bool, queryEvery time.Duration, held *atomic.Int64) {
	defer wg.Done()
	pause := func(d time.Duration, done <-chan struct{}) bool {
		select {
		case <-ctx.Done():
			return false
		case <-done:
			return false
		case <-time.After(d):
			return true
		}
	}
	for ctx.Err() == nil {
		c, err := dial(from)
		if err != nil {
			pause(floodRedial, nil)
			continue
		}
		if c.query() != nil {
			// Refused: try again later, as a client told to go away
			// would (a handshake flood is another attack).
			c.close()
			pause(floodRefusedRetry, nil)
			continue
		}
		{
			held.Add(1)
			for {
				if pingOnly {
					pause(time.Hour, c.done())
					break
				}
				if !pause(queryEvery, nil) || c.query() != nil {
					break
				}
			}
			held.Add(-1)
		}
		c.close()
		pause(floodRedial, nil)
	}
}

// floodLimits are small enough for a test: a cap of 40, 8 per client, 16
// per /24.
var floodLimits = ConnLimits{PerClient: 8, PerPrefix: 16, HighWater: 30, Reserve: 4,
	EvictMinIdle: 100 * time.Millisecond, PressureIdle: 3 * time.Second}

const floodCap = 40

var (
	floodSingle = netip.AddrFrom4([4]byte{127, 71, 1, 1})
	floodNet    = netip.MustParsePrefix("127.71.2.0/24")
)

// floodScenario is one attack: who connects from where, and when the
// server is deemed full of it.
type floodScenario struct {
	name   string
	launch func(launch func(from netip.Addr, n int))
	filled func(a *admission) bool
	check  func(t *testing.T, st ConnStats)
}

var floodScenarios = []floodScenario{
	{
		name:   "one client",
		launch: func(launch func(netip.Addr, int)) { launch(floodSingle, 24) },
		filled: func(a *admission) bool {
			return a.stats().RefusedClient > 0 && countOf(a, floodSingle) == a.limits.PerClient
		},
		check: func(t *testing.T, st ConnStats) {
			if st.RefusedClient == 0 {
				t.Errorf("per-client limit never met: %+v", st)
			}
		},
	},
	{
		name: "one network",
		launch: func(launch func(netip.Addr, int)) {
			for h := range 24 {
				launch(netip.AddrFrom4([4]byte{127, 71, 2, byte(h + 1)}), 1)
			}
		},
		filled: func(a *admission) bool { return a.stats().RefusedPrefix > 0 },
		check: func(t *testing.T, st ConnStats) {
			if st.RefusedPrefix == 0 {
				t.Errorf("per-network limit never met: %+v", st)
			}
		},
	},
	{
		// Five networks that together would fill the cap, plus the two
		// above.
		name: "many networks",
		launch: func(launch func(netip.Addr, int)) {
			launch(floodSingle, 12)
			for h := range 20 {
				launch(netip.AddrFrom4([4]byte{127, 71, 2, byte(h + 1)}), 1)
				launch(netip.AddrFrom4([4]byte{127, 71, byte(3 + h%5), byte(h + 1)}), 2)
			}
		},
		filled: func(a *admission) bool { return a.stats().Open >= floodCap-floodLimits.Reserve },
		check: func(t *testing.T, st ConnStats) {
			if st.Evicted == 0 {
				t.Errorf("no eviction under a full server: %+v", st)
			}
		},
	},
}

func countOf(a *admission, client netip.Addr) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.perClient[client]
}

// TestConnFlood: on every stream front end, attackers hold connections,
// each sending a query every 300ms (slower than the eviction's 100ms) or,
// on DoQ, only PINGs, and open a new one whenever one is closed. A
// victim from another network then sends 100 queries on new connections
// (one per query on TCP, one per ten elsewhere): all must be answered,
// while the client and network shares and the cap hold.
func TestConnFlood(t *testing.T) {
	for _, ft := range floodTargets(t) {
		for _, sc := range floodScenarios {
			t.Run(ft.name+"/"+sc.name, func(t *testing.T) {
				answered, st := runFlood(t, ft, sc)
				t.Logf("%s, %s: victim answered %d/100; %+v", ft.name, sc.name, answered, st)
				if answered != 100 {
					t.Errorf("victim got %d answers out of 100", answered)
				}
				sc.check(t, st)
			})
		}
	}
}

func runFlood(t *testing.T, ft floodTarget, sc floodScenario) (int, ConnStats) {
	dial, adm := ft.start(t, floodCap, floodLimits)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var held atomic.Int64
	defer func() { cancel(); wg.Wait() }()
	sc.launch(func(from netip.Addr, n int) {
		for range n {
			wg.Add(1)
			go attacker(ctx, &wg, dial, from, ft.pingOnly, 300*time.Millisecond, &held)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for !sc.filled(adm()) {
		if time.Now().After(deadline) {
			t.Fatalf("the attack did not fill the server: %+v", adm().stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	checkShares(t, adm())
	victim := netip.AddrFrom4([4]byte{127, 71, 200, 1})
	answered, sent := 0, 0
	for sent < 100 {
		c, err := dial(victim)
		if err != nil {
			t.Logf("victim: %v", err)
			sent++
			continue
		}
		for range min(ft.victimPerConn, 100-sent) {
			sent++
			if err := c.query(); err != nil {
				t.Logf("victim: %v", err)
				break // counted as lost; the next queries go on a new connection
			}
			answered++
		}
		c.close()
	}
	checkShares(t, adm())
	return answered, adm().stats()
}

// checkShares checks the server side: no client over PerClient, no
// network over PerPrefix, nothing over the cap.
func checkShares(t *testing.T, a *admission) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for c, n := range a.perClient {
		if n > a.limits.PerClient {
			t.Errorf("%s holds %d connections, limit %d", c, n, a.limits.PerClient)
		}
	}
	for p, n := range a.perPrefix {
		if n > a.limits.PerPrefix {
			t.Errorf("%s holds %d connections, limit %d", p, n, a.limits.PerPrefix)
		}
	}
	if len(a.slots) > a.max {
		t.Errorf("%d connections open, cap %d", len(a.slots), a.max)
	}
}

// TestDoQPingsDoNotKeepIdle: a DoQ client that sends PINGs but no query
// is closed with DOQ_NO_ERROR after IdleTimeout (RFC 9250 5.5); one that
// sends queries stays open. (QUIC's own idle timer counts PINGs as
// activity, so without the admission's timer the first one would live on.)
func TestDoQPingsDoNotKeepIdle(t *testing.T) {
	certs, ctls := testCerts(t)
	const idle = 400 * time.Millisecond
	s, err := NewDoQ(DoQConfig{ListenerConfig: ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: answerA(1), Certs: certs, IdleTimeout: idle}})
	if err != nil {
		t.Fatal(err)
	}
	udp, _ := serveForTest(t, s)
	udpAddr, err := net.ResolveUDPAddr("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	conf := ctls.Clone()
	conf.NextProtos = []string{"doq"}
	dial := func() *quic.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), floodTimeout)
		defer cancel()
		c, err := quic.DialAddr(ctx, udpAddr.String(), conf, &quic.Config{KeepAlivePeriod: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseWithError(0, "") })
		return c
	}
	q := frame(floodQuery(t))
	pinger, querier := dial(), dial()
	start := time.Now()
	for time.Since(start) < 3*idle {
		if _, err := doqExchange(querier, q); err != nil {
			t.Fatalf("the querying connection failed after %v: %v", time.Since(start), err)
		}
		time.Sleep(idle / 4)
	}
	select {
	case <-pinger.Context().Done():
	case <-time.After(2 * time.Second):
		t.Fatalf("a connection with PINGs only still open %v after its last query", time.Since(start))
	}
	var aerr *quic.ApplicationError
	if err := context.Cause(pinger.Context()); !errors.As(err, &aerr) || aerr.ErrorCode != doqNoError || !aerr.Remote {
		t.Fatalf("pinging connection ended with %v, want DOQ_NO_ERROR from the server", err)
	}
	if querier.Context().Err() != nil {
		t.Fatal("the querying connection was closed")
	}
	if st := s.ConnStats(); st.IdleClosed != 1 {
		t.Errorf("stats %+v, want one idle close", st)
	}
}

// TestTCPEvictsLongestIdle: on real sockets, at the cap, a new client's
// connection closes the connection idle the longest; the one with a
// query in flight and the one used recently keep working.
func TestTCPEvictsLongestIdle(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	h := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		if r.Msg.Question[0].Name == "slow." {
			<-release
		}
		answerA(1).ServeDNS(ctx, w, r)
	})
	_, tcp, s := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h, MaxConns: 3, Conns: ConnLimits{Reserve: 1, EvictMinIdle: 200 * time.Millisecond, PressureIdle: time.Hour}}})
	q := floodQuery(t)
	open := func(host byte) *streamFloodConn {
		c, err := dialFrom(netip.AddrFrom4([4]byte{127, 71, 10 + host, 1}), tcp, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fc := &streamFloodConn{c: c, q: q}
		if err := fc.query(); err != nil {
			t.Fatal(err)
		}
		return fc
	}
	oldest := open(1)
	time.Sleep(100 * time.Millisecond)
	busy := open(2)
	slow := dnstest.Query("slow.", dns.TypeA)
	if err := writeFramed(busy.c, mustPack(t, slow)); err != nil {
		t.Fatal(err)
	}
	recent := open(3)
	time.Sleep(300 * time.Millisecond)
	if err := recent.query(); err != nil { // its idle clock restarts
		t.Fatal(err)
	}
	newcomer := open(4) // at the cap: closes "oldest"
	oldest.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := readFramed(oldest.c); err == nil || isTimeout(err) {
		t.Fatalf("the longest-idle connection: %v, want it closed", err)
	}
	once.Do(func() { close(release) })
	busy.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := readFramed(busy.c); err != nil {
		t.Fatalf("the connection with a query in flight lost its answer: %v", err)
	}
	for name, c := range map[string]*streamFloodConn{"busy": busy, "recent": recent, "newcomer": newcomer} {
		if err := c.query(); err != nil {
			t.Errorf("%s connection: %v", name, err)
		}
	}
	if st := s.TCPConnStats(); st.Evicted != 1 || st.Open != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestTCPFloodDefaults: with the default limits, one client opening 1100
// TCP connections and keeping them gets 64; a client of another network
// then opens a connection per query for 100 queries, all answered.
func TestTCPFloodDefaults(t *testing.T) {
	_, tcp, s := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1)}})
	q := floodQuery(t)
	attacker := netip.AddrFrom4([4]byte{127, 71, 9, 1})
	var held []*streamFloodConn
	for range 1100 {
		c, err := dialFrom(attacker, tcp, nil)
		if err != nil {
			continue // reset even before connect returned: refused
		}
		defer c.Close()
		held = append(held, &streamFloodConn{c: c, q: q})
	}
	kept := 0
	for _, c := range held {
		if c.query() == nil {
			kept++
		}
	}
	victim := netip.AddrFrom4([4]byte{127, 71, 200, 2})
	answered := 0
	for range 100 {
		c, err := dialFrom(victim, tcp, nil)
		if err != nil {
			continue
		}
		if (&streamFloodConn{c: c, q: q}).query() == nil {
			answered++
		}
		c.Close()
	}
	st := s.TCPConnStats()
	t.Logf("tcp, defaults: attacker kept %d of 1100 connections; victim answered %d/100; %+v", kept, answered, st)
	if kept != defaultPerClient || answered != 100 || st.RefusedClient < 1100-defaultPerClient {
		t.Errorf("attacker kept %d (want %d), victim answered %d/100", kept, defaultPerClient, answered)
	}
}

// TestDoHRequestMarksConnBusy: while a DoH request is being served, its
// connection (HTTP/2 on TCP, HTTP/3 on QUIC) counts as busy, so it is not
// evicted as idle; afterwards it is idle again.
func TestDoHRequestMarksConnBusy(t *testing.T) {
	certs, ctls := testCerts(t)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		entered <- struct{}{}
		<-release
		answerA(1).ServeDNS(ctx, w, r)
	})
	_, _, s := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
	tcp, udp := s.Addrs()[0].String(), s.Addrs()[1].String()
	clients := dohClients(t, ctls)
	busy := func(a *admission) (n int32) {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, sl := range a.slots {
			n += sl.busy.Load()
		}
		return n
	}
	for _, tc := range []struct {
		proto, addr string
		adm         *admission
	}{{"HTTP/2.0", tcp, s.tcpAdm}, {"HTTP/3.0", udp, s.quicAdm}} {
		done := make(chan error, 1)
		go func() {
			resp, err := clients[tc.proto].Post("https://"+tc.addr+"/dns-query", mimeDNSMessage, bytes.NewReader(floodQuery(t)))
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		<-entered
		if n := busy(tc.adm); n != 1 {
			t.Errorf("%s: %d queries in flight on the admission during a request, want 1", tc.proto, n)
		}
		release <- struct{}{}
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", tc.proto, err)
		}
		if n := busy(tc.adm); n != 0 {
			t.Errorf("%s: %d in flight after the request", tc.proto, n)
		}
	}
}
