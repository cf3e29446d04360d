package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/transport"
)

// cannedReady answers every query on the fast path with one packed
// response, allocating nothing, and SERVFAILs on the full path, with an
// EDE to EDNS clients.
type cannedReady struct{ answer []byte }

func (c *cannedReady) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	dst = append(dst, c.answer...)
	dst[0], dst[1] = query[0], query[1]
	return dst, true
}

func (c *cannedReady) ServeDNS(_ context.Context, w transport.ResponseWriter, r *transport.Request) {
	m := new(dns.Msg).SetRcode(r.Msg, dns.RcodeServerFailure)
	if r.Msg.IsEdns0() != nil { // as a resolver does: an EDE only to EDNS clients
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSKEYMissing, ExtraText: "no DNSKEY for broken.test."})
	}
	w.WriteMsg(m)
}

func packed(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newCanned(t *testing.T) (*cannedReady, []byte) {
	q := new(dns.Msg).SetQuestion("www.example.", dns.TypeA)
	a := new(dns.Msg).SetReply(q)
	a.Answer = append(a.Answer, &dns.A{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}})
	return &cannedReady{answer: packed(t, a)}, packed(t, q)
}

// TestQueryLogOffCostsNoAllocation: with the log off, the fast path
// through the wrapper allocates nothing (one atomic load more).
func TestQueryLogOffCostsNoAllocation(t *testing.T) {
	canned, query := newCanned(t)
	var out syncBuffer
	_, _, ql, _ := newServeLogger("info", logFormatText, &out)
	h := withQueryLog(canned, newQueryLog(ql, false, 1), nil)
	remote := netip.MustParseAddrPort("192.0.2.7:5353")
	dst := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := h.AnswerReadyFrom(dst[:0], query, 512, remote); !ok {
			t.Fatal("no ready answer")
		}
	})
	if allocs != 0 || out.String() != "" {
		t.Errorf("log off: %v allocations per query, log %q", allocs, out.String())
	}
	h.ql.set(true, 1)
	if _, ok := h.AnswerReadyFrom(dst[:0], query, 512, remote); !ok {
		t.Fatal("no ready answer")
	}
	line := out.String()
	for _, want := range []string{"msg=query client=192.0.2.7:5353 transport=udp name=www.example. type=A rcode=NOERROR", "cache_hit=true upstream=0"} {
		if !strings.Contains(line, want) {
			t.Errorf("fast-path line lacks %q: %s", want, line)
		}
	}
}

// TestQueryLogServfailSaysWhy: a SERVFAIL line carries the EDE and a
// why, in JSON with --log-format json, also for a client without EDNS
// (which gets no OPT back); sampling logs one in N.
func TestQueryLogServfailSaysWhy(t *testing.T) {
	canned, query := newCanned(t)
	var out syncBuffer
	_, _, ql, _ := newServeLogger("error", logFormatJSON, &out) // the query log ignores the level
	h := withQueryLog(canned, newQueryLog(ql, true, 3), nil)
	msg := new(dns.Msg)
	if err := msg.Unpack(query); err != nil {
		t.Fatal(err)
	}
	var sent []*dns.Msg
	for range 6 {
		h.ServeDNS(context.Background(), captureWriter{&sent}, &transport.Request{Msg: msg, Remote: netip.MustParseAddrPort("[2001:db8::1]:53000"), Proto: transport.HTTPS})
	}
	// The client sent no OPT and gets none back, logged or not.
	for _, m := range sent {
		if m.IsEdns0() != nil || m.Rcode != dns.RcodeServerFailure {
			t.Errorf("answer to a query without EDNS: %v", m)
		}
	}
	if len(sent) != 6 || msg.IsEdns0() != nil {
		t.Errorf("%d answers sent; the client's query changed: %v", len(sent), msg)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("one in 3 of 6 queries: %d lines\n%s", len(lines), out.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	want := map[string]any{"msg": "query", "client": "[2001:db8::1]:53000", "transport": "https", "name": "www.example.",
		"type": "A", "rcode": "SERVFAIL", "ede": "9 (DNSKEY Missing): no DNSKEY for broken.test.", "cache_hit": true,
		"why": "9 (DNSKEY Missing): no DNSKEY for broken.test."}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], v, lines[0])
		}
	}
	if _, ok := got["duration"]; !ok {
		t.Errorf("no duration: %s", lines[0])
	}
}

// notifyCanned is a handler that takes NOTIFY.
type notifyCanned struct{ *cannedReady }

func (notifyCanned) TakesNotify() bool { return true }

// TestQueryLogPassesNotify: wrapping keeps whether the handler takes
// NOTIFY, which the front ends ask of the outermost handler.
func TestQueryLogPassesNotify(t *testing.T) {
	canned, _ := newCanned(t)
	if withQueryLog(canned, newQueryLog(nil, false, 1), nil).TakesNotify() {
		t.Error("takes NOTIFY for a handler that does not")
	}
	if !withQueryLog(notifyCanned{canned}, newQueryLog(nil, false, 1), nil).TakesNotify() {
		t.Error("does not pass NOTIFY on")
	}
}

// captureWriter keeps the responses written.
type captureWriter struct{ sent *[]*dns.Msg }

func (w captureWriter) WriteMsg(m *dns.Msg) error { *w.sent = append(*w.sent, m); return nil }
func (w captureWriter) Write(b []byte) error      { return w.WriteMsg(unpackOrNil(b)) }

// BenchmarkReadyPath: the UDP fast path bare, through the query log turned
// off, and on (every query logged, to a discarded writer).
func BenchmarkReadyPath(b *testing.B) {
	t := &testing.T{}
	canned, query := newCanned(t)
	remote := netip.MustParseAddrPort("192.0.2.7:5353")
	dst := make([]byte, 0, 512)
	_, _, ql, _ := newServeLogger("info", logFormatText, discardLog{})
	off, on := withQueryLog(canned, newQueryLog(ql, false, 1), nil), withQueryLog(canned, newQueryLog(ql, true, 1), nil)
	for _, bc := range []struct {
		name string
		run  func()
	}{
		{"bare", func() { canned.AnswerReady(dst[:0], query, 512) }},
		{"querylog-off", func() { off.AnswerReadyFrom(dst[:0], query, 512, remote) }},
		{"querylog-on", func() { on.AnswerReadyFrom(dst[:0], query, 512, remote) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.run()
			}
		})
	}
}

type discardLog struct{}

func (discardLog) Write(p []byte) (int, error) { return len(p), nil }
