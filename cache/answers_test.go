package cache

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

func newTestAnswers(t testing.TB, cfg Config) (*Answers, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(epoch)
	cfg.Clock = clk
	return NewAnswers(cfg), clk
}

// response builds a resolver-style response to name/qtype with two A
// records (TTL 300 and 120), an NS record (TTL 3600) and, when edns, an OPT.
func response(t testing.TB, name string, qtype uint16, edns, do bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response = true
	m.RecursionAvailable = true
	m.Id = 0xbeef
	m.Answer = []dns.RR{
		dnstest.MustRR(t, name+" 300 IN A 192.0.2.1"),
		dnstest.MustRR(t, name+" 120 IN A 192.0.2.2"),
	}
	m.Ns = []dns.RR{dnstest.MustRR(t, "example. 3600 IN NS ns1.example.")}
	if edns {
		m.SetEdns0(1232, do)
	}
	return m
}

// rawQuery packs a client query; mutate may change the message first.
func rawQuery(t testing.TB, name string, qtype uint16, id uint16, edns, do bool, mutate func(*dns.Msg)) []byte {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.Id = id
	if edns {
		q.SetEdns0(1232, do)
	}
	if mutate != nil {
		mutate(q)
	}
	b, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAnswersRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		edns, do  bool
		rd        bool
		qname     string
		advance   time.Duration
		wantTTLs  []uint32 // answer then authority
		wantRD    bool
		wantEDNS  bool
		wantDOBit bool
	}{
		{"plain, fresh", false, false, true, "WwW.ExAmple.", 0, []uint32{300, 120, 3600}, true, false, false},
		{"EDNS DO, 100 s later", true, true, false, "www.EXAMPLE.", 100 * time.Second, []uint32{200, 20, 3500}, false, true, true},
		{"EDNS no DO, 119.9 s later", true, false, true, "WWW.EXAMPLE.", 119*time.Second + 900*time.Millisecond, []uint32{181, 1, 3481}, true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, clk := newTestAnswers(t, Config{})
			a.Put(AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET, DO: tc.do}, response(t, "www.example.", dns.TypeA, tc.edns, tc.do))
			clk.Advance(tc.advance)
			query := rawQuery(t, tc.qname, dns.TypeA, 0x1234, tc.edns, tc.do, func(m *dns.Msg) { m.RecursionDesired = tc.rd })
			prefix := []byte("prefix")
			out, ok := a.Write(prefix, query)
			if !ok {
				t.Fatal("Write missed")
			}
			if string(out[:6]) != "prefix" {
				t.Fatal("Write did not append to dst")
			}
			var m dns.Msg
			if err := m.Unpack(out[6:]); err != nil {
				t.Fatalf("unpack: %v", err)
			}
			if m.Id != 0x1234 || m.RecursionDesired != tc.wantRD || !m.Response || !m.RecursionAvailable {
				t.Errorf("header: id %#x rd %v qr %v ra %v", m.Id, m.RecursionDesired, m.Response, m.RecursionAvailable)
			}
			if m.Question[0].Name != tc.qname {
				t.Errorf("question %q, want the client's case %q", m.Question[0].Name, tc.qname)
			}
			var ttls []uint32
			for _, rr := range append(m.Answer, m.Ns...) {
				ttls = append(ttls, rr.Header().Ttl)
			}
			if fmt.Sprint(ttls) != fmt.Sprint(tc.wantTTLs) {
				t.Errorf("TTLs %v, want %v", ttls, tc.wantTTLs)
			}
			opt := m.IsEdns0()
			if (opt != nil) != tc.wantEDNS || (opt != nil && opt.Do() != tc.wantDOBit) {
				t.Errorf("OPT %v, want present %v DO %v", opt, tc.wantEDNS, tc.wantDOBit)
			}
			if s := a.Stats(); s.Hits != 1 || s.Entries != 1 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestAnswersExpiry(t *testing.T) {
	a, clk := newTestAnswers(t, Config{})
	a.Put(AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}, response(t, "www.example.", dns.TypeA, false, false))
	q := rawQuery(t, "www.example.", dns.TypeA, 1, false, false, nil)
	clk.Advance(119 * time.Second)
	if _, ok := a.Write(nil, q); !ok {
		t.Fatal("miss before the smallest TTL ran out")
	}
	if s := a.Stats(); s.Bytes <= 0 {
		t.Errorf("one answer held and %d bytes counted", s.Bytes)
	}
	clk.Advance(time.Second)
	if out, ok := a.Write(nil, q); ok || out != nil {
		t.Fatal("hit after the smallest TTL ran out")
	}
	if s := a.Stats(); s.Entries != 0 || s.Expired != 1 || s.Hits != 1 || s.Misses != 1 || s.Bytes != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAnswersMaxTTL(t *testing.T) {
	a, clk := newTestAnswers(t, Config{MaxTTL: 200 * time.Second})
	a.Put(AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}, response(t, "www.example.", dns.TypeA, false, false))
	clk.Advance(10 * time.Second)
	out, ok := a.Write(nil, rawQuery(t, "www.example.", dns.TypeA, 1, false, false, nil))
	if !ok {
		t.Fatal("miss")
	}
	var m dns.Msg
	if err := m.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if m.Answer[0].Header().Ttl != 190 || m.Answer[1].Header().Ttl != 110 || m.Ns[0].Header().Ttl != 190 {
		t.Fatalf("TTLs not clamped to MaxTTL: %v", m)
	}
}

