package cache

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestCache(t testing.TB, cfg Config) (*Cache, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(epoch)
	cfg.Clock = clk
	return New(cfg), clk
}

func positive(t testing.TB, rank Rank, addr string) *Entry {
	return &Entry{
		Rcode: dns.RcodeSuccess,
		RRs:   []dns.RR{dnstest.MustRR(t, "www.example. 300 IN A "+addr)},
		Rank:  rank,
	}
}

func TestRankReplacement(t *testing.T) {
	tests := []struct {
		name     string
		old, new Rank
		expire   bool // let the old entry expire before the new Put
		wantPut  bool
	}{
		{"higher replaces lower", RankGlue, RankAnswerAuth, false, true},
		{"equal replaces equal", RankAnswerNonAuth, RankAnswerNonAuth, false, true},
		{"glue does not replace authoritative answer", RankAnswerAuth, RankGlue, false, false},
		{"additional does not replace authority", RankAuthorityAuth, RankAdditional, false, false},
		{"nothing replaces local", RankLocal, RankAnswerAuth, false, false},
		{"lower replaces expired higher", RankAnswerAuth, RankGlue, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newTestCache(t, Config{})
			if !c.Put("www.example.", dns.TypeA, dns.ClassINET, positive(t, tc.old, "192.0.2.1"), 300) {
				t.Fatal("first Put refused")
			}
			if tc.expire {
				clk.Advance(301 * time.Second)
			}
			got := c.Put("www.example.", dns.TypeA, dns.ClassINET, positive(t, tc.new, "192.0.2.2"), 300)
			if got != tc.wantPut {
				t.Fatalf("second Put = %v, want %v", got, tc.wantPut)
			}
			e, ok := c.Get("www.example.", dns.TypeA, dns.ClassINET)
			if !ok {
				t.Fatal("Get missed")
			}
			wantAddr, wantRank := "192.0.2.1", tc.old
			if tc.wantPut {
				wantAddr, wantRank = "192.0.2.2", tc.new
			}
			if a := e.RRs[0].(*dns.A).A.String(); a != wantAddr || e.Rank != wantRank {
				t.Fatalf("cached %s rank %v, want %s rank %v", a, e.Rank, wantAddr, wantRank)
			}
		})
	}
}

func TestTTLCountdown(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	e := positive(t, RankAnswerAuth, "192.0.2.1")
	e.Security = security.Secure
	if !c.Put("www.example.", dns.TypeA, dns.ClassINET, e, 100) {
		t.Fatal("Put refused")
	}
	if !e.Stored.Equal(epoch) || !e.Expires.Equal(epoch.Add(100*time.Second)) {
		t.Fatalf("Stored %v Expires %v", e.Stored, e.Expires)
	}
	steps := []struct {
		advance time.Duration
		want    uint32
		live    bool
	}{
		{0, 100, true},
		{500 * time.Millisecond, 100, true}, // rounded up: 99.5 s left
		{500 * time.Millisecond, 99, true},
		{89 * time.Second, 10, true},
		{9*time.Second + 999*time.Millisecond, 1, true},
		{time.Millisecond, 0, false},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		got, ok := c.Get("www.example.", dns.TypeA, dns.ClassINET)
		if ok != st.live {
			t.Fatalf("step %d: Get ok = %v, want %v", i, ok, st.live)
		}
		if r := c.Remaining(e); r != st.want {
			t.Fatalf("step %d: Remaining = %d, want %d", i, r, st.want)
		}
		if ok && (got != e || got.Security != security.Secure) {
			t.Fatalf("step %d: got a different entry", i)
		}
	}
	s := c.Stats()
	if s.Entries != 0 || s.Expired != 1 || s.Misses != 1 || s.Hits != 5 {
		t.Fatalf("stats after expiry = %+v", s)
	}
}

