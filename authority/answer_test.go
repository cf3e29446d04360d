package authority

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

const testOrigin = "example."

// testZoneText exercises every answer path: apex data, CNAME chains and
// loops, wildcards (with a node below them and a CNAME wildcard), empty
// non-terminals, DNAMEs (out of zone, in zone, too long), a signed, an
// unsigned and an out-of-zone delegation.
var testZoneText = `
$ORIGIN example.
$TTL 3600
@        IN SOA ns1.example. hostmaster.example. 1 7200 3600 1209600 300
@        NS  ns1.example.
@        NS  ns2.example.
@        MX  10 mail.example.
ns1      A   192.0.2.1
ns2      AAAA 2001:db8::2
mail     A   192.0.2.3
www      A   192.0.2.10
www      TXT "hello"
alias    CNAME www.example.
chain    CNAME alias.example.
outside  CNAME www.example.net.
loop1    CNAME loop2.example.
loop2    CNAME loop1.example.
*.wild   A   192.0.2.20
*.wild   TXT "wild"
host.wild A  192.0.2.21
*.wc     CNAME www.example.
a.b.ent  A   192.0.2.30
dn       DNAME example.net.
dn2      DNAME example.
dnlong   DNAME ` + strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz.", 3) + `net.
secure   NS  ns.secure.example.
secure   DS  12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.secure A  192.0.2.40
insecure NS  ns.insecure.example.
insecure NS  ns1.example.
ns.insecure A 192.0.2.50
other    NS  ns.elsewhere.net.
big      TXT "` + strings.Repeat("a", 200) + `" "` + strings.Repeat("b", 200) + `"
big      TXT "` + strings.Repeat("c", 200) + `" "` + strings.Repeat("d", 200) + `"
big      TXT "` + strings.Repeat("e", 200) + `" "` + strings.Repeat("f", 200) + `"
big      TXT "` + strings.Repeat("g", 200) + `" "` + strings.Repeat("h", 200) + `"
`

// expect describes one expected response.
type expect struct {
	rcode    int
	aa       bool
	answer   []uint16 // RR types in the answer without DO, in order of first appearance
	kind     string   // the DNSSEC proof to check with DO: "", "nxdomain", "nodata", "wildcard", "wildnodata", "referral-secure", "referral-insecure"
	ns       []uint16 // authority types without DO (nil: not checked)
	extra    []string // owner names expected in the additional section
	check    func(t *testing.T, m *dns.Msg)
	unsigned bool // answer RRsets not signed (synthesised CNAME)
}

var answerCases = []struct {
	name  string
	qname string
	qtype uint16
	want  expect
}{
	{"exact A", "www.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeA}}},
	{"exact query case kept", "WwW.ExAmple.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeA},
		check: func(t *testing.T, m *dns.Msg) {
			if m.Answer[0].Header().Name != "WwW.ExAmple." {
				t.Errorf("owner %q, want the query's case", m.Answer[0].Header().Name)
			}
		}}},
	{"apex NS with addresses", "example.", dns.TypeNS, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeNS}, extra: []string{"ns1.example.", "ns2.example."}}},
	{"apex SOA", "example.", dns.TypeSOA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeSOA}}},
	{"DNSKEY asked without DO", "example.", dns.TypeDNSKEY, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeDNSKEY}}},
	{"CNAME followed", "alias.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeCNAME, dns.TypeA}}},
	{"CNAME chain", "chain.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeCNAME, dns.TypeA}, check: countAnswer(3)}},
	{"CNAME asked", "alias.example.", dns.TypeCNAME, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeCNAME}, check: countAnswer(1)}},
	{"CNAME out of zone", "outside.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeCNAME}, check: countAnswer(1)}},
	{"CNAME loop bounded", "loop1.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeCNAME}, check: countAnswer(2)}},
	{"CNAME to NXDOMAIN target", "dangling.example.", dns.TypeA, expect{rcode: dns.RcodeNameError, aa: true, answer: []uint16{dns.TypeCNAME}, kind: "nxdomain"}},
	{"DNAME out of zone", "x.dn.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeDNAME, dns.TypeCNAME}, unsigned: true,
		check: func(t *testing.T, m *dns.Msg) {
			c := findType(m.Answer, dns.TypeCNAME).(*dns.CNAME)
			if c.Target != "x.example.net." || c.Hdr.Ttl != 3600 || c.Hdr.Name != "x.dn.example." {
				t.Errorf("synthesised CNAME %v", c)
			}
		}}},
	{"DNAME in zone followed", "www.dn2.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeDNAME, dns.TypeCNAME, dns.TypeA}, unsigned: true}},
	{"DNAME asked", "dn.example.", dns.TypeDNAME, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeDNAME}}},
	{"DNAME too long: YXDOMAIN", strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz.", 3) + "dnlong.example.", dns.TypeA,
		expect{rcode: dns.RcodeYXDomain, aa: true, answer: []uint16{dns.TypeDNAME}}},
	{"wildcard A", "x.wild.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeA}, kind: "wildcard",
		check: func(t *testing.T, m *dns.Msg) {
			if m.Answer[0].Header().Name != "x.wild.example." {
				t.Errorf("wildcard owner not expanded: %v", m.Answer[0])
			}
		}}},
	{"wildcard two labels deep", "a.b.wild.example.", dns.TypeTXT, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeTXT}, kind: "wildcard"}},
	{"wildcard NODATA", "x.wild.example.", dns.TypeMX, expect{rcode: dns.RcodeSuccess, aa: true, kind: "wildnodata", ns: []uint16{dns.TypeSOA}}},
	{"wildcard CNAME", "x.wc.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeCNAME, dns.TypeA}, kind: "wildcard"}},
	{"no wildcard at an existing node", "host.wild.example.", dns.TypeTXT, expect{rcode: dns.RcodeSuccess, aa: true, kind: "nodata", ns: []uint16{dns.TypeSOA}}},
	{"no wildcard below an existing node", "x.host.wild.example.", dns.TypeA, expect{rcode: dns.RcodeNameError, aa: true, kind: "nxdomain", ns: []uint16{dns.TypeSOA}}},
	{"empty non-terminal", "b.ent.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, kind: "nodata", ns: []uint16{dns.TypeSOA}}},
	{"empty non-terminal two up", "ent.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: true, kind: "nodata", ns: []uint16{dns.TypeSOA}}},
	{"NODATA", "www.example.", dns.TypeAAAA, expect{rcode: dns.RcodeSuccess, aa: true, kind: "nodata", ns: []uint16{dns.TypeSOA},
		check: func(t *testing.T, m *dns.Msg) {
			soa := findType(m.Ns, dns.TypeSOA)
			if soa.Header().Ttl != 300 {
				t.Errorf("negative SOA TTL %d, want min(SOA TTL, MINIMUM) = 300", soa.Header().Ttl)
			}
		}}},
	{"NXDOMAIN", "nope.example.", dns.TypeA, expect{rcode: dns.RcodeNameError, aa: true, kind: "nxdomain", ns: []uint16{dns.TypeSOA}}},
	{"NXDOMAIN deep", "a.b.c.nope.example.", dns.TypeA, expect{rcode: dns.RcodeNameError, aa: true, kind: "nxdomain", ns: []uint16{dns.TypeSOA}}},
	{"referral to signed child", "www.secure.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: false, kind: "referral-secure", ns: []uint16{dns.TypeNS}, extra: []string{"ns.secure.example."}}},
	{"referral at the cut", "secure.example.", dns.TypeNS, expect{rcode: dns.RcodeSuccess, aa: false, kind: "referral-secure", ns: []uint16{dns.TypeNS}, extra: []string{"ns.secure.example."}}},
	{"referral to unsigned child", "a.b.insecure.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: false, kind: "referral-insecure", ns: []uint16{dns.TypeNS}, extra: []string{"ns.insecure.example.", "ns1.example."}}},
	{"referral glue below cut not answered", "ns.insecure.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: false, kind: "referral-insecure", ns: []uint16{dns.TypeNS}}},
	{"referral out-of-zone NS", "x.other.example.", dns.TypeA, expect{rcode: dns.RcodeSuccess, aa: false, kind: "referral-insecure", ns: []uint16{dns.TypeNS}, extra: []string{}}},
	{"DS at signed delegation", "secure.example.", dns.TypeDS, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeDS}}},
	{"DS at unsigned delegation", "insecure.example.", dns.TypeDS, expect{rcode: dns.RcodeSuccess, aa: true, kind: "nodata", ns: []uint16{dns.TypeSOA}}},
	{"DS below delegation is a referral", "x.secure.example.", dns.TypeDS, expect{rcode: dns.RcodeSuccess, aa: false, kind: "referral-secure", ns: []uint16{dns.TypeNS}}},
	{"ANY minimal", "www.example.", dns.TypeANY, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeA}, check: countAnswer(1)}},
	{"ANY at a CNAME is not followed", "alias.example.", dns.TypeANY, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeCNAME}, check: countAnswer(1)}},
	{"RRSIG asked", "www.example.", dns.TypeRRSIG, expect{rcode: dns.RcodeSuccess, aa: true, kind: "rrsig"}},
	{"ANY at empty non-terminal", "ent.example.", dns.TypeANY, expect{rcode: dns.RcodeSuccess, aa: true, kind: "nodata", ns: []uint16{dns.TypeSOA}}},
	{"large TXT", "big.example.", dns.TypeTXT, expect{rcode: dns.RcodeSuccess, aa: true, answer: []uint16{dns.TypeTXT}, check: countAnswer(4)}},
	{"outside the zones", "www.example.org.", dns.TypeA, expect{rcode: dns.RcodeRefused}},
	{"NSEC3 owner name is not data", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.", dns.TypeNSEC3, expect{rcode: dns.RcodeNameError, aa: true, kind: "nxdomain"}},
}

func countAnswer(n int) func(t *testing.T, m *dns.Msg) {
	return func(t *testing.T, m *dns.Msg) {
		t.Helper()
		got := 0
		for _, rr := range m.Answer {
			if rr.Header().Rrtype != dns.TypeRRSIG {
				got++
			}
		}
		if got != n {
			t.Errorf("answer has %d records (without RRSIGs), want %d:\n%v", got, n, m)
		}
	}
}

func findType(rrs []dns.RR, t uint16) dns.RR {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return rr
		}
	}
	return nil
}

// typesOf lists the types in rrs in order of first appearance, leaving out
// the DNSSEC types that DO adds (DS too unless withDS).
func typesOf(rrs []dns.RR, withDS bool) []uint16 {
	var ts []uint16
	for _, rr := range rrs {
		t := rr.Header().Rrtype
		if t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3 || (!withDS && t == dns.TypeDS) {
			continue
		}
		if !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	return ts
}

func query(name string, qtype uint16, do bool) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = false
	if do {
		q.SetEdns0(4096, true)
	}
	return q
}

func TestAnswer(t *testing.T) {
	text := testZoneText + "dangling CNAME nothere.example.\n"
	for _, mode := range []denialMode{unsignedZone, nsecZone, nsec3Zone, nsec3OptOutZone} {
		tz := makeTestZone(t, testOrigin, text, mode)
		s := NewServer(tz.zone)
		for _, tc := range answerCases {
			for _, do := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/do=%v", mode, tc.name, do), func(t *testing.T) {
					want := tc.want
					if mode == unsignedZone && (tc.qtype == dns.TypeDNSKEY || tc.qtype == dns.TypeRRSIG) {
						want = expect{rcode: dns.RcodeSuccess, aa: true, ns: []uint16{dns.TypeSOA}}
					}
					q := query(tc.qname, tc.qtype, do)
					m := s.Answer(q)
					checkResponse(t, tz, q, m, want, do)
				})
			}
		}
	}
}

func checkResponse(t *testing.T, tz *testZone, q, m *dns.Msg, want expect, do bool) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("response:\n%v", m)
		}
	}()
	if m.Id != q.Id || !m.Response || len(m.Question) != 1 || m.Question[0] != q.Question[0] {
		t.Fatalf("reply header/question not echoed")
	}
	if m.Rcode != want.rcode {
		t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[want.rcode])
	}
	if m.Authoritative != want.aa {
		t.Errorf("AA %v, want %v", m.Authoritative, want.aa)
	}
	if got := typesOf(m.Answer, true); !slices.Equal(got, want.answer) {
		t.Errorf("answer types %v, want %v", typeNames(got), typeNames(want.answer))
	}
	if want.ns != nil {
		if got := typesOf(m.Ns, false); !slices.Equal(got, want.ns) {
			t.Errorf("authority types %v, want %v", typeNames(got), typeNames(want.ns))
		}
	}
	for _, name := range want.extra {
		found := false
		for _, rr := range m.Extra {
			if rr.Header().Name == name && (rr.Header().Rrtype == dns.TypeA || rr.Header().Rrtype == dns.TypeAAAA) {
				found = true
			}
		}
		if !found {
			t.Errorf("additional section lacks the address of %s", name)
		}
	}
	opt := m.IsEdns0()
	if (opt != nil) != do || (opt != nil && (opt.UDPSize() != EDNSSize || !opt.Do())) {
		t.Errorf("OPT %v with DO=%v", opt, do)
	}
	if want.check != nil {
		want.check(t, m)
	}
	signed := tz.mode != unsignedZone
	if want.kind == "rrsig" {
		// Every signature at the name, with or without DO.
		covered := map[uint16]bool{}
		for _, rr := range m.Answer {
			sig, ok := rr.(*dns.RRSIG)
			if !ok || !dnsname.Equal(sig.Hdr.Name, q.Question[0].Name) {
				t.Errorf("unexpected answer record %v", rr)
				continue
			}
			covered[sig.TypeCovered] = true
		}
		if !covered[dns.TypeA] || !covered[dns.TypeTXT] {
			t.Errorf("RRSIG answer lacks the A or TXT signature")
		}
		return
	}
	dnssecAsked := q.Question[0].Qtype == dns.TypeDNSKEY || q.Question[0].Qtype == dns.TypeDS
	if !do || !signed {
		// No DNSSEC records unless asked for by type (an unsigned zone may
		// still hold DS records for its children).
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				switch rr.Header().Rrtype {
				case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
					t.Errorf("DNSSEC record without DO: %v", rr)
				case dns.TypeDS, dns.TypeDNSKEY:
					if !dnssecAsked && !do {
						t.Errorf("DNSSEC record without DO: %v", rr)
					}
				}
			}
		}
		return
	}
	verifySignatures(t, tz, m)
	checkProof(t, tz, q.Question[0].Name, m, want)
}

func typeNames(ts []uint16) []string {
	var out []string
	for _, t := range ts {
		out = append(out, dns.TypeToString[t])
	}
	return out
}