func TestAnswersKeyedByFlags(t *testing.T) {
	a, _ := newTestAnswers(t, Config{})
	a.Put(AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}, response(t, "www.example.", dns.TypeA, true, false))
	tests := []struct {
		name  string
		query []byte
		want  bool
	}{
		{"same question", rawQuery(t, "www.example.", dns.TypeA, 1, true, false, nil), true},
		{"other type", rawQuery(t, "www.example.", dns.TypeAAAA, 1, true, false, nil), false},
		{"other name", rawQuery(t, "ww.example.", dns.TypeA, 1, true, false, nil), false},
		{"other class", rawQuery(t, "www.example.", dns.TypeA, 1, true, false, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), false},
		{"DO set", rawQuery(t, "www.example.", dns.TypeA, 1, true, true, nil), false},
		{"CD set", rawQuery(t, "www.example.", dns.TypeA, 1, true, false, func(m *dns.Msg) { m.CheckingDisabled = true }), false},
		{"AD set", rawQuery(t, "www.example.", dns.TypeA, 1, true, false, func(m *dns.Msg) { m.AuthenticatedData = true }), false},
		{"no EDNS (stored answer has OPT)", rawQuery(t, "www.example.", dns.TypeA, 1, false, false, nil), false},
	}
	for _, tc := range tests {
		if _, ok := a.Write(nil, tc.query); ok != tc.want {
			t.Errorf("%s: hit = %v, want %v", tc.name, ok, tc.want)
		}
	}
}

func TestAnswersPutRejects(t *testing.T) {
	key := AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}
	tests := []struct {
		name   string
		key    AnswerKey
		mutate func(*dns.Msg)
	}{
		{"SERVFAIL", key, func(m *dns.Msg) { m.Rcode = dns.RcodeServerFailure }},
		{"REFUSED", key, func(m *dns.Msg) { m.Rcode = dns.RcodeRefused }},
		{"truncated", key, func(m *dns.Msg) { m.Truncated = true }},
		{"a TTL of 0", key, func(m *dns.Msg) { m.Answer[1].Header().Ttl = 0 }},
		{"TTL with top bit", key, func(m *dns.Msg) { m.Answer[1].Header().Ttl = 1 << 31 }},
		{"no records", key, func(m *dns.Msg) { m.Answer, m.Ns = nil, nil }},
		{"question differs from key", AnswerKey{Name: "other.example.", Type: dns.TypeA, Class: dns.ClassINET}, nil},
		{"type differs from key", AnswerKey{Name: "www.example.", Type: dns.TypeAAAA, Class: dns.ClassINET}, nil},
		{"no question", key, func(m *dns.Msg) { m.Question = nil }},
	}
	for _, tc := range tests {
		a, _ := newTestAnswers(t, Config{})
		m := response(t, "www.example.", dns.TypeA, false, false)
		if tc.mutate != nil {
			tc.mutate(m)
		}
		a.Put(tc.key, m)
		if n := a.Stats().Entries; n != 0 {
			t.Errorf("%s: stored (%d entries)", tc.name, n)
		}
	}
	// NXDOMAIN with an SOA is stored.
	a, _ := newTestAnswers(t, Config{})
	m := response(t, "www.example.", dns.TypeA, false, false)
	m.Rcode = dns.RcodeNameError
	m.Answer = nil
	m.Ns = []dns.RR{dnstest.MustRR(t, "example. 300 IN SOA ns. host. 1 2 3 4 300")}
	a.Put(key, m)
	out, ok := a.Write(nil, rawQuery(t, "www.example.", dns.TypeA, 7, false, false, nil))
	var got dns.Msg
	if !ok || got.Unpack(out) != nil || got.Rcode != dns.RcodeNameError || got.Id != 7 {
		t.Fatalf("NXDOMAIN round trip: ok %v, %v", ok, &got)
	}
}

