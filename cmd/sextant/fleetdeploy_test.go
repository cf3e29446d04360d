package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
)

// The deployment test's loopback blocks (ARCHITECTURE.md): dnsdist, Redis,
// the three instances and the clients on 127.104.0.0/16, their lab on
// 127.105.0.0/16.
const (
	deployFront   = "127.104.0.1"  // dnsdist's public address (192.0.2.1)
	deployLBSrc   = "127.104.0.10" // dnsdist's source towards the instances (192.0.2.10)
	deployRedisIP = "127.104.0.20"
	deployAllowed = "127.104.3.5" // a client in allow (198.51.100.0/24)
	deployRefused = "127.104.4.5" // a client outside it
	deployNames   = 300           // bulk names the load asks
)

var deployLabBase = netip.MustParseAddr("127.105.0.0")

// noSecurityPolling keeps a test's dnsdist from asking the internet's DNS
// whether its version has known vulnerabilities: tests stay on loopback.
const noSecurityPolling = "\nsetSecurityPollSuffix(\"\")\n"

// deployInstance is the address of instance i (1..3) of deploy/: where
// 192.0.2.52+i moves to.
func deployInstance(i int) string { return fmt.Sprintf("127.104.1.%d", i) }

// readDeployFile reads deploy/NAME with its example addresses and paths
// moved by r, and fails the test when an example address is left outside
// comments: the test must run what the directory shows.
func readDeployFile(t *testing.T, name string, r *strings.Replacer) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	moved := r.Replace(string(b))
	for _, l := range strings.Split(moved, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "--") || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.Contains(l, "192.0.2.") || strings.Contains(l, "198.51.100.") || strings.Contains(l, "/etc/") {
			t.Fatalf("deploy/%s has an address or path this test does not move: %s", name, l)
		}
	}
	return moved
}

// fleetServe is one `sextant serve --config` of the deployment, stopped
// by cancelling its context as systemd's SIGTERM would.
type fleetServe struct {
	out    *syncBuffer
	cancel context.CancelFunc
	exit   chan int
	once   sync.Once
}

func startFleetServe(t *testing.T, probe string, args ...string) *fleetServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &fleetServe{out: &syncBuffer{}, cancel: cancel, exit: make(chan int, 1)}
	go func() { s.exit <- run(ctx, append([]string{"serve"}, args...), s.out, s.out) }()
	t.Cleanup(func() { s.stop(t) })
	waitForLog(t, s.out, "do53 listening")
	// Asked directly by an allowed client (no PROXY header): answered.
	q := new(dns.Msg).SetQuestion("resolver.arpa.", dns.TypeSOA)
	c := &dns.Client{Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(deployAllowed)}}}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r, _, err := c.Exchange(q, probe); err == nil && r.Rcode == dns.RcodeSuccess {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve on %s does not answer\n%s", probe, s.out.String())
		}
	}
}

