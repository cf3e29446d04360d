package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/redis/go-redis/v9"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
)

// fleetFiguresEnv turns TestFleetFigures on and says how many names it
// asks (bench/fleet.sh sets it). It is no timed unit test: it reports
// figures, and fails only when the fleet does not work.
const fleetFiguresEnv = "SEXTANT_FLEET_FIGURES"

// TestFleetFigures measures the shared cache on the lab
// (127.104.10-13.x, its lab on 127.105/16):
//
//   - latency, seen by a client, of an answer from the instance's own cache
//     (L1), from Redis (L2: another instance resolved the name), and of a
//     full resolution, with and without a shared cache to miss first;
//   - upstream queries of three instances asked a repeated random-name
//     workload round-robin, with and without --shared-cache;
//   - Redis memory per shared entry (INFO memory used_memory / DBSIZE).
func TestFleetFigures(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(fleetFiguresEnv))
	if n <= 0 {
		t.Skipf("set %s=N (names) to measure; bench/fleet.sh does", fleetFiguresEnv)
	}
	redisAddr, _ := dnstest.StartRedis(t, "127.104.10.20")
	l := labtest.Start(t, lab.Config{AddrBase: deployLabBase, BulkHosts: n})
	dir := t.TempDir()
	if err := l.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "fleet.key")
	if err := os.WriteFile(keyFile, []byte(fleetKeyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rc.Close()
	base := []string{"--root-hints", filepath.Join(dir, lab.FileRootHints), "--trust-anchor", filepath.Join(dir, lab.FileRootDS),
		"--rate-limit", "0", "--cache-size", strconv.Itoa(16*n + 10000)}
	shared := append(slices.Clone(base), "--shared-cache", "redis://"+redisAddr+"/0", "--shared-cache-key-file", keyFile)
	serve := func(addr string, args []string) string {
		listen := addr + ":53"
		startServe(t, listen, args...)
		return listen
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("h%d.%s", i, lab.Bulk)
	}

	// (c) Redis memory per entry: what (a)'s first instance writes.
	rc.FlushAll(context.Background())
	memBefore := redisUsedMemory(t, rc)

	// (a) Latency. A resolves every name (full resolution, a Redis miss
	// first), B answers them from Redis, then from its own cache; C, with
	// no shared cache, resolves them too.
	a, b, c := serve("127.104.10.1", shared), serve("127.104.10.2", shared), serve("127.104.10.3", base)
	full := timeQueries(t, a, names)
	// The writes are in the background, and dropped when too many are
	// pending: wait until the count stops growing.
	keys := int64(-1)
	for k := rc.DBSize(context.Background()).Val(); k != keys; k = rc.DBSize(context.Background()).Val() {
		keys = k
		time.Sleep(time.Second)
	}
	if keys == 0 {
		t.Fatal("no entry in Redis")
	}
	memAfter := redisUsedMemory(t, rc)
	l2 := timeQueries(t, b, names)
	l1 := timeQueries(t, b, names)
	alone := timeQueries(t, c, names)
	t.Logf("latency over %d names (median / p99):", n)
	t.Logf("  L1 hit (own cache)                     %v", l1)
	t.Logf("  L2 hit (Redis, L1 miss)                %v", l2)
	t.Logf("  full resolution, shared-cache miss     %v", full)
	t.Logf("  full resolution, no shared cache       %v", alone)
	t.Logf("redis: %d keys, used_memory %d -> %d bytes: %d bytes per entry",
		keys, memBefore, memAfter, (memAfter-memBefore)/keys)
	sample := "sextant:v1:" + names[0] + "/1/1"
	t.Logf("redis: %s: value %d bytes, MEMORY USAGE %d bytes", sample,
		rc.StrLen(context.Background(), sample).Val(), rc.MemoryUsage(context.Background(), sample).Val())

	// (b) Upstream queries: 3n questions, names drawn at random from n,
	// round-robin over three fresh instances, with and without the shared
	// cache (Redis emptied first).
	rc.FlushAll(context.Background())
	workload := make([]string, 3*n)
	rnd := rand.New(rand.NewPCG(1, 2))
	distinct := map[string]bool{}
	for i := range workload {
		workload[i] = names[rnd.IntN(n)]
		distinct[workload[i]] = true
	}
	for _, fleet := range []struct {
		what string
		ips  string
		args []string
	}{
		{"with --shared-cache", "127.104.11.%d", shared},
		{"without", "127.104.12.%d", base},
	} {
		var listens []string
		for i := 1; i <= 3; i++ {
			listens = append(listens, serve(fmt.Sprintf(fleet.ips, i), fleet.args))
		}
		before := labQueries(l)
		for i, name := range workload {
			ask(t, listens[i%3], name)
		}
		t.Logf("upstream queries for %d questions (%d distinct names of %d) round-robin over 3 instances, %s: %d",
			len(workload), len(distinct), n, fleet.what, labQueries(l)-before)
	}
}

// latencies is a median and a 99th percentile.
type latencies struct{ median, p99 time.Duration }

func (l latencies) String() string {
	return fmt.Sprintf("%8.3f ms / %8.3f ms", float64(l.median)/1e6, float64(l.p99)/1e6)
}

// timeQueries asks server each name in turn over UDP and returns the
// client-side latencies.
func timeQueries(t *testing.T, server string, names []string) latencies {
	t.Helper()
	took := make([]time.Duration, 0, len(names))
	for _, name := range names {
		start := time.Now()
		ask(t, server, name)
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	return latencies{took[len(took)/2], took[len(took)*99/100]}
}

// ask asks server for name A over UDP and fails unless it is answered.
func ask(t *testing.T, server, name string) {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, dns.TypeA)
	q.SetEdns0(1232, true)
	c := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{}}
	m, _, err := c.Exchange(q, server)
	if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Fatalf("%s from %s: %v %v", name, server, err, m)
	}
}

// redisUsedMemory is INFO memory's used_memory.
func redisUsedMemory(t *testing.T, rc *redis.Client) int64 {
	t.Helper()
	info, err := rc.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no used_memory in INFO memory:\n%s", info)
	return 0
}
