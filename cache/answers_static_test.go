package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// answerTTLs unpacks a written response and lists its record TTLs.
func answerTTLs(t *testing.T, wire []byte) []uint32 {
	t.Helper()
	var m dns.Msg
	if err := m.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	var ttls []uint32
	for _, rr := range append(m.Answer, m.Ns...) {
		ttls = append(ttls, rr.Header().Ttl)
	}
	return ttls
}

// TestAnswersStatic: an authoritative answer keeps its TTLs however long it
// is kept, and is served until the local data changes, not after.
func TestAnswersStatic(t *testing.T) {
	a, clk := newTestAnswers(t, Config{})
	k := AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}
	query := rawQuery(t, "www.example.", dns.TypeA, 1, true, false, nil)
	resp := response(t, "www.example.", dns.TypeA, true, false)
	resp.Answer = append(resp.Answer, dnstest.MustRR(t, "www.example. 0 IN A 192.0.2.3")) // TTL 0 is fine: nothing counts down

	a.PutStatic(k, resp, a.StaticGeneration())
	clk.Advance(2 * time.Hour) // beyond every TTL in it
	out, ok := a.Write(nil, query)
	if !ok {
		t.Fatal("static answer missed")
	}
	if got := fmt.Sprint(answerTTLs(t, out)); got != "[300 120 0 3600]" {
		t.Fatalf("TTLs %s, want them as stored", got)
	}

	a.InvalidateStatic()
	if _, ok := a.Write(nil, query); ok {
		t.Fatal("answer served after the local data changed")
	}

	// An answer made from data read before a change is never served.
	gen := a.StaticGeneration()
	a.InvalidateStatic()
	a.PutStatic(k, resp, gen)
	if _, ok := a.Write(nil, query); ok {
		t.Fatal("answer made before the change served after it")
	}
	a.PutStatic(k, resp, a.StaticGeneration())
	if _, ok := a.Write(nil, query); !ok {
		t.Fatal("answer of the current generation missed")
	}
}

// TestAnswersNearExpiryLetsOneThrough: in an answer's last tenth of life one
// query misses, so that the resolver sees the question and prefetches; the
// others are still answered.
func TestAnswersNearExpiryLetsOneThrough(t *testing.T) {
	a, clk := newTestAnswers(t, Config{Prefetch: true})
	k := AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}
	a.Put(k, response(t, "www.example.", dns.TypeA, true, false)) // life 120 s
	query := rawQuery(t, "www.example.", dns.TypeA, 1, true, false, nil)
	clk.Advance(100 * time.Second)
	if _, ok := a.Write(nil, query); !ok {
		t.Fatal("missed with 20 s of 120 left")
	}
	clk.Advance(9 * time.Second) // 11 s left: the last tenth
	var hits int
	for i := 0; i < 5; i++ {
		if _, ok := a.Write(nil, query); ok {
			hits++
		}
	}
	if hits != 4 {
		t.Fatalf("%d of 5 answered in the last tenth, want all but one", hits)
	}
}