// stop cancels serve's context and waits for its graceful shutdown.
func (s *fleetServe) stop(t *testing.T) {
	s.once.Do(func() {
		s.cancel()
		select {
		case code := <-s.exit:
			if code != 0 {
				t.Errorf("serve exited %d\n%s", code, s.out.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not shut down")
		}
	})
}

// TestFleetDeployment runs deploy/ as written, its addresses moved to
// loopback: dnsdist (dnsdist.conf: UDP, TCP, DoT and DoH listeners, health
// checks, PROXY v2) in front of three `sextant serve --config
// sextant-N.toml` sharing one redis-server, each with its /metrics
// (prometheus.yml's targets). Through dnsdist, on every transport, the
// instances' ACL judges the real client and the log names it. Then one
// instance stops gracefully while a client keeps many queries in flight
// through dnsdist: at most the queries in flight at that moment are lost,
// dnsdist's health check takes the instance out, and afterwards nothing is
// lost.
func TestFleetDeployment(t *testing.T) {
	dnsdist := dnstest.RequireTool(t, "dnsdist")
	redisAddr, _ := dnstest.StartRedis(t, deployRedisIP)
	l := labtest.Start(t, lab.Config{AddrBase: deployLabBase, BulkHosts: deployNames})
	dir := t.TempDir()
	if err := l.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "fleet.key")
	if err := os.WriteFile(keyFile, []byte(fleetKeyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, certKey, _ := writeCertPair(t, dir, "dnsdist")
	moves := []string{
		"192.0.2.1:", deployFront + ":",
		"192.0.2.10", deployLBSrc,
		"192.0.2.20:6379", redisAddr,
		"198.51.100.0/24", "127.104.3.0/24",
		"/etc/dnsdist/cert.pem", certFile,
		"/etc/dnsdist/key.pem", certKey,
		"/etc/sextant/fleet.key", keyFile,
	}
	for i := 1; i <= 3; i++ {
		moves = append(moves, fmt.Sprintf("192.0.2.%d:", 52+i), deployInstance(i)+":")
	}
	r := strings.NewReplacer(moves...)

	// prometheus.yml scrapes what the instances' metrics-listen serve.
	var targets []string
	for _, line := range strings.Split(readDeployFile(t, "prometheus.yml", r), "\n") {
		target, ok := strings.CutPrefix(strings.TrimSpace(line), "- ")
		if _, err := netip.ParseAddrPort(target); ok && err == nil {
			targets = append(targets, target)
		}
	}
	if len(targets) != 3 {
		t.Fatalf("prometheus.yml scrapes %v, want the three instances", targets)
	}

	var serves []*fleetServe
	for i := 1; i <= 3; i++ {
		conf := filepath.Join(dir, fmt.Sprintf("sextant-%d.toml", i))
		if err := os.WriteFile(conf, []byte(readDeployFile(t, fmt.Sprintf("sextant-%d.toml", i), r)), 0o644); err != nil {
			t.Fatal(err)
		}
		serves = append(serves, startFleetServe(t, deployInstance(i)+":53", "--config", conf,
			"--root-hints", filepath.Join(dir, lab.FileRootHints), "--trust-anchor", filepath.Join(dir, lab.FileRootDS),
			"--log-level", "debug", "--control-socket", filepath.Join(dir, fmt.Sprintf("ctl%d.sock", i)),
			// The load comes from one client /24, past the per-client rate
			// limit, which would drop and truncate some of it.
			"--rate-limit", "0"))
	}
	for _, target := range targets {
		if n := scrapeSum(t, "http://"+target+"/metrics", "sextant_shared_cache_breaker_open"); n != 0 {
			t.Fatalf("%s: breaker open (%v) with Redis up", target, n)
		}
	}
	confPath := filepath.Join(dir, "dnsdist.conf")
	if err := os.WriteFile(confPath, []byte(readDeployFile(t, "dnsdist.conf", r)+noSecurityPolling), 0o644); err != nil {
		t.Fatal(err)
	}
	dnstest.StartDaemon(t, dir, dnsdist, "--supervised", "--disable-syslog", "-C", confPath)
	dnsdistLog := filepath.Join(dir, "dnsdist.log")

	front := deployFront + ":53"
	clients := deployClients()
	// dnsdist takes a moment to listen and to see the instances up, and
	// its TLS and DoH workers start after its UDP listener (a DoT query
	// right after the first UDP answer was once reset): wait for each
	// transport.
	deadline := time.Now().Add(15 * time.Second)
	for _, network := range []string{"udp", "tcp", "dot", "doh"} {
		for ; ; time.Sleep(100 * time.Millisecond) {
			if m, err := clients[network](deployAllowed, "www."+lab.SecureAlg13); err == nil && m.Rcode == dns.RcodeSuccess {
				break
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(dnsdistLog)
				t.Fatalf("dnsdist on %s does not answer over %s\n%s", front, network, b)
			}
		}
	}

	// The real client through dnsdist, on each of its transports.
	for _, network := range []string{"udp", "tcp", "dot", "doh"} {
		m, err := clients[network](deployAllowed, "www."+lab.SecureAlg13)
		if err != nil || m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || len(m.Answer) == 0 {
			t.Fatalf("%s: allowed client through dnsdist: %v %v", network, err, m)
		}
		m, err = clients[network](deployRefused, "www."+lab.SecureAlg13)
		if err != nil || m.Rcode != dns.RcodeRefused {
			t.Errorf("%s: client %s outside allow through dnsdist: %v %v, want REFUSED", network, deployRefused, err, m)
		}
	}
	// The log names the real client, and dnsdist as the hop.
	refusal := regexp.MustCompile(`msg="query refused: client not allowed" proto=\w+ client=` + regexp.QuoteMeta(deployRefused) + `:\d+ via=` + regexp.QuoteMeta(deployLBSrc) + `:`)
	refusalLogged := func() int {
		n := 0
		for _, s := range serves {
			n += len(refusal.FindAllString(s.out.String(), -1))
		}
		return n
	}
	waitFor(t, "four refusals logged with the real client", func() bool { return refusalLogged() >= 4 })

	// Every bulk name asked of every instance directly, so the load below
	// is answered from their own caches: what it measures is the stop, not
	// the resolutions (instance 1 resolves, 2 and 3 find the names in Redis).
	names := make([]string, deployNames)
	for i := range names {
		names[i] = fmt.Sprintf("h%d.%s", i, lab.Bulk)
	}
	direct := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(deployAllowed)}}}
	for i := 1; i <= 3; i++ {
		for _, name := range names {
			m, _, err := direct.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), deployInstance(i)+":53")
			if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
				t.Fatalf("warming instance %d: %s: %v %v", i, name, err, m)
			}
		}
	}

	// The load: closed-loop clients, each with one query in flight. Instance
	// 2 stops while they run.
	stopped := deployInstance(2) + ":53"
	down := "Marking downstream " + stopped + " as 'down'"
	answered2 := func() float64 { return scrapeSum(t, "http://"+targets[1]+"/metrics", "sextant_queries_total{") }
	before2 := answered2()
	var inFlightAtStop int64
	var answeredBy2 float64
	stopping := false
	load := runDeployLoad(t, front, names, deployWorkers, func(s *deployLoad) bool {
		switch {
		case !stopping && s.answered.Load() >= 3000:
			answeredBy2 = answered2() - before2
			inFlightAtStop = s.inFlight.Load()
			stopping = true
			go serves[1].stop(t)
		case stopping && s.marked.IsZero():
			if b, _ := os.ReadFile(dnsdistLog); bytes.Contains(b, []byte(down)) {
				s.marked = time.Now()
				s.markedAt.Store(s.marked.UnixNano())
				s.sentAtMark = s.sent.Load()
			}
		case !s.marked.IsZero():
			// Long enough after the mark for every query sent before it
			// to have been answered or timed out.
			return time.Since(s.marked) > 2*deployTimeout
		}
		return false
	})
	t.Logf("load through dnsdist: %s; in flight when instance 2 stopped: %d; instance 2 had answered %.0f", load, inFlightAtStop, answeredBy2)
	if answeredBy2 == 0 {
		t.Errorf("instance 2 answered none of the load before it stopped")
	}
	if load.failed.Load() != 0 {
		t.Errorf("%d answers not NOERROR", load.failed.Load())
	}
	if lost := load.lost.Load(); lost > inFlightAtStop {
		t.Errorf("lost %d queries, more than the %d in flight when instance 2 stopped", lost, inFlightAtStop)
	}
	if load.lostAfterMark.Load() != 0 {
		t.Errorf("%d queries sent after dnsdist marked instance 2 down were lost", load.lostAfterMark.Load())
	}
	if load.sent.Load()-load.sentAtMark < 1000 {
		t.Errorf("only %d queries after instance 2 was taken out", load.sent.Load()-load.sentAtMark)
	}
}

