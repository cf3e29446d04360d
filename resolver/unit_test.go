package resolver

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func TestSelectorOrderAndBackoff(t *testing.T) {
	l := DefaultLimits()
	s := newSelector(&l)
	s.probe = 0
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	s.success(a, 30*time.Millisecond)
	s.success(b, 10*time.Millisecond)
	s.success(c, 20*time.Millisecond)
	order := func() []netip.Addr {
		var out []netip.Addr
		for _, r := range s.order("example.", []netip.Addr{a, b, c}) {
			out = append(out, r.addr)
		}
		return out
	}
	if got := order(); got[0] != b || got[1] != c || got[2] != a {
		t.Fatalf("order %v, want b c a", got)
	}
	// EWMA: a slow sample moves b's SRTT up, but not all the way.
	s.success(b, 50*time.Millisecond)
	if srtt, _ := s.srtt(b); srtt != 22*time.Millisecond {
		t.Fatalf("SRTT after 10ms then 50ms = %v, want 22ms (alpha 0.3)", srtt)
	}
	// A timeout puts b behind everyone and backs it off for 1 s, then 2 s.
	s.failure(b)
	if got := order(); got[2] != b {
		t.Fatalf("after a timeout the order is %v, want b last", got)
	}
	if srtt, _ := s.srtt(b); srtt < timeoutPenalty {
		t.Fatalf("SRTT after a timeout %v, want the penalty", srtt)
	}
	now = now.Add(1100 * time.Millisecond)
	s.failure(b)
	s.mu.Lock()
	st, _ := s.servers.Peek(b)
	backoff := st.backoffUntil.Sub(now)
	s.mu.Unlock()
	if backoff != 2*time.Second {
		t.Fatalf("second back-off %v, want 2s", backoff)
	}
	// Recovery: one answer clears the penalty.
	s.success(b, 5*time.Millisecond)
	if got := order(); got[0] != b {
		t.Fatalf("after recovery the order is %v, want b first", got)
	}
	// Timeouts adapt to SRTT within bounds; unknown servers get the initial.
	if got := s.timeout(b); got != l.UpstreamTimeoutMin {
		t.Fatalf("timeout for a 5ms server %v, want the minimum", got)
	}
	if got := s.timeout(netip.MustParseAddr("192.0.2.99")); got != l.UpstreamTimeoutInitial {
		t.Fatalf("timeout for an unknown server %v", got)
	}
	slow := netip.MustParseAddr("192.0.2.4")
	s.success(slow, 900*time.Millisecond)
	if got := s.timeout(slow); got != l.UpstreamTimeoutMax {
		t.Fatalf("timeout for a slow server %v, want the maximum", got)
	}
}

func TestSelectorProbes(t *testing.T) {
	l := DefaultLimits()
	s := newSelector(&l)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	s.success(a, time.Millisecond)
	s.success(b, 100*time.Millisecond)
	probes := 0
	for i := 0; i < 2000; i++ {
		if s.order("example.", []netip.Addr{a, b})[0].addr == b {
			probes++
		}
	}
	// 3% of 2000 = 60; allow a wide margin.
	if probes < 20 || probes > 150 {
		t.Fatalf("%d probes of the slower server in 2000 choices", probes)
	}
}