func TestAnswersSizeLimit(t *testing.T) {
	a, _ := newTestAnswers(t, Config{})
	big := response(t, "www.example.", dns.TypeTXT, false, false)
	big.Answer = nil
	for i := range 8 {
		big.Answer = append(big.Answer, dnstest.MustRR(t, fmt.Sprintf(`www.example. 300 IN TXT "%d%s"`, i, strings.Repeat("x", 100))))
	}
	a.Put(AnswerKey{Name: "www.example.", Type: dns.TypeTXT, Class: dns.ClassINET}, big)
	q := rawQuery(t, "www.example.", dns.TypeTXT, 1, false, false, nil)
	if _, ok := a.Write(nil, q); ok {
		t.Fatal("a response over 512 bytes was written for a query without EDNS")
	}
	if _, ok := a.WriteSized(nil, q, 65535); !ok {
		t.Fatal("WriteSized with a stream limit missed")
	}
}

// TestAnswersRejectsMalformed feeds queries that the fast path must refuse.
func TestAnswersRejectsMalformed(t *testing.T) {
	a, _ := newTestAnswers(t, Config{})
	a.Put(AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}, response(t, "www.example.", dns.TypeA, true, false))
	good := rawQuery(t, "www.example.", dns.TypeA, 1, true, false, nil)
	if _, ok := a.Write(nil, good); !ok {
		t.Fatal("the well-formed query missed")
	}
	edit := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	optAt := len(good) - 11 // the OPT RR without options
	tests := []struct {
		name  string
		query []byte
	}{
		{"empty", nil},
		{"header only", good[:12]},
		{"truncated in qname", good[:16]},
		{"truncated in type", good[:12+13+2]},
		{"truncated in OPT", good[:len(good)-3]},
		{"trailing garbage", edit(func(b []byte) []byte { return append(b, 0) })},
		{"QR set", edit(func(b []byte) []byte { b[2] |= 0x80; return b })},
		{"opcode NOTIFY", edit(func(b []byte) []byte { b[2] |= dns.OpcodeNotify << 3; return b })},
		{"TC set", edit(func(b []byte) []byte { b[2] |= 0x02; return b })},
		{"two questions", edit(func(b []byte) []byte { b[5] = 2; return b })},
		{"no question", edit(func(b []byte) []byte { b[5] = 0; return b })},
		{"answer count", edit(func(b []byte) []byte { b[7] = 1; return b })},
		{"authority count", edit(func(b []byte) []byte { b[9] = 1; return b })},
		{"two additional", edit(func(b []byte) []byte { b[11] = 2; return b })},
		{"compression pointer in qname", edit(func(b []byte) []byte { b[12] = 0xc0; b[13] = 12; return b })},
		{"extended label type", edit(func(b []byte) []byte { b[12] = 0x40 | 3; return b })},
		{"label runs past end", edit(func(b []byte) []byte { b[12] = 63; return b })},
		{"additional is not OPT", edit(func(b []byte) []byte { binary.BigEndian.PutUint16(b[optAt+1:], dns.TypeA); return b })},
		{"OPT owner not root", edit(func(b []byte) []byte { b[optAt] = 1; return b })},
		{"EDNS version 1", edit(func(b []byte) []byte { b[optAt+6] = 1; return b })},
		{"extended rcode in query", edit(func(b []byte) []byte { b[optAt+5] = 1; return b })},
		{"OPT rdlength too long", edit(func(b []byte) []byte { b[optAt+10] = 4; return b })},
		{"OPT option overruns", edit(func(b []byte) []byte {
			b[optAt+10] = 4
			return append(b, 0, 10, 0, 9) // option 10, length 9, no data
		})},
		{"OPT option header cut", edit(func(b []byte) []byte {
			b[optAt+10] = 2
			return append(b, 0, 10)
		})},
	}
	for _, tc := range tests {
		dst := []byte{1, 2, 3}
		out, ok := a.Write(dst, tc.query)
		if ok || len(out) != 3 {
			t.Errorf("%s: accepted (ok %v, len %d)", tc.name, ok, len(out))
		}
	}
	// A well-formed option (a cookie) does not stop a hit.
	withCookie := rawQuery(t, "www.example.", dns.TypeA, 1, true, false, func(m *dns.Msg) {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	})
	if _, ok := a.Write(nil, withCookie); !ok {
		t.Error("a query with a well-formed EDNS option missed")
	}
}

