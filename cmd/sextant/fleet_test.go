package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/redis/go-redis/v9"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/sharedcache"
)

// The fleet test's loopback blocks (ARCHITECTURE.md): Redis and the three
// instances on 127.100.0.0/16, their lab on 127.101.0.0/16.
const (
	fleetRedisIP = "127.100.0.1"
	fleetKeyHex  = "5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a5e7a"
)

var fleetLabBase = netip.MustParseAddr("127.101.0.0")

func labQueries(l *lab.Lab) uint64 {
	var n uint64
	for _, s := range l.Servers() {
		n += s.Queries()
	}
	return n
}

// TestFleetSharedCache: three instances share one Redis. What instance 1
// resolved, 2 and 3 answer with no upstream query and the same security
// state; an entry written into Redis without the fleet key is refused;
// with Redis stopped every instance still answers, and the breaker shows.
func TestFleetSharedCache(t *testing.T) {
	redisAddr, stopRedis := dnstest.StartRedis(t, fleetRedisIP)
	l, err := lab.Start(context.Background(), lab.Config{AddrBase: fleetLabBase, BulkHosts: 20})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	if err := l.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "fleet.key")
	if err := os.WriteFile(keyFile, []byte(fleetKeyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var listens, sockets []string
	for i := 1; i <= 3; i++ {
		listen := fmt.Sprintf("127.100.1.%d:53", i)
		socket := filepath.Join(dir, fmt.Sprintf("ctl%d.sock", i))
		startServe(t, listen, "--root-hints", filepath.Join(dir, lab.FileRootHints), "--trust-anchor", filepath.Join(dir, lab.FileRootDS),
			"--shared-cache", "redis://"+redisAddr+"/0", "--shared-cache-key-file", keyFile, "--control-socket", socket,
			"--metrics-listen", fmt.Sprintf("127.100.2.%d:9153", i))
		listens, sockets = append(listens, listen), append(sockets, socket)
	}
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rc.Close()

	name := "www." + lab.SecureAlg13
	m := digDNSSEC(t, listens[0], name, dns.TypeA, false)
	if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || len(m.Answer) == 0 {
		t.Fatalf("instance 1: %v", m)
	}
	waitFor(t, "the shared entry", func() bool { return rc.Exists(context.Background(), "sextant:v1:"+name+"/1/1").Val() == 1 })
	before := labQueries(l)
	for i := 1; i < 3; i++ {
		got := digDNSSEC(t, listens[i], name, dns.TypeA, false)
		if got.Rcode != dns.RcodeSuccess || !got.AuthenticatedData || answerText(got) != answerText(m) {
			t.Fatalf("instance %d: %v, want instance 1's secure answer", i+1, got)
		}
	}
	if n := labQueries(l) - before; n != 0 {
		t.Fatalf("instances 2 and 3 sent %d upstream queries for a name instance 1 resolved", n)
	}

	// Whoever can write to Redis but has no fleet key cannot plant an
	// answer: an entry signed with another key is refused, and the name
	// resolved.
	forger, err := sharedcache.New(sharedcache.Config{URL: "redis://" + redisAddr + "/0", Key: []byte(strings.Repeat("x", sharedcache.MinKeyLen))})
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	target := "www." + lab.SecureAlg8
	now := time.Now()
	forged, _ := dns.NewRR(target + " 3600 IN A 127.66.66.66")
	forger.Put(dns.Question{Name: target, Qtype: dns.TypeA, Qclass: dns.ClassINET},
		&resolver.SharedAnswer{Answer: []dns.RR{forged}, Security: security.Secure, Stored: now, Expires: now.Add(time.Hour)})
	waitFor(t, "the forged entry", func() bool { return rc.Exists(context.Background(), "sextant:v1:"+target+"/1/1").Val() == 1 })
	got := digDNSSEC(t, listens[1], target, dns.TypeA, false)
	if !got.AuthenticatedData || strings.Contains(answerText(got), "127.66.66.66") {
		t.Fatalf("instance 2 took the forged entry: %v", got)
	}
	if _, stats, _ := ctl(sockets[1], "stats"); statValue(t, stats, "sharedcache.forged") != 1 {
		t.Fatalf("forged entry not counted:\n%s", stats)
	}

	// Redis stops: every instance still resolves, the breaker opens.
	stopRedis()
	for i := 0; i < 8; i++ {
		host := fmt.Sprintf("h%d.%s", i, lab.Bulk)
		if got := digDNSSEC(t, listens[2], host, dns.TypeA, false); got.Rcode != dns.RcodeSuccess || len(got.Answer) == 0 {
			t.Fatalf("%s with Redis down: %v", host, got)
		}
	}
	_, stats, _ := ctl(sockets[2], "stats")
	if statValue(t, stats, "sharedcache.breaker_open") != 1 || statValue(t, stats, "sharedcache.errors") == 0 {
		t.Fatalf("breaker not open with Redis down:\n%s", stats)
	}
	resp, err := http.Get("http://127.100.2.3:9153/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\nsextant_shared_cache_breaker_open 1\n") {
		t.Fatalf("the open breaker does not show in /metrics:\n%s", body)
	}
}

// answerText is m's answer section without TTLs, for comparing answers.
func answerText(m *dns.Msg) string {
	var b strings.Builder
	for _, rr := range m.Answer {
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		b.WriteString(c.String() + "\n")
	}
	return b.String()
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