func TestMatchReply(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("wWw.ExAmple.TEST.", dns.TypeA)
	q.Id = 1234
	reply := func(f func(m *dns.Msg)) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		f(m)
		return m
	}
	for _, tc := range []struct {
		name      string
		r         *dns.Msg
		exactCase bool
		want      replyMatch
	}{
		{"exact", reply(func(*dns.Msg) {}), true, replyMatches},
		{"not a response", reply(func(m *dns.Msg) { m.Response = false }), true, replyMismatch},
		{"wrong id", reply(func(m *dns.Msg) { m.Id++ }), true, replyMismatch},
		{"wrong type", reply(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeAAAA }), true, replyMismatch},
		{"wrong name", reply(func(m *dns.Msg) { m.Question[0].Name = "evil.test." }), true, replyMismatch},
		{"case lost", reply(func(m *dns.Msg) { m.Question[0].Name = "www.example.test." }), true, replyCaseMismatch},
		{"case lost, not checked", reply(func(m *dns.Msg) { m.Question[0].Name = "www.example.test." }), false, replyMatches},
		{"two questions", reply(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), true, replyMismatch},
		{"FORMERR without question", reply(func(m *dns.Msg) { m.Question = nil; m.Rcode = dns.RcodeFormatError }), true, replyMatches},
		{"NOERROR without question", reply(func(m *dns.Msg) { m.Question = nil }), true, replyMismatch},
	} {
		if got := matchReply(q, tc.r, tc.exactCase); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRandomCase(t *testing.T) {
	name := "abcdefghijklmnopqrstuvwxyz.example-1.test."
	seen := map[string]bool{}
	for i := 0; i < 8; i++ {
		r := randomCase(name)
		if !strings.EqualFold(r, name) || len(r) != len(name) {
			t.Fatalf("randomCase changed the name: %q", r)
		}
		seen[r] = true
	}
	if len(seen) < 2 {
		t.Fatal("randomCase gave the same pattern every time")
	}
	if got := randomCase("1.2.3-4."); got != "1.2.3-4." {
		t.Fatalf("non-letters changed: %q", got)
	}
}

func TestRandomIDsAndPorts(t *testing.T) {
	ids, ports := map[uint16]bool{}, map[int]bool{}
	for i := 0; i < 100; i++ {
		ids[randUint16()] = true
		p := randSourcePort()
		if p < minSourcePort || p > maxSourcePort {
			t.Fatalf("port %d out of range", p)
		}
		ports[p] = true
	}
	if len(ids) < 90 || len(ports) < 90 {
		t.Fatalf("%d distinct IDs and %d ports in 100 draws", len(ids), len(ports))
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		child, parent string
		sub, strict   bool
	}{
		{"a.example.", "example.", true, true},
		{"example.", "example.", true, false},
		{"example.", ".", true, true},
		{".", ".", true, false},
		{"badexample.", "example.", false, false},
		{"example.", "a.example.", false, false},
	} {
		if got := isSubdomain(tc.child, tc.parent); got != tc.sub {
			t.Errorf("isSubdomain(%s, %s) = %v", tc.child, tc.parent, got)
		}
		if got := strictSubdomain(tc.child, tc.parent); got != tc.strict {
			t.Errorf("strictSubdomain(%s, %s) = %v", tc.child, tc.parent, got)
		}
	}
	if got := parentName("a.b.c."); got != "b.c." {
		t.Errorf("parentName = %q", got)
	}
	if got := parentName("c."); got != "." {
		t.Errorf("parentName(c.) = %q", got)
	}
	if got := ancestorWithLabels("a.b.c.", 2); got != "b.c." {
		t.Errorf("ancestorWithLabels = %q", got)
	}
}

func msgWith(t *testing.T, rcode int, aa bool, answer, ns []string) *dns.Msg {
	m := new(dns.Msg)
	m.Rcode = rcode
	m.Authoritative = aa
	for _, s := range answer {
		m.Answer = append(m.Answer, dnstest.MustRR(t, s))
	}
	for _, s := range ns {
		m.Ns = append(m.Ns, dnstest.MustRR(t, s))
	}
	return m
}

func TestClassify(t *testing.T) {
	soa := "example.test. 60 SOA ns. h. 1 2 3 4 60"
	for _, tc := range []struct {
		name  string
		m     *dns.Msg
		zone  string
		qname string
		qtype uint16
		want  replyKind
		child string
	}{
		{"answer", msgWith(t, 0, true, []string{"www.example.test. 60 A 192.0.2.1"}, nil), "example.test.", "www.example.test.", dns.TypeA, kindAnswer, ""},
		{"answer without AA", msgWith(t, 0, false, []string{"www.example.test. 60 A 192.0.2.1"}, nil), "example.test.", "www.example.test.", dns.TypeA, kindAnswer, ""},
		{"cname without AA", msgWith(t, 0, false, []string{"www.example.test. 60 CNAME x.other."}, nil), "example.test.", "www.example.test.", dns.TypeA, kindAnswer, ""},
		{"cname", msgWith(t, 0, true, []string{"www.example.test. 60 CNAME x.other."}, nil), "example.test.", "www.example.test.", dns.TypeA, kindAnswer, ""},
		{"nxdomain", msgWith(t, 3, true, nil, []string{soa}), "example.test.", "x.example.test.", dns.TypeA, kindNXDomain, ""},
		{"nxdomain without AA", msgWith(t, 3, false, nil, []string{soa}), "example.test.", "x.example.test.", dns.TypeA, kindNXDomain, ""},
		{"nxdomain without AA or SOA", msgWith(t, 3, false, nil, nil), "example.test.", "x.example.test.", dns.TypeA, kindLame, ""},
		{"nxdomain without AA, SOA of another zone", msgWith(t, 3, false, nil, []string{"bank.test. 60 SOA ns. h. 1 2 3 4 60"}), "example.test.", "x.example.test.", dns.TypeA, kindLame, ""},
		{"nodata without AA", msgWith(t, 0, false, nil, []string{soa}), "example.test.", "www.example.test.", dns.TypeTXT, kindNoData, ""},
		{"referral to the zone asked without AA", msgWith(t, 0, false, nil, []string{"example.test. 60 NS ns1.example.test."}), "example.test.", "www.example.test.", dns.TypeA, kindLame, ""},
		{"nodata", msgWith(t, 0, true, nil, []string{soa}), "example.test.", "www.example.test.", dns.TypeTXT, kindNoData, ""},
		{"referral", msgWith(t, 0, false, nil, []string{"example.test. 60 NS ns1.example.test."}), "test.", "www.example.test.", dns.TypeA, kindReferral, "example.test."},
		{"upward referral", msgWith(t, 0, false, nil, []string{"test. 60 NS ns.nic.test."}), "example.test.", "www.example.test.", dns.TypeA, kindLame, ""},
		{"sideways referral", msgWith(t, 0, false, nil, []string{"other.test. 60 NS ns.other.test."}), "test.", "www.example.test.", dns.TypeA, kindLame, ""},
		{"referral for DS to the child", msgWith(t, 0, false, nil, []string{"example.test. 60 NS ns1.example.test."}), "test.", "example.test.", dns.TypeDS, kindLame, ""},
		{"nodata with the child's NS beside the SOA", msgWith(t, 0, true, nil, []string{"example.test. 60 SOA ns. h. 1 2 3 4 60", "example.test. 60 NS ns1.example.test."}), "test.", "www.example.test.", dns.TypeTXT, kindNoData, ""},
		{"refused", msgWith(t, dns.RcodeRefused, false, nil, nil), "test.", "www.example.test.", dns.TypeA, kindRcodeError, ""},
		{"empty non-AA", msgWith(t, 0, false, nil, nil), "test.", "www.example.test.", dns.TypeA, kindLame, ""},
	} {
		got, child := classify(tc.m, tc.zone, tc.qname, tc.qtype)
		if got != tc.want || child != tc.child {
			t.Errorf("%s: %v %q, want %v %q", tc.name, got, child, tc.want, tc.child)
		}
	}
}

func TestFollowChain(t *testing.T) {
	m := msgWith(t, 0, true, []string{
		"a.example.test. 60 CNAME b.example.test.",
		"b.example.test. 60 CNAME c.other.",
		"c.other. 60 A 6.6.6.6", // out of bailiwick: must not be used
		"unrelated.example.test. 60 A 6.6.6.7",
	}, nil)
	res, err := followChain(m, "example.test.", "a.example.test.", dns.TypeA, dns.ClassINET)
	if err != nil {
		t.Fatal(err)
	}
	if res.done || res.next != "c.other." || res.hops != 2 || len(res.answer()) != 2 || len(res.sets) != 2 {
		t.Fatalf("chain %+v", res)
	}
	// DNAME synthesis, and a result that is too long.
	m = msgWith(t, 0, true, []string{"d.example.test. 60 DNAME target.example.test.", "x.target.example.test. 60 A 192.0.2.1"}, nil)
	res, err = followChain(m, "example.test.", "x.d.example.test.", dns.TypeA, dns.ClassINET)
	if err != nil || !res.done || res.hops != 1 || res.answer()[1].(*dns.CNAME).Target != "x.target.example.test." {
		t.Fatalf("DNAME chain %+v err %v", res, err)
	}
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 50) + "."
	m = msgWith(t, 0, true, []string{"d.example.test. 60 DNAME " + long}, nil)
	if _, err := followChain(m, "example.test.", strings.Repeat("x", 60)+".d.example.test.", dns.TypeA, dns.ClassINET); err == nil {
		t.Fatal("over-long DNAME substitution accepted")
	}
}