func TestTTLClamps(t *testing.T) {
	cfg := Config{MinTTL: 60 * time.Second, MaxTTL: time.Hour, MaxNegativeTTL: 900 * time.Second, FailureTTL: 10 * time.Second, MaxBogusTTL: 30 * time.Second}
	nodata := func() *Entry {
		return &Entry{Rcode: dns.RcodeSuccess, Rank: RankAnswerAuth, Authority: []dns.RR{dnstest.MustRR(t, "example. 3600 IN SOA ns. host. 1 2 3 4 300")}}
	}
	tests := []struct {
		name    string
		entry   *Entry
		ttl     uint32
		wantTTL time.Duration // 0: Put refuses
	}{
		{"positive within range", positive(t, RankAnswerAuth, "192.0.2.1"), 300, 300 * time.Second},
		{"positive raised to MinTTL", positive(t, RankAnswerAuth, "192.0.2.1"), 5, 60 * time.Second},
		{"positive TTL 0 raised to MinTTL", positive(t, RankAnswerAuth, "192.0.2.1"), 0, 60 * time.Second},
		{"positive lowered to MaxTTL", positive(t, RankAnswerAuth, "192.0.2.1"), 86400, time.Hour},
		{"top bit set counts as 0 (RFC 2181 8)", positive(t, RankAnswerAuth, "192.0.2.1"), 1 << 31, 60 * time.Second},
		{"NODATA within range", nodata(), 300, 300 * time.Second},
		{"NODATA capped", nodata(), 3600, 900 * time.Second},
		{"NODATA TTL 0 not cached", nodata(), 0, 0},
		{"NXDOMAIN capped", &Entry{Rcode: dns.RcodeNameError, Rank: RankAnswerAuth}, 86400, 900 * time.Second},
		{"bogus data capped", &Entry{Rcode: dns.RcodeSuccess, RRs: positive(t, RankAnswerAuth, "192.0.2.1").RRs, Security: security.Bogus}, 3600, 30 * time.Second},
		{"bogus cap wins over MinTTL", &Entry{Rcode: dns.RcodeSuccess, RRs: positive(t, RankAnswerAuth, "192.0.2.1").RRs, Security: security.Bogus}, 5, 30 * time.Second},
		{"bogus NODATA TTL 0 not cached", &Entry{Rcode: dns.RcodeSuccess, Security: security.Bogus}, 0, 0},
		{"bogus NXDOMAIN capped", &Entry{Rcode: dns.RcodeNameError, Security: security.Bogus}, 3600, 30 * time.Second},
		{"failure default", &Entry{Rcode: dns.RcodeServerFailure, EDE: 22}, 0, 10 * time.Second},
		{"failure given TTL", &Entry{Rcode: dns.RcodeServerFailure}, 30, 30 * time.Second},
		{"failure at most 5 min", &Entry{Rcode: dns.RcodeServerFailure}, 3600, 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCache(t, cfg)
			ok := c.Put("x.example.", dns.TypeA, dns.ClassINET, tc.entry, tc.ttl)
			if ok != (tc.wantTTL > 0) {
				t.Fatalf("Put = %v, want %v", ok, tc.wantTTL > 0)
			}
			if !ok {
				if _, hit := c.Get("x.example.", dns.TypeA, dns.ClassINET); hit {
					t.Fatal("refused entry is cached")
				}
				return
			}
			if got := tc.entry.Expires.Sub(tc.entry.Stored); got != tc.wantTTL {
				t.Fatalf("lifetime %v, want %v", got, tc.wantTTL)
			}
		})
	}
}

func TestFailureTTLDefaultsAndBounds(t *testing.T) {
	tests := []struct {
		cfg  time.Duration
		want time.Duration
	}{
		{0, 5 * time.Second},
		{100 * time.Millisecond, time.Second},
		{time.Hour, 5 * time.Minute},
	}
	for _, tc := range tests {
		c, _ := newTestCache(t, Config{FailureTTL: tc.cfg})
		e := &Entry{Rcode: dns.RcodeServerFailure, EDE: dns.ExtendedErrorCodeNoReachableAuthority, EDEText: "all servers timed out"}
		c.Put("fail.example.", dns.TypeA, dns.ClassINET, e, 0)
		if got := e.Expires.Sub(e.Stored); got != tc.want {
			t.Errorf("FailureTTL %v: lifetime %v, want %v", tc.cfg, got, tc.want)
		}
		got, ok := c.Get("fail.example.", dns.TypeA, dns.ClassINET)
		if !ok || !got.Failure() || got.Negative() || got.EDE != dns.ExtendedErrorCodeNoReachableAuthority {
			t.Errorf("failure entry not served back: %+v %v", got, ok)
		}
	}
}

