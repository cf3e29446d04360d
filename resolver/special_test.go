package resolver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

func TestSpecialNames(t *testing.T) {
	for _, tc := range []struct {
		name   string
		qtype  uint16
		rcode  int
		answer int
	}{
		{"localhost.", dns.TypeA, dns.RcodeSuccess, 1},
		{"foo.localhost.", dns.TypeAAAA, dns.RcodeSuccess, 1},
		{"localhost.", dns.TypeMX, dns.RcodeSuccess, 0},
		{"x.invalid.", dns.TypeA, dns.RcodeNameError, 0},
		{"www.test.", dns.TypeA, dns.RcodeNameError, 0},
		{"foo.onion.", dns.TypeA, dns.RcodeNameError, 0},
		{"printer.local.", dns.TypeA, dns.RcodeNameError, 0},
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, 0},
		{"20.172.in-addr.arpa.", dns.TypeSOA, dns.RcodeSuccess, 1},
		{"168.192.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, 0},
		{"8.b.d.0.1.0.0.2.ip6.arpa.", dns.TypeNS, dns.RcodeSuccess, 1},
	} {
		st, ok := specialAnswer(question{tc.name, tc.qtype, dns.ClassINET})
		if !ok || st.rcode != tc.rcode || len(st.answer()) != tc.answer {
			t.Errorf("%s %s: ok %v rcode %d answer %v", tc.name, dns.TypeToString[tc.qtype], ok, st.rcode, st.answer())
		}
		if ok && tc.answer == 0 && len(st.authority) != 1 {
			t.Errorf("%s: negative answer without SOA", tc.name)
		}
	}
	for _, name := range []string{"example.com.", "32.172.in-addr.arpa.", "1.1.1.1.in-addr.arpa.", "testing."} {
		if _, ok := specialAnswer(question{name, dns.TypeA, dns.ClassINET}); ok {
			t.Errorf("%s answered locally", name)
		}
	}
}

func TestSpecialNamesModes(t *testing.T) {
	h := memHierarchy(t)
	// Operator hints (auto): test. is resolved through their root.
	r := h.resolver(t, nil)
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || len(res.Answer) != 1 {
		t.Fatalf("auto with own hints: %v %v", res, err)
	}
	// localhost is not in the operator's root: still loopback.
	res, err := r.Resolve(ctxT(t), "localhost.", dns.TypeA)
	if got := answerAddrs(res); err != nil || len(got) != 1 || got[0] != "127.0.0.1" || h.root.count() == 0 {
		t.Fatalf("auto localhost: %v %v (root asked %d times)", res.Answer, err, h.root.count())
	}
	// Forced local: test. is NXDOMAIN without a query.
	r = h.resolver(t, func(c *Config) { c.SpecialNames = SpecialNamesLocal })
	before := h.root.count()
	res, _ = r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if res.Rcode != dns.RcodeNameError || h.root.count() != before {
		t.Fatalf("local mode: rcode %d, root queries %d -> %d", res.Rcode, before, h.root.count())
	}
	res, _ = r.Resolve(ctxT(t), "localhost.", dns.TypeA)
	if got := answerAddrs(res); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Fatalf("localhost: %v", res.Answer)
	}
}

func TestAddrPolicy(t *testing.T) {
	strict := addrPolicy{ipv4: true, ipv6: true}
	lab := addrPolicy{ipv4: true, ipv6: true, allowLoopback: true}
	v4only := addrPolicy{ipv4: true}
	for _, tc := range []struct {
		addr                string
		strict, lab, v4only bool
	}{
		{"192.0.2.1", true, true, true},
		{"2001:db8::1", true, true, false},
		{"127.0.0.1", false, true, false},
		{"127.30.0.1", false, true, false},
		{"::1", false, true, false},
		{"::ffff:127.0.0.1", false, true, false},
		{"0.0.0.0", false, false, false},
		{"::", false, false, false},
		{"169.254.1.1", false, false, false},
		{"fe80::1", false, false, false},
		{"224.0.0.1", false, false, false},
		{"ff02::1", false, false, false},
		{"255.255.255.255", false, false, false},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := strict.allowed(a); got != tc.strict {
			t.Errorf("strict %s = %v", tc.addr, got)
		}
		if got := lab.allowed(a); got != tc.lab {
			t.Errorf("lab %s = %v", tc.addr, got)
		}
		if got := v4only.allowed(a); got != tc.v4only {
			t.Errorf("v4only %s = %v", tc.addr, got)
		}
	}
}

func TestLoopbackDelegationRefused(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	// The lab's hints are loopback, so loopback is allowed; turn the
	// policy back to the default to see a delegation to 127.0.0.1 refused.
	r.policy.allowLoopback = false
	r.roots.addrs = map[string][]netip.Addr{"a.root.test.": {netip.MustParseAddr(memAddr(1))}}
	if mustFail(t, r, "www.example.test.", dns.TypeA); h.root.count() != 0 {
		t.Fatalf("root queries %d: a loopback server was queried", h.root.count())
	}
}
