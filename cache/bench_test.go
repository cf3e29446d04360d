package cache

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

const benchNames = 1024

func benchCache(b *testing.B) (*Cache, []string) {
	c := New(Config{Clock: clock.System{}})
	names := make([]string, benchNames)
	for i := range names {
		names[i] = fmt.Sprintf("host%d.example.com.", i)
		c.Put(names[i], dns.TypeA, dns.ClassINET, positive(b, RankAnswerAuth, "192.0.2.1"), 3600)
	}
	return c, names
}

func BenchmarkGetHit(b *testing.B) {
	c, names := benchCache(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Get(names[i%benchNames], dns.TypeA, dns.ClassINET); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	c, names := benchCache(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := c.Get(names[i%benchNames], dns.TypeA, dns.ClassINET); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func benchAnswers(b *testing.B) (*Answers, [][]byte) {
	a := NewAnswers(Config{Clock: clock.System{}})
	queries := make([][]byte, benchNames)
	for i := range queries {
		name := fmt.Sprintf("host%d.example.com.", i)
		a.Put(AnswerKey{Name: name, Type: dns.TypeA, Class: dns.ClassINET, DO: true}, response(b, name, dns.TypeA, true, true))
		queries[i] = rawQuery(b, fmt.Sprintf("HOST%d.Example.COM.", i), dns.TypeA, uint16(i), true, true, nil)
	}
	return a, queries
}

func BenchmarkAnswersWrite(b *testing.B) {
	a, queries := benchAnswers(b)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var ok bool
		if buf, ok = a.Write(buf[:0], queries[i%benchNames]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkAnswersWriteParallel(b *testing.B) {
	a, queries := benchAnswers(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 4096)
		i := 0
		for pb.Next() {
			var ok bool
			if buf, ok = a.Write(buf[:0], queries[i%benchNames]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

// BenchmarkMemoryPerName stores what the resolver stores for each new name
// (an NXDOMAIN: the RFC 8020 name-wide entry and the ready answer; a name
// with one A record: its RRset and the ready answer), each
// from its own freshly unpacked reply as from the wire, and reports the live
// heap per name and what the byte budget counted. bench/memory.sh measures
// the same through `sextant serve`.
func BenchmarkMemoryPerName(b *testing.B) {
	const names = 100_000
	for _, kind := range []string{"nxdomain", "a"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				heap, counted := memoryPerName(b, kind, names)
				b.ReportMetric(heap, "heapB/name")
				b.ReportMetric(counted, "countedB/name")
			}
		})
	}
}

func memoryPerName(b *testing.B, kind string, names int) (heap, counted float64) {
	c := New(Config{MaxEntries: 4 * names, MaxBytes: 1 << 40})
	a := NewAnswers(Config{MaxEntries: 2 * names, MaxBytes: 1 << 40})
	before := liveHeap()
	for i := range names {
		name := fmt.Sprintf("n%d.neg.", i)
		reply := new(dns.Msg)
		reply.SetQuestion(name, dns.TypeA)
		reply.Response = true
		if kind == "nxdomain" {
			reply.Rcode = dns.RcodeNameError
			reply.Ns = []dns.RR{dnstest.MustRR(b, ". 3600 IN SOA a.root. hostmaster.root. 1 3600 600 604800 3600")}
		} else {
			reply.Answer = []dns.RR{dnstest.MustRR(b, name+" 86400 IN A 192.0.2.1")}
		}
		wire, err := reply.Pack()
		if err != nil {
			b.Fatal(err)
		}
		if err := reply.Unpack(wire); err != nil {
			b.Fatal(err)
		}
		q := reply.Question[0]
		if kind == "nxdomain" {
			auth := []dns.RR{dns.Copy(reply.Ns[0])}
			c.PutNXDomain(q.Name, dns.ClassINET, &Entry{Rcode: dns.RcodeNameError, Authority: auth, Rank: RankAuthorityAuth}, 3600)
		} else {
			c.Put(q.Name, dns.TypeA, dns.ClassINET, &Entry{RRs: reply.Answer, Rank: RankAnswerAuth}, 86400)
		}
		a.Put(AnswerKey{Name: q.Name, Type: q.Qtype, Class: q.Qclass}, reply)
	}
	heap = float64(liveHeap()-before) / float64(names)
	var held int64
	for _, ss := range []interface{ heldBytes() int64 }{&c.shards, &a.shards} {
		held += ss.heldBytes()
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(a)
	return heap, float64(held) / float64(names)
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