func TestNegativeEntries(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	nx := &Entry{
		Rcode:     dns.RcodeNameError,
		Rank:      RankAnswerAuth,
		Security:  security.Secure,
		Authority: []dns.RR{dnstest.MustRR(t, "example. 3600 IN SOA ns. host. 1 2 3 4 300"), dnstest.MustRR(t, "a.example. 300 IN NSEC c.example. A RRSIG NSEC")},
	}
	if !c.Put("b.example.", dns.TypeA, dns.ClassINET, nx, 300) {
		t.Fatal("Put refused")
	}
	e, ok := c.Get("B.Example.", dns.TypeA, dns.ClassINET)
	if !ok || !e.Negative() || e.Failure() || len(e.Authority) != 2 {
		t.Fatalf("got %+v, %v", e, ok)
	}
	clk.Advance(300 * time.Second)
	if _, ok := c.Get("b.example.", dns.TypeA, dns.ClassINET); ok {
		t.Fatal("negative entry outlived its TTL")
	}
}

func TestCaseInsensitiveKeys(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	c.Put("WwW.ExAmPlE.", dns.TypeA, dns.ClassINET, positive(t, RankAnswerAuth, "192.0.2.1"), 300)
	for _, name := range []string{"www.example.", "WWW.EXAMPLE.", "wWw.eXaMpLe."} {
		if _, ok := c.Get(name, dns.TypeA, dns.ClassINET); !ok {
			t.Errorf("Get(%q) missed", name)
		}
	}
	// Type and class are part of the key.
	if _, ok := c.Get("www.example.", dns.TypeAAAA, dns.ClassINET); ok {
		t.Error("AAAA hit an A entry")
	}
	if _, ok := c.Get("www.example.", dns.TypeA, dns.ClassCHAOS); ok {
		t.Error("CH hit an IN entry")
	}
	c.Delete("WWW.example.", dns.TypeA, dns.ClassINET)
	if _, ok := c.Get("www.example.", dns.TypeA, dns.ClassINET); ok {
		t.Error("Delete left the entry")
	}
}

func TestEvictionAtMaxEntries(t *testing.T) {
	tests := []struct {
		name       string
		maxEntries int
		shards     int
		puts       int
	}{
		{"one shard", 10, 1, 25},
		{"four shards", 16, 4, 100},
		{"more shards than entries", 3, 64, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCache(t, Config{MaxEntries: tc.maxEntries, Shards: tc.shards})
			for i := range tc.puts {
				name := fmt.Sprintf("h%d.example.", i)
				if !c.Put(name, dns.TypeA, dns.ClassINET, positive(t, RankAnswerAuth, "192.0.2.1"), 300) {
					t.Fatalf("Put %s refused", name)
				}
				if n := c.Stats().Entries; n > tc.maxEntries {
					t.Fatalf("after %d puts: %d entries > MaxEntries %d", i+1, n, tc.maxEntries)
				}
			}
			s := c.Stats()
			if s.Evictions != uint64(tc.puts-s.Entries) || s.Entries == 0 {
				t.Fatalf("stats %+v after %d puts: evictions + entries should equal puts", s, tc.puts)
			}
			// With one shard the LRU order is exact: the last ones survive.
			if tc.shards == 1 {
				for i := range tc.puts {
					_, ok := c.Get(fmt.Sprintf("h%d.example.", i), dns.TypeA, dns.ClassINET)
					if want := i >= tc.puts-tc.maxEntries; ok != want {
						t.Errorf("h%d present = %v, want %v", i, ok, want)
					}
				}
			}
		})
	}
}

func TestLRUKeepsRecentlyUsed(t *testing.T) {
	c, _ := newTestCache(t, Config{MaxEntries: 2, Shards: 1})
	c.Put("a.", dns.TypeA, dns.ClassINET, positive(t, RankAnswerAuth, "192.0.2.1"), 300)
	c.Put("b.", dns.TypeA, dns.ClassINET, positive(t, RankAnswerAuth, "192.0.2.1"), 300)
	c.Get("a.", dns.TypeA, dns.ClassINET) // a is now the most recent
	c.Put("c.", dns.TypeA, dns.ClassINET, positive(t, RankAnswerAuth, "192.0.2.1"), 300)
	if _, ok := c.Get("a.", dns.TypeA, dns.ClassINET); !ok {
		t.Error("recently used a. was evicted")
	}
	if _, ok := c.Get("b.", dns.TypeA, dns.ClassINET); ok {
		t.Error("least recently used b. survived")
	}
}