func TestUnservedQuestions(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	for _, tc := range []struct {
		q     dns.Question
		rcode int
	}{
		{dns.Question{Name: "version.bind.", Qtype: dns.TypeTXT, Qclass: dns.ClassCHAOS}, dns.RcodeRefused},
		{dns.Question{Name: "example.test.", Qtype: dns.TypeAXFR, Qclass: dns.ClassINET}, dns.RcodeNotImplemented},
		{dns.Question{Name: "example.test.", Qtype: dns.TypeIXFR, Qclass: dns.ClassINET}, dns.RcodeNotImplemented},
	} {
		q := new(dns.Msg)
		q.Question = []dns.Question{tc.q}
		q.SetEdns0(1232, false)
		m, res := r.Exchange(ctxT(t), q)
		if m.Rcode != tc.rcode || res.ExtendedError() == nil || res.ExtendedError().EDE != dns.ExtendedErrorCodeNotSupported {
			t.Errorf("%v: rcode %s err %v", tc.q, dns.RcodeToString[m.Rcode], res.ExtendedError())
		}
	}
	// Resolve says the same in one place: no Result, an *Error with the
	// rcode and the EDE.
	res, err := r.Resolve(ctxT(t), "example.test.", dns.TypeAXFR)
	var re *Error
	if res != nil || !errors.As(err, &re) || re.Rcode != dns.RcodeNotImplemented || re.EDE != dns.ExtendedErrorCodeNotSupported {
		t.Errorf("Resolve AXFR: %v, %v; want no result and a NOTIMP error", res, err)
	}
	if n := h.root.count(); n != 0 {
		t.Fatalf("unserved questions sent %d queries", n)
	}
}

func TestANYTakesAllTypes(t *testing.T) {
	m := msgWith(t, 0, true, []string{"x.example.test. 60 A 192.0.2.1", "x.example.test. 60 TXT \"t\""}, nil)
	if k, _ := classify(m, "example.test.", "x.example.test.", dns.TypeANY); k != kindAnswer {
		t.Fatalf("ANY answer classified %v", k)
	}
	res, err := followChain(m, "example.test.", "x.example.test.", dns.TypeANY, dns.ClassINET)
	if err != nil || !res.done || len(res.answer()) != 2 {
		t.Fatalf("ANY chain %+v %v", res, err)
	}
}

func TestSelectorLamePerZone(t *testing.T) {
	l := DefaultLimits()
	s := newSelector(&l)
	s.probe = 0
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	s.success(a, time.Millisecond)
	s.success(b, 50*time.Millisecond)
	s.markLame("lame.example.", a)
	if got := s.order("lame.example.", []netip.Addr{a, b}); got[0].addr != b || !got[1].lame {
		t.Fatalf("for the zone it is lame for, order %v", got)
	}
	if got := s.order("other.example.", []netip.Addr{a, b}); got[0].addr != a {
		t.Fatalf("for another zone, order %v: lameness leaked", got)
	}
}
