package signer

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

// benchRecords is the number of records of the benchmark zone (issue 13:
// a 100 000-record zone): names with one A record each, plus the apex.
const benchRecords = 100_000

// benchZone builds an unsigned zone of n records (SOA, NS, A records);
// change alters the address of `change` names after the first (h0, the
// name server) (a 10-record IXFR is 10 changes).
func benchZone(tb testing.TB, n, change int, serial uint32) *authority.Zone {
	tb.Helper()
	rrs := make([]dns.RR, 0, n+2)
	rrs = append(rrs,
		&dns.SOA{Hdr: dns.RR_Header{Name: testZone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
			Ns: "ns1." + testZone, Mbox: "hostmaster." + testZone, Serial: serial, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60},
		&dns.NS{Hdr: dns.RR_Header{Name: testZone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 300}, Ns: "h0." + testZone})
	for i := range n - 2 {
		a := &dns.A{Hdr: dns.RR_Header{Name: fmt.Sprintf("h%d.%s", i, testZone), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}}
		a.A = []byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		if i > 0 && i <= change {
			a.A[0] = 11
		}
		rrs = append(rrs, a)
	}
	z, err := authority.NewZone(testZone, rrs)
	if err != nil {
		tb.Fatal(err)
	}
	return z
}

func benchSigner(tb testing.TB, spec string, clk clock.Clock) *Signer {
	tb.Helper()
	p, err := ParsePolicy(spec)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(p, Options{KeyDir: tb.TempDir(), Clock: clk})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkSignZone100k signs a 100 000-record zone from scratch (NSEC,
// KSK+ZSK, algorithm 13) and reports the heap the signed zone holds.
func BenchmarkSignZone100k(b *testing.B) {
	for _, spec := range []string{"zone=signed.test", "zone=signed.test denial=nsec3"} {
		b.Run(strings.TrimPrefix(spec, "zone=signed.test"), func(b *testing.B) {
			clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
			unsigned := benchZone(b, benchRecords, 0, 1)
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var signed *authority.Zone
			var s *Signer
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s = benchSigner(b, spec, clk)
				if signed = s.Publish(unsigned); signed == nil {
					b.Fatal(s.Err())
				}
			}
			b.StopTimer()
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-held")
			runtime.KeepAlive(signed)
			runtime.KeepAlive(s)
		})
	}
}

// BenchmarkResign10Changes signs the 100 000-record zone again after 10
// of its records changed, as after a 10-record IXFR: the change is found
// (authority.ChangedNames) and the signed zone patched (authority.Resign).
func BenchmarkResign10Changes(b *testing.B) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := benchSigner(b, "zone=signed.test", clk)
	versions := []*authority.Zone{benchZone(b, benchRecords, 0, 1), benchZone(b, benchRecords, 10, 2)}
	if s.Publish(versions[0]) == nil {
		b.Fatal(s.Err())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		clk.Advance(time.Second)
		if s.Publish(versions[(i+1)%2]) == nil {
			b.Fatal(s.Err())
		}
	}
	b.StopTimer()
	if st := s.Status(); st.SignedRRsets > 40 || !st.Incremental {
		b.Fatalf("a 10-record change signed %d RRsets anew (incremental: %v)", st.SignedRRsets, st.Incremental)
	}
}

// BenchmarkAnswerSignedVsUnsigned asks the same 100 000-record zone,
// unsigned and signed, the same questions (with DO=1), in one run.
func BenchmarkAnswerSignedVsUnsigned(b *testing.B) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	unsigned := benchZone(b, benchRecords, 0, 1)
	s := benchSigner(b, "zone=signed.test", clk)
	signed := s.Publish(unsigned)
	if signed == nil {
		b.Fatal(s.Err())
	}
	for _, c := range []struct {
		name string
		zone *authority.Zone
	}{{"unsigned", unsigned}, {"signed", signed}} {
		srv := authority.NewServer(c.zone)
		for _, q := range []struct {
			kind, name string
		}{{"positive", "h4242.signed.test."}, {"nxdomain", "nope4242.signed.test."}} {
			b.Run(c.name+"/"+q.kind, func(b *testing.B) {
				m := new(dns.Msg).SetQuestion(q.name, dns.TypeA)
				m.SetEdns0(1232, true)
				b.ReportAllocs()
				for b.Loop() {
					if r := srv.Answer(m); r.Rcode == dns.RcodeServerFailure {
						b.Fatal(r)
					}
				}
			})
		}
	}
}