func TestClosestNS(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	putNS := func(zone string, ttl uint32) {
		e := &Entry{Rcode: dns.RcodeSuccess, Rank: RankGlue, RRs: []dns.RR{dnstest.MustRR(t, zone+" 3600 IN NS ns1.nameservers.net.")}}
		if !c.Put(zone, dns.TypeNS, dns.ClassINET, e, ttl) {
			t.Fatalf("Put NS %s refused", zone)
		}
	}
	putNS(".", 3600)
	putNS("example.", 3600)
	putNS("sub.example.", 60)
	// A NODATA entry for NS is not a delegation.
	c.Put("nodata.example.", dns.TypeNS, dns.ClassINET, &Entry{Rcode: dns.RcodeSuccess, Rank: RankAnswerAuth}, 300)

	tests := []struct {
		name, want string
	}{
		{"www.sub.example.", "sub.example."},
		{"WWW.SUB.EXAMPLE.", "sub.example."},
		{"sub.example.", "sub.example."},
		{"a.b.c.example.", "example."},
		{"x.nodata.example.", "example."},
		{"example.", "example."},
		{"www.example.org.", "."},
		{"org.", "."},
		{".", "."},
		{"www.sub.example", "sub.example."}, // not fully qualified
		{`a\.b.example.`, "example."},       // an escaped dot is not a label boundary
	}
	for _, tc := range tests {
		zone, e, ok := c.ClosestNS(tc.name, dns.ClassINET)
		if !ok || zone != tc.want || e.RRs[0].Header().Name != tc.want {
			t.Errorf("ClosestNS(%q) = %q, %v; want %q", tc.name, zone, ok, tc.want)
		}
	}
	clk.Advance(61 * time.Second)
	if zone, _, _ := c.ClosestNS("www.sub.example.", dns.ClassINET); zone != "example." {
		t.Errorf("after sub.example. NS expired: zone %q, want example.", zone)
	}
	if _, _, ok := c.ClosestNS("www.example.", dns.ClassCHAOS); ok {
		t.Error("ClosestNS found an IN delegation for class CH")
	}
	c.Purge()
	if _, _, ok := c.ClosestNS("www.example.", dns.ClassINET); ok {
		t.Error("ClosestNS found a delegation after Purge")
	}
}

func TestWithTTL(t *testing.T) {
	rrs := []dns.RR{dnstest.MustRR(t, "a. 300 IN A 192.0.2.1"), dnstest.MustRR(t, "a. 300 IN A 192.0.2.2")}
	out := WithTTL(rrs, 42)
	for i := range rrs {
		if out[i].Header().Ttl != 42 || rrs[i].Header().Ttl != 300 || out[i] == rrs[i] {
			t.Fatalf("WithTTL changed the original or did not set the TTL")
		}
	}
	if WithTTL(nil, 1) != nil {
		t.Fatal("WithTTL(nil) != nil")
	}
}

