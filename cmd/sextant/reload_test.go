package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/transport"
)

// Reload and ctl operations tests live in 127.93.0.0/16: the lab's servers
// on 127.93.0.1-10, serve's listeners on 127.93.1.x, clients on 127.93.8.x
// (never rate limited, the "production traffic") and 127.93.9.x.
const (
	opsLabBase    = "127.93.0.0"
	opsListen     = "127.93.1.1:53"
	opsListen2    = "127.93.1.2:53"
	opsListenBusy = "127.93.1.3:53"
	opsDoT        = "127.93.1.4:853"
	opsClient     = "127.93.8.8"
	opsStranger   = "127.93.9.9"
)

// opsServe is a serve started from a config file that the test rewrites.
type opsServe struct {
	t      *testing.T
	path   string            // the config file
	keys   map[string]string // its keys, TOML values
	socket string
	log    *syncBuffer
	stop   func() // ends serve and waits for it (also at the test's end)
}

// startOpsServe starts the lab and a serve configured by keys (the lab's
// hints and anchor, the control socket and a state directory are added).
func startOpsServe(t *testing.T, keys map[string]string) *opsServe {
	t.Helper()
	l, err := lab.Start(context.Background(), lab.Config{AddrBase: netip.MustParseAddr(opsLabBase), BulkHosts: -1})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	if err := l.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	s := &opsServe{t: t, path: filepath.Join(t.TempDir(), "sextant.toml"), keys: map[string]string{
		"root-hints":     fmt.Sprintf("%q", filepath.Join(dir, lab.FileRootHints)),
		"trust-anchor":   fmt.Sprintf("[%q]", filepath.Join(dir, lab.FileRootDS)),
		"state-dir":      fmt.Sprintf("%q", t.TempDir()),
		"control-socket": fmt.Sprintf("%q", filepath.Join(t.TempDir(), "control.sock")),
	}, log: &syncBuffer{}}
	s.socket = strings.Trim(s.keys["control-socket"], `"`)
	s.set(keys)
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, []string{"serve", "--config", s.path}, s.log, s.log) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-exit:
			case <-time.After(10 * time.Second):
				t.Error("serve did not shut down")
			}
		})
	}
	t.Cleanup(s.stop)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := ctlExchange(s.socket, "stats", time.Second); err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket\n%s", s.log.String())
		}
	}
}

// set changes keys of the file (an empty value removes the key) and
// rewrites it.
func (s *opsServe) set(keys map[string]string) {
	s.t.Helper()
	for k, v := range keys {
		if v == "" {
			delete(s.keys, k)
		} else {
			s.keys[k] = v
		}
	}
	names := make([]string, 0, len(s.keys))
	for k := range s.keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s = %s\n", k, s.keys[k])
	}
	if err := os.WriteFile(s.path, []byte(b.String()), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// reload runs `sextant ctl reload` and returns its exit status and output.
func (s *opsServe) reload() (int, string) {
	code, out, errOut := ctl(s.socket, "reload")
	return code, out + errOut
}

// clientFrom is a UDP DNS client with the source address from.
func clientFrom(from string, timeout time.Duration) *dns.Client {
	return &dns.Client{Timeout: timeout, Dialer: &net.Dialer{Timeout: timeout, LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
}

// askFrom sends one query for name A from the address from, with AD set
// to learn whether the answer is validated (RFC 6840 5.7).
func askFrom(from, server, name string, timeout time.Duration) (*dns.Msg, error) {
	q := new(dns.Msg).SetQuestion(name, dns.TypeA)
	q.AuthenticatedData = true
	r, _, err := clientFrom(from, timeout).Exchange(q, server)
	return r, err
}

// tcpFrom opens a DNS connection over TCP from the address from.
func tcpFrom(from, server string) (*dns.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", server)
	if err != nil {
		return nil, err
	}
	return &dns.Conn{Conn: c}, nil
}

// exchangeOn sends one query on an open connection.
func exchangeOn(c *dns.Conn, name string) (*dns.Msg, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if err := c.WriteMsg(new(dns.Msg).SetQuestion(name, dns.TypeA)); err != nil {
		return nil, err
	}
	return c.ReadMsg()
}

// steadyClient queries name over UDP and over one TCP connection kept
// open, again and again, counting answers and failures, until stopped.
type steadyClient struct {
	answered atomic.Int64
	mu       sync.Mutex
	failures []string
	stop     chan struct{}
	done     chan struct{}
}

func startSteadyClient(t *testing.T, server, name string) *steadyClient {
	t.Helper()
	conn, err := tcpFrom(opsClient, server)
	if err != nil {
		t.Fatal(err)
	}
	c := &steadyClient{stop: make(chan struct{}), done: make(chan struct{})}
	udp := clientFrom(opsClient, 2*time.Second)
	fail := func(what string, r *dns.Msg, err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			c.failures = append(c.failures, fmt.Sprintf("%s: %v", what, err))
		} else {
			c.failures = append(c.failures, fmt.Sprintf("%s: rcode %s, %d answers", what, dns.RcodeToString[r.Rcode], len(r.Answer)))
		}
	}
	go func() {
		defer close(c.done)
		defer conn.Close()
		for {
			select {
			case <-c.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if r, _, err := udp.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), server); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				fail("udp", r, err)
			} else {
				c.answered.Add(1)
			}
			if r, err := exchangeOn(conn, name); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				fail("tcp (one connection, open all along)", r, err)
			} else {
				c.answered.Add(1)
			}
		}
	}()
	return c
}