// deployClients ask dnsdist from a given client address over each of its
// transports.
func deployClients() map[string]func(src, name string) (*dns.Msg, error) {
	query := func(name string) *dns.Msg {
		q := new(dns.Msg).SetQuestion(name, dns.TypeA)
		q.SetEdns0(1232, true)
		return q
	}
	exchange := func(network, port string) func(src, name string) (*dns.Msg, error) {
		return func(src, name string) (*dns.Msg, error) {
			local := net.Addr(&net.TCPAddr{IP: net.ParseIP(src)})
			if network == "udp" {
				local = &net.UDPAddr{IP: net.ParseIP(src)}
			}
			c := &dns.Client{Net: network, Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 2 * time.Second},
				TLSConfig: &tls.Config{InsecureSkipVerify: true}} // dnsdist's self-signed test certificate
			m, _, err := c.Exchange(query(name), net.JoinHostPort(deployFront, port))
			return m, err
		}
	}
	doh := func(src, name string) (*dns.Msg, error) {
		body, err := query(name).Pack()
		if err != nil {
			return nil, err
		}
		hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			ForceAttemptHTTP2: true,
		}}
		defer hc.CloseIdleConnections()
		resp, err := hc.Post("https://"+deployFront+"/dns-query", "application/dns-message", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize))
		if err != nil {
			return nil, err
		}
		m := new(dns.Msg)
		return m, m.Unpack(b)
	}
	return map[string]func(src, name string) (*dns.Msg, error){
		"udp": exchange("udp", "53"), "tcp": exchange("tcp", "53"), "dot": exchange("tcp-tls", "853"), "doh": doh,
	}
}