func TestParseQuestionLongestName(t *testing.T) {
	// 255 bytes: three 63-byte labels, one 61-byte label and the root.
	labels := []string{strings.Repeat("a", 63), strings.Repeat("b", 63), strings.Repeat("c", 63), strings.Repeat("D", 61)}
	name := strings.Join(labels, ".") + "."
	q := rawQuery(t, name, dns.TypeA, 1, false, false, nil)
	var lower [maxNameWire]byte
	qs, ok := parseQuestion(q, &lower)
	if !ok || qs.lowerLen != 255 || lower[254] != 0 || lower[253] != 'd' {
		t.Fatalf("255-byte name: ok %v len %d", ok, qs.lowerLen)
	}
	// One more byte in the last label makes 256: hand-build it.
	long := append([]byte(nil), q[:12]...)
	for _, l := range append(labels[:3], strings.Repeat("d", 62)) {
		long = append(long, byte(len(l)))
		long = append(long, l...)
	}
	long = append(long, 0, 0, 1, 0, 1)
	if _, ok := parseQuestion(long, &lower); ok {
		t.Fatal("256-byte name accepted")
	}
}

func TestAnswersEviction(t *testing.T) {
	a, _ := newTestAnswers(t, Config{MaxEntries: 4, Shards: 1})
	for i := range 10 {
		name := fmt.Sprintf("h%d.example.", i)
		a.Put(AnswerKey{Name: name, Type: dns.TypeA, Class: dns.ClassINET}, response(t, name, dns.TypeA, false, false))
	}
	if s := a.Stats(); s.Entries != 4 || s.Evictions != 6 {
		t.Fatalf("stats %+v", s)
	}
	a.Purge()
	if s := a.Stats(); s.Entries != 0 {
		t.Fatalf("after Purge: %+v", s)
	}
}

func FuzzParseQuestion(f *testing.F) {
	f.Add(rawQuery(f, "www.example.", dns.TypeA, 1, false, false, nil))
	f.Add(rawQuery(f, "WwW.Example.", dns.TypeAAAA, 2, true, true, nil))
	f.Add(rawQuery(f, ".", dns.TypeNS, 3, true, false, func(m *dns.Msg) {
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	}))
	f.Add([]byte{})
	f.Add(make([]byte, 17))
	clk := clock.NewManual(epoch)
	a := NewAnswers(Config{Clock: clk, MaxEntries: 16})
	a.Put(AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}, response(f, "www.example.", dns.TypeA, false, false))
	f.Fuzz(func(t *testing.T, q []byte) {
		var lower [maxNameWire]byte
		qs, ok := parseQuestion(q, &lower)
		if ok {
			// Whatever we accept, miekg/dns must parse to the same question.
			// The content of EDNS options is not ours to check (miekg/dns
			// rejects, say, a bad ECS family), so they are cut off first.
			plain := q
			if qs.edns {
				optStart := qs.nameEnd + 4
				plain = append(append([]byte(nil), q[:optStart+9]...), 0, 0)
			}
			var m dns.Msg
			if err := m.Unpack(plain); err != nil {
				t.Fatalf("accepted a query miekg/dns rejects: %v", err)
			}
			if len(m.Question) != 1 || m.Question[0].Qtype != qs.qtype || m.Question[0].Qclass != qs.qclass {
				t.Fatalf("question mismatch: %v vs %+v", m.Question, qs)
			}
			if qs.nameEnd > len(q) || qs.lowerLen > maxNameWire {
				t.Fatalf("bad offsets %+v", qs)
			}
		}
		out, hit := a.Write(nil, q)
		if hit {
			var m dns.Msg
			if err := m.Unpack(out); err != nil || m.Id != binary.BigEndian.Uint16(q) {
				t.Fatalf("hit produced a bad response: %v", err)
			}
		}
	})
}

