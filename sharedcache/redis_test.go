package sharedcache

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/redis/go-redis/v9"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

// Loopback block of this package's tests: 127.100.0.0/16 (ARCHITECTURE.md).
const redisIP = "127.100.0.1"

func newTestCache(t *testing.T, addr string, clk clock.Clock) *Cache {
	t.Helper()
	c, err := New(Config{URL: "redis://" + addr + "/0", Key: testKey, Clock: clk, LookupTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitWrites waits until c has written n entries.
func waitWrites(t *testing.T, c *Cache, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Writes < n {
		if time.Now().After(deadline) {
			t.Fatalf("writes %+v, want %d", c.Stats(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRedisShareAndRefuseForgeries(t *testing.T) {
	addr, _ := dnstest.StartRedis(t, redisIP)
	a := testAnswer(t)
	clk := clock.NewManual(a.Stored)
	writer, reader := newTestCache(t, addr, clk), newTestCache(t, addr, clk)
	q := dns.Question{Name: "www.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	ctx := context.Background()

	if _, ok := reader.Get(ctx, q); ok {
		t.Fatal("hit in an empty Redis")
	}
	writer.Put(q, a)
	waitWrites(t, writer, 1)
	got, ok := reader.Get(ctx, q)
	if !ok || got.Security != a.Security || len(got.Answer) != 2 {
		t.Fatalf("another instance read %+v, %v", got, ok)
	}
	// The Redis TTL is what is left of the DNS TTL.
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	if ttl := rc.TTL(ctx, redisKey(q)).Val(); ttl <= 290*time.Second || ttl > 300*time.Second {
		t.Fatalf("Redis TTL %v, want the answer's 300 s", ttl)
	}
	// An entry written straight into Redis, without the fleet key, is
	// refused: a miss, counted.
	forged := dns.Question{Name: "bank.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	buf, _ := encode([]byte("an attacker's key, long enough!!"), redisKey(forged), a)
	rc.Set(ctx, redisKey(forged), buf, time.Minute)
	if got, ok := reader.Get(ctx, forged); ok {
		t.Fatalf("forged entry taken: %+v", got)
	}
	if s := reader.Stats(); s.Forged != 1 || s.Hits != 1 || s.Misses != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRedisDownFailsOpen: with Redis gone, lookups are quick misses, and
// after a few failures the breaker stops sending them.
func TestRedisDownFailsOpen(t *testing.T) {
	addr, stop := dnstest.StartRedis(t, redisIP)
	c := newTestCache(t, addr, nil)
	q := dns.Question{Name: "www.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	if _, ok := c.Get(context.Background(), q); ok {
		t.Fatal("hit in an empty Redis")
	}
	stop()
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, ok := c.Get(context.Background(), q); ok {
			t.Fatal("hit with Redis down")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("lookup %d took %v with Redis down", i, d)
		}
	}
	s := c.Stats()
	if !s.BreakerOpen || s.BreakerOpened != 1 || s.Errors != breakerFailures || s.Skipped != 20-breakerFailures {
		t.Fatalf("stats %+v: want the breaker open after %d errors and the rest skipped", s, breakerFailures)
	}
}