const (
	// deployWorkers is how many queries the load keeps in flight.
	deployWorkers = 32
	// deployTimeout is how long a load query waits for its answer: longer
	// than dnsdist's health check interval plus its timeout (2 s in
	// dnsdist.conf), so each client loses at most the one query it has in
	// flight while the stopped instance is still in rotation.
	deployTimeout = 3 * time.Second
)

// deployLoad counts a closed-loop load's queries.
type deployLoad struct {
	sent, answered, failed, lost, inFlight atomic.Int64
	// rcodes counts the answers not NOERROR by rcode, and NOERROR without
	// an answer (TC) as 0.
	rcodes [16]atomic.Int64
	// lostAfterMark counts lost queries sent after marked.
	lostAfterMark atomic.Int64
	elapsed       time.Duration
	marked        time.Time // set by the load's until func only
	sentAtMark    int64
	markedAt      atomic.Int64 // marked in UnixNano, for the workers
}

func (s *deployLoad) String() string {
	var failed []string
	for rcode := range s.rcodes {
		if n := s.rcodes[rcode].Load(); n != 0 {
			failed = append(failed, fmt.Sprintf("%s %d", dns.RcodeToString[rcode], n))
		}
	}
	return fmt.Sprintf("sent %d in %v, answered %d (%d not NOERROR with an answer: %v), lost %d",
		s.sent.Load(), s.elapsed.Round(time.Millisecond), s.answered.Load(), s.failed.Load(), failed, s.lost.Load())
}

// runDeployLoad runs workers clients, each asking names at random over UDP
// from deployAllowed and waiting for each answer (deployTimeout), until
// until, polled every 10 ms, says stop.
func runDeployLoad(t *testing.T, front string, names []string, workers int, until func(*deployLoad) bool) *deployLoad {
	t.Helper()
	s := &deployLoad{}
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(deployAllowed)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(front)))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			deployWorker(ctx, conn, names, s)
		}()
	}
	for deadline := time.Now().Add(60 * time.Second); !until(s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			wg.Wait()
			t.Fatalf("load still running after 60 s: %s", s)
		}
	}
	cancel()
	wg.Wait()
	s.elapsed = time.Since(start)
	return s
}

// deployWorker asks one query at a time until ctx ends, finishing the
// query in flight.
func deployWorker(ctx context.Context, conn *net.UDPConn, names []string, s *deployLoad) {
	buf := make([]byte, dns.MaxMsgSize)
	for ctx.Err() == nil {
		q := new(dns.Msg).SetQuestion(names[rand.IntN(len(names))], dns.TypeA)
		q.Id = uint16(rand.Uint32())
		wire, err := q.Pack()
		if err != nil {
			panic(err)
		}
		sentAt := time.Now().UnixNano()
		s.inFlight.Add(1)
		s.sent.Add(1)
		answered := false
		if _, err := conn.Write(wire); err == nil {
			answered = awaitAnswer(conn, buf, q.Id, s)
		}
		s.inFlight.Add(-1)
		if !answered {
			s.lost.Add(1)
			if m := s.markedAt.Load(); m != 0 && sentAt > m {
				s.lostAfterMark.Add(1)
			}
		}
	}
}

// awaitAnswer reads until the answer to id arrives or deployTimeout
// passes; late answers to earlier queries are skipped.
func awaitAnswer(conn *net.UDPConn, buf []byte, id uint16, s *deployLoad) bool {
	conn.SetReadDeadline(time.Now().Add(deployTimeout))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return false
			}
			continue // ICMP errors and the like: keep waiting until the deadline
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil || m.Id != id {
			continue
		}
		s.answered.Add(1)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
			s.failed.Add(1)
			s.rcodes[m.Rcode&0xf].Add(1)
		}
		return true
	}
}

// scrapeSum sums the values of the /metrics lines starting with prefix.
func scrapeSum(t *testing.T, url, prefix string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", url, line, err)
		}
		sum += v
	}
	return sum
}