func TestAnswersConcurrentUse(t *testing.T) {
	a := NewAnswers(Config{MaxEntries: 32})
	names := make([]string, 64)
	queries := make([][]byte, len(names))
	for i := range names {
		names[i] = fmt.Sprintf("h%d.example.", i)
		queries[i] = rawQuery(t, strings.ToUpper(names[i]), dns.TypeA, uint16(i), false, false, nil)
	}
	resps := make([]*dns.Msg, len(names))
	for i := range names {
		resps[i] = response(t, names[i], dns.TypeA, false, false)
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			var buf []byte
			for i := range 2000 {
				n := (i*5 + g) % len(names)
				if i%3 == 0 {
					a.Put(AnswerKey{Name: names[n], Type: dns.TypeA, Class: dns.ClassINET}, resps[n])
				}
				out, ok := a.Write(buf[:0], queries[n])
				if ok {
					var m dns.Msg
					if err := m.Unpack(out); err != nil || m.Id != uint16(n) || m.Question[0].Name != strings.ToUpper(names[n]) {
						t.Errorf("bad concurrent answer: %v", err)
						return
					}
				}
				buf = out
			}
		}()
	}
	for range 4 {
		<-done
	}
	if s := a.Stats(); s.Entries > 32 || s.Hits == 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Moving the DNS clock back to before Put must not raise the TTLs written
// (elapsed time negative); the answer is dropped instead.
func TestAnswersClockMovedBack(t *testing.T) {
	a, clk := newTestAnswers(t, Config{})
	a.Put(AnswerKey{Name: "www.example.", Type: dns.TypeA, Class: dns.ClassINET}, response(t, "www.example.", dns.TypeA, false, false))
	clk.Set(epoch.Add(-50 * time.Second))
	out, ok := a.Write(nil, rawQuery(t, "www.example.", dns.TypeA, 1, false, false, nil))
	if ok {
		var m dns.Msg
		if err := m.Unpack(out); err != nil {
			t.Fatal(err)
		}
		t.Fatalf("answered from the clock's future: %v", m.Answer)
	}
}

func TestAnswersMaxBytes(t *testing.T) {
	const budget = 32 << 10
	a, _ := newTestAnswers(t, Config{MaxEntries: 10_000, MaxBytes: budget, Shards: 1})
	for i := range 50 {
		name := fmt.Sprintf("h%d.example.", i)
		resp := response(t, name, dns.TypeTXT, false, false)
		resp.Answer = nil
		for j := range 16 {
			resp.Answer = append(resp.Answer, dnstest.MustRR(t, fmt.Sprintf(`%s 300 IN TXT "%03d%s"`, name, j, strings.Repeat("x", 252))))
		}
		a.Put(AnswerKey{Name: name, Type: dns.TypeTXT, Class: dns.ClassINET}, resp)
		if held := a.shards.shards[0].bytes.Load(); held > budget {
			t.Fatalf("after %d puts the shard holds %d bytes > %d", i+1, held, budget)
		}
	}
	if s := a.Stats(); s.Entries == 0 || s.Entries >= 10 || s.Evictions != uint64(50-s.Entries) {
		t.Fatalf("stats %+v: want a few ~4 KiB answers in 32 KiB", s)
	}
	if _, ok := a.WriteSized(nil, rawQuery(t, "h49.example.", dns.TypeTXT, 1, false, false, nil), 65535); !ok {
		t.Error("the most recent answer was evicted")
	}
}

// TestAnswersNonASCIINamesDoNotShare: names that differ only in octets
// >= 0x80 (here UTF-8 A grave and a grave, and two invalid octets) are
// different names (RFC 4343 compares ASCII letters only): each keeps its
// own answer, and a query for one never gets the other's.
func TestAnswersNonASCIINamesDoNotShare(t *testing.T) {
	pairs := [][2]string{
		{`\195\128.example.`, `\195\160.example.`},
		{`a\200b.example.`, `a\232b.example.`},
		{`x\128.example.`, `x\255.example.`},
	}
	for _, p := range pairs {
		a, _ := newTestAnswers(t, Config{})
		a.Put(AnswerKey{Name: p[0], Type: dns.TypeA, Class: dns.ClassINET}, response(t, p[0], dns.TypeA, false, false))
		if _, ok := a.Write(nil, rawQuery(t, p[1], dns.TypeA, 1, false, false, nil)); ok {
			t.Errorf("query for %s was answered from %s's entry", p[1], p[0])
		}
		out, ok := a.Write(nil, rawQuery(t, p[0], dns.TypeA, 2, false, false, nil))
		if !ok {
			t.Fatalf("query for %s missed its own entry", p[0])
		}
		m := new(dns.Msg)
		if err := m.Unpack(out); err != nil || m.Question[0].Name != p[0] {
			t.Fatalf("answer for %s: %v %v", p[0], m.Question, err)
		}
	}
}
