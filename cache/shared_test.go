package cache

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

const (
	testSOA    = "example. 300 IN SOA ns.example. host.example. 1 3600 600 86400 300"
	testSOASig = "example. 300 IN RRSIG SOA 13 1 300 20300201000000 20300101000000 12345 example. AAAA"
	testNSEC   = "a.example. 300 IN NSEC c.example. A RRSIG NSEC"
)

// negative is an NXDOMAIN (or NODATA with rcode 0) entry with a fresh copy
// of the given authority records, as each reply brings its own.
func negative(t *testing.T, rcode int, auth ...string) *Entry {
	e := &Entry{Rcode: rcode, Rank: RankAuthorityAuth}
	for _, s := range auth {
		e.Authority = append(e.Authority, dnstest.MustRR(t, s))
	}
	return e
}

func TestNegativeEntriesShareTheZoneSOA(t *testing.T) {
	otherSerial := "example. 300 IN SOA ns.example. host.example. 2 3600 600 86400 300"
	otherTTL := "example. 200 IN SOA ns.example. host.example. 1 3600 600 86400 300"
	tests := []struct {
		name       string
		first      []string
		second     []string
		sharedAt   []int // indexes of second's authority shared with first's
		sameSlice  bool  // the whole authority slice is shared
		secondTTL  uint32
		firstRcode int
	}{
		{"unsigned: one SOA", []string{testSOA}, []string{testSOA}, []int{0}, true, 300, dns.RcodeNameError},
		{"unsigned NODATA", []string{testSOA}, []string{testSOA}, []int{0}, true, 300, dns.RcodeSuccess},
		{"signed: SOA and RRSIG shared, NSEC not", []string{testSOA, testSOASig, testNSEC}, []string{testSOA, testSOASig, testNSEC}, []int{0, 1}, false, 300, dns.RcodeNameError},
		{"new serial: not shared", []string{testSOA}, []string{otherSerial}, nil, false, 300, dns.RcodeNameError},
		{"other TTL: not shared", []string{testSOA}, []string{otherTTL}, nil, false, 200, dns.RcodeNameError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTestCache(t, Config{})
			c.Put("a.example.", dns.TypeA, dns.ClassINET, negative(t, tc.firstRcode, tc.first...), 300)
			second := negative(t, tc.firstRcode, tc.second...)
			orig := second.Authority
			given := append([]dns.RR(nil), orig...)
			c.Put("b.example.", dns.TypeAAAA, dns.ClassINET, second, tc.secondTTL)
			for i, rr := range given {
				if orig[i] != rr {
					t.Fatal("the given authority slice was modified: readers may hold it")
				}
			}
			a, _ := c.Get("a.example.", dns.TypeA, dns.ClassINET)
			b, ok := c.Get("b.example.", dns.TypeAAAA, dns.ClassINET)
			if !ok || len(b.Authority) != len(tc.second) {
				t.Fatalf("second entry: %+v, %v", b, ok)
			}
			shared := map[int]bool{}
			for _, i := range tc.sharedAt {
				shared[i] = true
			}
			for i, rr := range b.Authority {
				if got := rr == a.Authority[i]; got != shared[i] {
					t.Errorf("record %d (%v) shared = %v, want %v", i, rr, got, shared[i])
				}
				if !dns.IsDuplicate(rr, given[i]) || rr.Header().Ttl != given[i].Header().Ttl {
					t.Errorf("record %d is %v, want %v", i, rr, given[i])
				}
			}
			if got := &b.Authority[0] == &a.Authority[0]; got != tc.sameSlice {
				t.Errorf("authority slice shared = %v, want %v", got, tc.sameSlice)
			}
		})
	}
}

// TestMeasureFollowsSharing checks that shared records cost only their slot
// in the byte budget, and a record of the entry's own its full size.
func TestMeasureFollowsSharing(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	first := negative(t, dns.RcodeNameError, testSOA)
	c.Put("a.example.", dns.TypeA, dns.ClassINET, first, 300)
	second := negative(t, dns.RcodeNameError, testSOA)
	c.Put("b.example.", dns.TypeA, dns.ClassINET, second, 300)
	if want := entryOverhead + len("a.example.") + rrOverhead + dns.Len(first.Authority[0]); int(first.size) != want {
		t.Errorf("first entry measured %d bytes, want %d", first.size, want)
	}
	if want := entryOverhead + len("b.example.") + sharedRROverhead; int(second.size) != want {
		t.Errorf("second entry measured %d bytes, want %d", second.size, want)
	}
}

func TestSplitStaysWithinTheBound(t *testing.T) {
	tests := []struct {
		name                  string
		in                    Config
		rrEntries, ansEntries int
		rrBytes, ansBytes     int
	}{
		{"defaults", Config{}, DefaultMaxEntries - DefaultMaxEntries*3/8, DefaultMaxEntries * 3 / 8, DefaultMaxBytes - DefaultMaxBytes*3/8, DefaultMaxBytes * 3 / 8},
		{"given", Config{MaxEntries: 8_000_000, MaxBytes: 800 << 20}, 5_000_000, 3_000_000, 500 << 20, 300 << 20},
		{"tiny", Config{MaxEntries: 2, MaxBytes: 2}, 1, 1, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr, ans := tc.in.Split()
			if rr.MaxEntries != tc.rrEntries || ans.MaxEntries != tc.ansEntries || rr.MaxBytes != tc.rrBytes || ans.MaxBytes != tc.ansBytes {
				t.Fatalf("Split: RRsets %d entries %d bytes, answers %d entries %d bytes; want %d %d, %d %d",
					rr.MaxEntries, rr.MaxBytes, ans.MaxEntries, ans.MaxBytes, tc.rrEntries, tc.rrBytes, tc.ansEntries, tc.ansBytes)
			}
		})
	}
}

// TestHashCollisionIsAMiss plants an entry under the LRU key of another
// name, as a hash collision would, and checks that no lookup of that other
// name returns it and that a Put for it takes the slot over.
func TestHashCollisionIsAMiss(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	planted := positive(t, RankAnswerAuth, "192.0.2.66")
	if !c.Put("www.example.", dns.TypeA, dns.ClassINET, planted, 300) {
		t.Fatal("Put refused")
	}
	victim := key{name: "victim.example.", qtype: dns.TypeA, qclass: dns.ClassINET}
	h := c.hash(victim)
	c.shards.at(h).lru.Add(h, slot{e: planted, qtype: dns.TypeA, qclass: dns.ClassINET})
	if e, ok := c.Get("victim.example.", dns.TypeA, dns.ClassINET); ok {
		t.Fatalf("Get returned another name's entry: %v", e.RRs)
	}
	if c.peek(victim) {
		t.Fatal("peek saw another name's entry")
	}
	c.Delete("victim.example.", dns.TypeA, dns.ClassINET)
	if _, ok := c.shards.at(h).lru.Peek(h); !ok {
		t.Fatal("Delete removed another name's entry")
	}
	own := &Entry{RRs: []dns.RR{dnstest.MustRR(t, "victim.example. 300 IN A 192.0.2.7")}, Rank: RankAdditional}
	if !c.Put("victim.example.", dns.TypeA, dns.ClassINET, own, 300) {
		t.Fatal("Put refused: the colliding entry is not this key's and may not block it")
	}
	if e, ok := c.Get("victim.example.", dns.TypeA, dns.ClassINET); !ok || e != own {
		t.Fatalf("Get after Put: %v, %v", e, ok)
	}
}