func TestShardCount(t *testing.T) {
	tests := []struct{ want, max, procs, got int }{
		{0, 100000, 2, 8},
		{0, 100000, 3, 16},
		{5, 100000, 2, 8},
		{1, 100000, 8, 1},
		{0, 3, 2, 2},
		{0, 1, 2, 1},
	}
	for _, tc := range tests {
		if n := shardCount(tc.want, tc.max, tc.procs); n != tc.got {
			t.Errorf("shardCount(%d, %d, %d) = %d, want %d", tc.want, tc.max, tc.procs, n, tc.got)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := New(Config{MaxEntries: 64})
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				name := fmt.Sprintf("h%d.example.", (i*7+g)%100)
				c.Put(name, dns.TypeA, dns.ClassINET, positive(t, Rank(1+i%6), "192.0.2.1"), 300)
				c.Get(name, dns.TypeA, dns.ClassINET)
				c.ClosestNS(name, dns.ClassINET)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if n := c.Stats().Entries; n > 64 {
		t.Fatalf("%d entries > 64", n)
	}
}

// A DNS clock moved back to before an entry was stored (--clock-file, a
// test) must not count its TTL up: the entry is treated as expired, since
// its TTL and its validation were reckoned at a time that is not now.
func TestClockMovedBack(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	e := positive(t, RankAnswerAuth, "192.0.2.1")
	if !c.Put("www.example.", dns.TypeA, dns.ClassINET, e, 100) {
		t.Fatal("Put refused")
	}
	clk.Set(epoch.Add(-time.Hour))
	if r := c.Remaining(e); r != 0 {
		t.Errorf("Remaining %d after the clock moved back, want 0 (never above the stored 100)", r)
	}
	if _, ok := c.Get("www.example.", dns.TypeA, dns.ClassINET); ok {
		t.Error("Get hit an entry stored in the clock's future")
	}
	// A lower-ranked entry may replace it: it no longer counts as live.
	if !c.Put("www.example.", dns.TypeA, dns.ClassINET, positive(t, RankGlue, "192.0.2.2"), 100) {
		t.Error("Put refused beside an entry from the clock's future")
	}
}

// bigTXT is an entry of n 255-octet TXT strings at name (about n*256 bytes).
func bigTXT(t testing.TB, name string, n int) *Entry {
	var rrs []dns.RR
	for i := range n {
		rrs = append(rrs, dnstest.MustRR(t, fmt.Sprintf(`%s 300 IN TXT "%03d%s"`, name, i, strings.Repeat("x", 252))))
	}
	return &Entry{RRs: rrs, Rank: RankAnswerAuth}
}

// Entries differ in size by three orders of magnitude and a client picks
// which ones get cached: MaxBytes bounds the memory, not just the count.
func TestMaxBytes(t *testing.T) {
	const budget = 64 << 10
	c, _ := newTestCache(t, Config{MaxEntries: 10_000, MaxBytes: budget, Shards: 1})
	for i := range 100 {
		c.Put(fmt.Sprintf("h%d.example.", i), dns.TypeTXT, dns.ClassINET, bigTXT(t, fmt.Sprintf("h%d.example.", i), 16), 300)
		if held := c.shards.shards[0].bytes.Load(); held > budget {
			t.Fatalf("after %d puts the shard holds %d bytes > %d", i+1, held, budget)
		}
	}
	s := c.Stats()
	if s.Entries == 0 || s.Entries >= 20 || s.Evictions != uint64(100-s.Entries) {
		t.Fatalf("stats %+v: want a handful of ~4 KiB entries in 64 KiB, the rest evicted", s)
	}
	if _, ok := c.Get("h99.example.", dns.TypeTXT, dns.ClassINET); !ok {
		t.Error("the most recent entry was evicted")
	}
	if c.Put("huge.example.", dns.TypeTXT, dns.ClassINET, bigTXT(t, "huge.example.", 300), 300) {
		t.Error("an entry larger than the whole budget was stored")
	}

	// Replacing an entry in place returns its bytes: a key rewritten many
	// times does not push the others out.
	c.Put("keep.example.", dns.TypeTXT, dns.ClassINET, bigTXT(t, "keep.example.", 1), 300)
	for range 200 {
		c.Put("same.example.", dns.TypeTXT, dns.ClassINET, bigTXT(t, "same.example.", 16), 300)
	}
	if _, ok := c.Get("keep.example.", dns.TypeTXT, dns.ClassINET); !ok {
		t.Error("rewriting one key evicted another: replaced entries' bytes not returned")
	}
	c.Purge()
	if held := c.shards.shards[0].bytes.Load(); held != 0 {
		t.Errorf("after Purge the shard counts %d bytes", held)
	}
}

// Names fold case in ASCII only (RFC 4343): a name with other octets keeps
// its own entry whatever the ASCII case, and never shares one with a name
// that Unicode would fold it onto.
func TestNonASCIINamesDoNotFold(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	kelvin := "\u212a.Example." // KELVIN SIGN, which strings.ToLower makes "k"
	if !c.Put(kelvin, dns.TypeA, dns.ClassINET, positive(t, RankAnswerAuth, "192.0.2.1"), 300) {
		t.Fatal("Put refused")
	}
	if _, ok := c.Get("k.example.", dns.TypeA, dns.ClassINET); ok {
		t.Error("k.example. got the entry of another name")
	}
	if _, ok := c.Get("\u212a.EXAMPLE.", dns.TypeA, dns.ClassINET); !ok {
		t.Error("the same name in another ASCII case missed")
	}
}
