package resolver

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/transport"
)

// recorder is a transport.ResponseWriter that keeps what was written.
type recorder struct {
	msg *dns.Msg
	raw []byte
}

func (w *recorder) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }
func (w *recorder) Write(b []byte) error {
	w.raw = append([]byte(nil), b...)
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return err
	}
	w.msg = m
	return nil
}

func serve(t *testing.T, h transport.Handler, q *dns.Msg) *recorder {
	t.Helper()
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req := &transport.Request{Msg: q, Raw: raw, Remote: netip.MustParseAddrPort("127.0.0.1:5000"),
		Local: netip.MustParseAddrPort("127.0.0.1:53"), Proto: transport.UDP, MaxSize: 1232}
	w := &recorder{}
	h.ServeDNS(context.Background(), w, req)
	if w.msg == nil {
		t.Fatal("no response written")
	}
	return w
}

func query(name string, qtype uint16, edns bool) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	if edns {
		q.SetEdns0(4096, false)
	}
	return q
}

// fakeLocal is a local zone backend serving one name.
type fakeLocal struct{ zone string }

func (f fakeLocal) Covers(name string) bool { return isSubdomain(canonical(name), f.zone) }
func (f fakeLocal) Answer(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"local"}}}
	return m
}

func TestHandler(t *testing.T) {
	hier := basicHierarchy(t, 60)
	r := newTestResolver(t, hier.hints, nil)
	h := NewHandler(r, fakeLocal{zone: "corp.internal."})

	// Resolution: RA set, RD echoed, question as asked, OPT when asked.
	w := serve(t, h, query("WwW.Example.TEST.", dns.TypeA, true))
	m := w.msg
	if !m.RecursionAvailable || !m.RecursionDesired || m.Question[0].Name != "WwW.Example.TEST." || m.IsEdns0() == nil || m.IsEdns0().UDPSize() != ednsUDPSize {
		t.Fatalf("response header/question/OPT wrong:\n%v", m)
	}
	if len(m.Answer) != 1 {
		t.Fatalf("answer %v", m.Answer)
	}
	n := hier.zone.count()
	// The same question again: the ready-to-send cache answers from the
	// raw query, with the new ID and case.
	q2 := query("www.EXAMPLE.test.", dns.TypeA, true)
	w = serve(t, h, q2)
	if w.raw == nil {
		t.Fatal("second response did not come from the answer cache")
	}
	if w.msg.Id != q2.Id || w.msg.Question[0].Name != "www.EXAMPLE.test." || hier.zone.count() != n {
		t.Fatalf("cached response wrong: %v", w.msg)
	}
	// Without EDNS: no OPT.
	if w = serve(t, h, query("www.example.test.", dns.TypeA, false)); w.msg.IsEdns0() != nil {
		t.Fatal("OPT in the response to a query without EDNS")
	}
	// Local zones answer first, without the network.
	before := hier.root.count()
	w = serve(t, h, query("host.corp.internal.", dns.TypeTXT, false))
	if len(w.msg.Answer) != 1 || !w.msg.RecursionAvailable || hier.root.count() != before {
		t.Fatalf("local answer wrong: %v", w.msg)
	}
	// SERVFAIL carries an EDE.
	hier.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
			m := new(dns.Msg)
			m.SetRcode(q, dns.RcodeRefused)
			_ = w.WriteMsg(m)
			return true
		}
	})
	w = serve(t, h, query("other.example.test.", dns.TypeA, true))
	if w.msg.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[w.msg.Rcode])
	}
	var ede *dns.EDNS0_EDE
	for _, o := range w.msg.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			ede = e
		}
	}
	if ede == nil || ede.InfoCode != dns.ExtendedErrorCodeNoReachableAuthority || ede.ExtraText == "" {
		t.Fatalf("EDE %v, want 22 with text", ede)
	}
}

func TestNoRecursionDesiredAnswersFromCacheOnly(t *testing.T) {
	hier := basicHierarchy(t, 63)
	r := newTestResolver(t, hier.hints, nil)
	q := query("www.example.test.", dns.TypeA, true)
	q.RecursionDesired = false
	m, res := r.Exchange(ctxT(t), q)
	if m.Rcode != dns.RcodeRefused || res.ExtendedError() == nil || res.ExtendedError().EDE != dns.ExtendedErrorCodeNotAuthoritative || hier.root.count() != 0 {
		t.Fatalf("RD=0 miss: rcode %s err %v, root queries %d", dns.RcodeToString[m.Rcode], res.ExtendedError(), hier.root.count())
	}
	if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	n := hier.zone.count()
	m, _ = r.Exchange(ctxT(t), q)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.RecursionDesired || hier.zone.count() != n {
		t.Fatalf("RD=0 hit: %v", m)
	}
}
