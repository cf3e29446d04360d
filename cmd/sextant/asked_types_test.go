package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/lab"
)

// TestServeAnswersAskedDNSSECTypes: a client question for DNSKEY, DS, NSEC,
// NSEC3 or RRSIG without the DO bit gets the records it asked for (RFC 4035
// 3.2.1, RFC 3225 3); only DNSSEC records of other types are left out.
// Asked with and without EDNS, as old stub resolvers do.
func TestServeAnswersAskedDNSSECTypes(t *testing.T) {
	dir := startDNSSECLab(t)
	const listen = "127.52.255.20:53"
	startServe(t, listen, "--root-hints", filepath.Join(dir, lab.FileRootHints),
		"--trust-anchor", filepath.Join(dir, lab.FileRootDS))
	tests := []struct {
		name  string
		qtype uint16
	}{
		{lab.SecureAlg13, dns.TypeDNSKEY},
		{lab.SecureAlg13, dns.TypeDS},
		{lab.SecureAlg13, dns.TypeNSEC},
		{"www." + lab.SecureAlg13, dns.TypeNSEC},
		{"www." + lab.SecureAlg13, dns.TypeRRSIG},
		{lab.NSEC3Zone, dns.TypeNSEC3PARAM},
	}
	c := &dns.Client{Timeout: 5 * time.Second, Net: "tcp"}
	for _, tt := range tests {
		for _, edns := range []bool{false, true} {
			q := new(dns.Msg).SetQuestion(tt.name, tt.qtype)
			if edns {
				q.SetEdns0(1232, false)
			}
			m, _, err := c.Exchange(q, listen)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.name, dns.TypeToString[tt.qtype], err)
			}
			asked, other := 0, 0
			for _, rr := range m.Answer {
				switch rr.Header().Rrtype {
				case tt.qtype:
					asked++
				case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
					other++
				}
			}
			if m.Rcode != dns.RcodeSuccess || asked == 0 || other != 0 {
				t.Errorf("%s %s without DO (EDNS %v): %s, %d %s and %d other DNSSEC records, want the %s records only\n%v",
					tt.name, dns.TypeToString[tt.qtype], edns, dns.RcodeToString[m.Rcode], asked, dns.TypeToString[tt.qtype], other, dns.TypeToString[tt.qtype], m.Answer)
			}
		}
	}
	// Other questions without DO still get no DNSSEC records.
	m, _, err := c.Exchange(new(dns.Msg).SetQuestion("www."+lab.SecureAlg13, dns.TypeA), listen)
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == dns.TypeRRSIG {
			t.Fatalf("A without DO got an RRSIG: %v", m.Answer)
		}
	}
}