// finish stops the client and fails the test on any lost answer.
func (c *steadyClient) finish(t *testing.T) {
	t.Helper()
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.failures) > 0 {
		t.Errorf("%d queries of the steady client failed during the reloads (%d answered), first: %q", len(c.failures), c.answered.Load(), c.failures[0])
	}
	if c.answered.Load() < 20 {
		t.Errorf("the steady client got only %d answers", c.answered.Load())
	}
}

// TestReloadAppliesLiveSettings: `sextant ctl reload` applies each live
// setting while a client keeps querying over UDP and over one TCP
// connection: no answer is lost, the connection stays open, and the cache
// is kept (a cached name is still answered without asking a server).
// Settings that cannot change live are reported as needing a restart; a
// reload that fails (a listener that cannot bind, a mistake in the file)
// changes nothing.
func TestReloadAppliesLiveSettings(t *testing.T) {
	s := startOpsServe(t, map[string]string{
		"listen":            fmt.Sprintf("[%q]", opsListen),
		"allow":             `["127.93.0.0/16"]`,
		"rate-limit-exempt": `["127.93.8.0/24"]`,
	})
	www := "www." + lab.SecureAlg13
	if r, err := askFrom(opsClient, opsListen, www, 5*time.Second); err != nil || !r.AuthenticatedData {
		t.Fatalf("first answer: %v %v\n%s", r, err, s.log.String())
	}
	steady := startSteadyClient(t, opsListen, www)
	time.Sleep(50 * time.Millisecond)

	_, before, _ := ctl(s.socket, "stats")

	t.Run("listener added, log level, query log, limits; cache size needs a restart", func(t *testing.T) {
		s.set(map[string]string{
			"listen":     fmt.Sprintf("[%q, %q]", opsListen, opsListen2),
			"log-level":  `"debug"`,
			"query-log":  "true",
			"max-conns":  "100",
			"rate-limit": "500",
			"cache":      "", // no table
		})
		s.keys["cache-size"] = "5000"
		s.set(nil)
		code, out := s.reload()
		if code != 0 {
			t.Fatalf("reload: exit %d: %s\n%s", code, out, s.log.String())
		}
		for _, want := range []string{"applied: listen, log-level, max-conns, query-log, rate-limit\n", "needs restart: cache-size\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("reload answer lacks %q:\n%s", want, out)
			}
		}
		waitForLog(t, s.log, `keys=cache-size`)
		// The new listener answers, from the cache kept through the reload.
		if r, err := askFrom(opsClient, opsListen2, www, 2*time.Second); err != nil || len(r.Answer) == 0 {
			t.Fatalf("the added listener: %v %v", r, err)
		}
		_, after, _ := ctl(s.socket, "stats")
		if statValue(t, after, "cache.rrset.entries") < statValue(t, before, "cache.rrset.entries") ||
			statValue(t, after, "cache.answers.hits") <= statValue(t, before, "cache.answers.hits") {
			t.Errorf("the cache was not kept through the reload:\nbefore\n%s\nafter\n%s", before, after)
		}
		if _, out, _ := ctl(s.socket, "trace", www, "A"); strings.Contains(out, " @") {
			t.Errorf("after reload, the cached name asks a server:\n%s", out)
		}
		// The query log is on: cache hits, and a new name with its upstream queries.
		waitForLog(t, s.log, "msg=query client="+opsClient)
		waitForLog(t, s.log, "name="+www+" type=A rcode=NOERROR")
		if !strings.Contains(s.log.String(), "cache_hit=true upstream=0") {
			t.Errorf("no cache hit logged:\n%.3000s", s.log.String())
		}
		newName := "www." + lab.SecureAlg8
		if _, err := askFrom(opsClient, opsListen, newName, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		waitForLog(t, s.log, "name="+newName+" type=A rcode=NOERROR")
		for _, line := range strings.Split(s.log.String(), "\n") {
			if strings.Contains(line, "msg=query") && strings.Contains(line, "name="+newName) && !strings.Contains(line, "cache_hit=false upstream=") {
				t.Errorf("a resolved name logged as a hit: %s", line)
			}
		}
		// Debug lines now appear (the resolver logs each validation).
		waitForLog(t, s.log, "level=DEBUG")
	})

	t.Run("negative trust anchor", func(t *testing.T) {
		s.set(map[string]string{"negative-trust-anchor": fmt.Sprintf("[%q]", lab.SecureAlg13), "query-log": "false"})
		if code, out := s.reload(); code != 0 || !strings.Contains(out, "negative-trust-anchor") {
			t.Fatalf("reload: exit %d: %s", code, out)
		}
		r, err := askFrom(opsClient, opsListen, www, 5*time.Second)
		if err != nil || r.AuthenticatedData || len(r.Answer) == 0 {
			t.Errorf("below a negative trust anchor: %v %v, want an answer without AD", r, err)
		}
		if _, out, _ := ctl(s.socket, "nta", "list"); out != lab.SecureAlg13+"\n" {
			t.Errorf("nta list: %q", out)
		}
	})

	t.Run("rate limit and connection shares", func(t *testing.T) {
		s.set(map[string]string{"rate-limit": "1", "rate-limit-burst": "1", "rate-limit-slip": "0", "conns-per-client": "1"})
		if code, out := s.reload(); code != 0 {
			t.Fatalf("reload: exit %d: %s", code, out)
		}
		lost := 0
		for range 6 {
			if _, err := askFrom(opsStranger, opsListen, www, 300*time.Millisecond); err != nil {
				lost++
			}
		}
		if lost == 0 {
			t.Error("rate limit 1/s: no query of six was dropped")
		}
		// The steady client holds its one connection; a second is refused.
		if c, err := tcpFrom(opsClient, opsListen); err == nil {
			if _, err := exchangeOn(c, www); err == nil {
				t.Error("a second connection was served over conns-per-client 1")
			}
			c.Close()
		}
		s.set(map[string]string{"rate-limit": "", "rate-limit-burst": "", "rate-limit-slip": "", "conns-per-client": ""})
		if code, out := s.reload(); code != 0 {
			t.Fatalf("reload back: exit %d: %s", code, out)
		}
		time.Sleep(1100 * time.Millisecond) // the stranger's bucket refills
		if _, err := askFrom(opsStranger, opsListen, www, 2*time.Second); err != nil {
			t.Errorf("after the rate limit is lifted: %v", err)
		}
	})

	t.Run("listener removed, access list narrowed", func(t *testing.T) {
		s.set(map[string]string{"listen": fmt.Sprintf("[%q]", opsListen), "allow": `["127.93.8.0/24"]`})
		code, out := s.reload()
		if code != 0 || !strings.Contains(out, "allow") || !strings.Contains(out, "listen") {
			t.Fatalf("reload: exit %d: %s", code, out)
		}
		if _, err := askFrom(opsClient, opsListen2, www, 300*time.Millisecond); err == nil {
			t.Error("the removed listener still answers")
		}
		if r, err := askFrom(opsStranger, opsListen, www, 2*time.Second); err != nil || r.Rcode != dns.RcodeRefused {
			t.Errorf("a client the new access list leaves out: %v %v, want REFUSED", r, err)
		}
	})

	t.Run("DoT listener added, certificate files switched", func(t *testing.T) {
		dir := s.t.TempDir() // the files stay in the configuration after this subtest
		certA, keyA, pinA := writeCertPair(t, dir, "a")
		certB, keyB, pinB := writeCertPair(t, dir, "b")
		s.set(map[string]string{"dot": fmt.Sprintf("[%q]", opsDoT), "tls-cert": fmt.Sprintf("%q", certA), "tls-key": fmt.Sprintf("%q", keyA)})
		if code, out := s.reload(); code != 0 || !strings.Contains(out, "applied: dot, tls-cert, tls-key") {
			t.Fatalf("reload: exit %d: %s", code, out)
		}
		conn, pin := dialDoT(t, opsDoT)
		defer conn.Close()
		if pin != pinA {
			t.Fatalf("DoT presents %s, want %s", pin, pinA)
		}
		s.set(map[string]string{"tls-cert": fmt.Sprintf("%q", certB), "tls-key": fmt.Sprintf("%q", keyB)})
		if code, out := s.reload(); code != 0 || !strings.Contains(out, "applied: tls-cert, tls-key") {
			t.Fatalf("reload: exit %d: %s", code, out)
		}
		if _, pin := dialDoT(t, opsDoT); pin != pinB {
			t.Errorf("after the switch DoT presents %s, want %s", pin, pinB)
		}
		if r, err := exchangeOn(&dns.Conn{Conn: conn}, www); err != nil || len(r.Answer) == 0 {
			t.Errorf("the DoT connection opened before the switch: %v %v", r, err)
		}
		s.set(map[string]string{"tls-cert": "", "tls-key": ""})
		if code, out := s.reload(); code != 0 || !strings.Contains(out, "needs restart: cache-size, tls-cert, tls-key") {
			t.Errorf("back to self-signed: exit %d: %s", code, out)
		}
		s.set(map[string]string{"dot": "", "tls-cert": fmt.Sprintf("%q", certB), "tls-key": fmt.Sprintf("%q", keyB)})
		if code, out := s.reload(); code != 0 || !strings.Contains(out, "applied: dot") {
			t.Errorf("DoT listener removed: exit %d: %s", code, out)
		}
	})

	t.Run("failed reload changes nothing", func(t *testing.T) {
		busy, err := net.Listen("tcp", opsListenBusy)
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		s.set(map[string]string{"listen": fmt.Sprintf("[%q, %q]", opsListen, opsListenBusy), "allow": `["10.0.0.0/8"]`, "log-level": `"error"`})
		code, out := s.reload()
		if code != 1 || !strings.Contains(out, "reload failed; the running configuration stays") || !strings.Contains(out, opsListenBusy) {
			t.Fatalf("reload with a listener that cannot bind: exit %d: %s", code, out)
		}
		// allow was not applied: the steady client (checked at the end)
		// is still answered, the stranger still refused.
		if r, err := askFrom(opsStranger, opsListen, www, 2*time.Second); err != nil || r.Rcode != dns.RcodeRefused {
			t.Errorf("after a failed reload: %v %v, want REFUSED as before", r, err)
		}
		os.WriteFile(s.path, []byte("bogus = 1\n"), 0o600)
		if code, out := s.reload(); code != 1 || !strings.Contains(out, "bogus: unknown key") {
			t.Errorf("reload of a file with a mistake: exit %d: %s", code, out)
		}
		waitForLog(t, s.log, `msg="configuration reload failed; the running configuration stays"`)
		// Nor was the log level: a new resolution still logs at debug.
		other := "www." + lab.SecureAlg15
		if _, err := askFrom(opsClient, opsListen, other, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		waitForLog(t, s.log, "level=DEBUG msg=validated name="+other)
		// The last good file again: nothing to apply, cache-size still waits.
		s.set(map[string]string{"listen": fmt.Sprintf("[%q]", opsListen), "allow": `["127.93.8.0/24"]`, "log-level": `"debug"`})
		if code, out := s.reload(); code != 0 || strings.Contains(out, "applied:") || !strings.Contains(out, "needs restart: cache-size") {
			t.Errorf("reload of the good file: exit %d: %s", code, out)
		}
	})

	steady.finish(t)
}

// writeCertPair writes a self-signed certificate and its key as PEM files
// NAME.pem and NAME.key in dir and returns them with the SPKI pin.
func writeCertPair(t *testing.T, dir, name string) (certFile, keyFile, pin string) {
	t.Helper()
	cert, pin, err := transport.SelfSigned([]string{"127.93.1.4"})
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	return certFile, keyFile, pin
}

// dialDoT opens a DoT connection from the steady client's address and
// returns it with the pin of the certificate presented.
func dialDoT(t *testing.T, addr string) (*tls.Conn, string) {
	t.Helper()
	d := &net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(opsClient)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"dot"}}) // the pin is what is checked
	if err != nil {
		t.Fatal(err)
	}
	return c, transport.SPKIPin(c.ConnectionState().PeerCertificates[0])
}

// TestLiveSettingsAreFlags: each setting a reload applies is a serve flag
// (a misspelt name would silently fall to "needs restart").
func TestLiveSettingsAreFlags(t *testing.T) {
	fs := serveFlags(t).flags
	for name := range liveSettings {
		if fs.Lookup(name) == nil {
			t.Errorf("liveSettings names %q, which is no serve flag", name)
		}
	}
	for _, name := range listenerSettings {
		if !liveSettings[name] {
			t.Errorf("listener setting %q is not live", name)
		}
	}
}
