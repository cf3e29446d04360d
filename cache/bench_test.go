package cache

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
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
