//go:build !nointerop

// The interop test imports the authority package (and through it transport);
// build with -tags nointerop to run the validator alone while those are
// being edited.

package validator_test

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// These tests validate what an independent implementation produces: zones
// signed by the authority package (its own NSEC/NSEC3 chains, opt-out,
// wildcards, delegations) and answered by its Server.

var interopNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// serverSource is a KeySource that asks an authority.Server with DO=1.
type serverSource struct{ s *authority.Server }

func (s serverSource) Query(_ context.Context, name string, qtype uint16) (*dns.Msg, error) {
	return s.s.Answer(dnstest.Query(dns.Fqdn(name), qtype, dnstest.EDNS(1232, true))), nil
}

type interopZone struct {
	origin string
	alg    uint8
	nsec3  *authority.NSEC3Options
	lines  []string
	ksk    *authority.Key
}

// buildInterop signs children first so that parents can carry their DS.
func buildInterop(t *testing.T) (*authority.Server, *dns.DS) {
	t.Helper()
	zones := []*interopZone{
		{origin: "n3.example.", alg: dns.ECDSAP256SHA256, nsec3: &authority.NSEC3Options{Iterations: 0, OptOut: true}, lines: []string{
			"n3.example. 300 IN SOA ns.n3.example. host.n3.example. 1 7200 3600 1209600 300",
			"n3.example. 300 IN NS ns.n3.example.",
			"ns.n3.example. 300 IN A 192.0.2.53",
			"www.n3.example. 300 IN A 192.0.2.10",
			"x.y.n3.example. 300 IN A 192.0.2.11",
			"*.wild.n3.example. 300 IN TXT \"n3 wild\"",
			"unsigned.n3.example. 300 IN NS ns.elsewhere.",
		}},
		{origin: "m3.example.", alg: dns.ECDSAP384SHA384, nsec3: &authority.NSEC3Options{Iterations: 5, Salt: "AB12"}, lines: []string{
			"m3.example. 300 IN SOA ns.m3.example. host.m3.example. 1 7200 3600 1209600 300",
			"m3.example. 300 IN NS ns.m3.example.",
			"ns.m3.example. 300 IN A 192.0.2.54",
			"www.m3.example. 300 IN A 192.0.2.12",
			"x.y.m3.example. 300 IN A 192.0.2.13",
			"*.wild.m3.example. 300 IN TXT \"m3 wild\"",
			"insec.m3.example. 300 IN NS ns.elsewhere.",
		}},
		{origin: "h3.example.", alg: dns.ED25519, nsec3: &authority.NSEC3Options{Iterations: 51}, lines: []string{
			"h3.example. 300 IN SOA ns.h3.example. host.h3.example. 1 7200 3600 1209600 300",
			"h3.example. 300 IN NS ns.h3.example.",
			"ns.h3.example. 300 IN A 192.0.2.55",
		}},
		{origin: "example.", alg: dns.ED25519, lines: []string{
			"example. 300 IN SOA ns.example. host.example. 1 7200 3600 1209600 300",
			"example. 300 IN NS ns.example.",
			"ns.example. 300 IN A 192.0.2.1",
			"www.example. 300 IN A 192.0.2.2",
			"alias.example. 300 IN CNAME www.n3.example.",
			"a.b.c.example. 300 IN A 192.0.2.3",
			"*.wild.example. 300 IN TXT \"wild\"",
			"insec.example. 300 IN NS ns.elsewhere.",
			"n3.example. 300 IN NS ns.n3.example.",
			"ns.n3.example. 300 IN A 192.0.2.53",
			"m3.example. 300 IN NS ns.m3.example.",
			"ns.m3.example. 300 IN A 192.0.2.54",
			"h3.example. 300 IN NS ns.h3.example.",
			"ns.h3.example. 300 IN A 192.0.2.55",
		}},
		{origin: ".", alg: dns.ECDSAP256SHA256, lines: []string{
			". 300 IN SOA a.root. host.root. 1 7200 3600 1209600 300",
			". 300 IN NS a.root.",
			"a.root. 300 IN A 192.0.2.250",
			"root. 300 IN NS a.root.",
			"example. 300 IN NS ns.example.",
			"ns.example. 300 IN A 192.0.2.1",
		}},
	}
	var signed []*authority.Zone
	dsOf := map[string]string{} // child origin -> its DS, for the parent
	for _, z := range zones {
		var childDS []string
		for child, ds := range dsOf {
			if dnsname.Parent(child) == z.origin {
				childDS = append(childDS, ds)
			}
		}
		ksk, err := authority.GenerateKey(z.origin, z.alg, authority.FlagsKSK)
		if err != nil {
			t.Fatal(err)
		}
		zsk, err := authority.GenerateKey(z.origin, z.alg, authority.FlagsZSK)
		if err != nil {
			t.Fatal(err)
		}
		z.ksk = ksk
		lines := append(z.lines, childDS...)
		rrs, err := authority.Sign(z.origin, dnstest.MustRRs(t, lines...), authority.SignOptions{
			Keys: []*authority.Key{ksk, zsk}, Inception: interopNow.Add(-time.Hour), Expiration: interopNow.Add(30 * 24 * time.Hour), NSEC3: z.nsec3,
		})
		if err != nil {
			t.Fatalf("sign %s: %v", z.origin, err)
		}
		zone, err := authority.NewZone(z.origin, rrs)
		if err != nil {
			t.Fatalf("zone %s: %v", z.origin, err)
		}
		signed = append(signed, zone)
		dsOf[z.origin] = ksk.DS(dns.SHA256).String()
	}
	return authority.NewServer(signed...), zones[len(zones)-1].ksk.DS(dns.SHA256)
}

func TestInteropWithAuthoritySigner(t *testing.T) {
	srv, rootDS := buildInterop(t)
	v, err := validator.New([]dns.RR{rootDS}, serverSource{srv}, clock.NewManual(interopNow), validator.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		qname  string
		qtype  uint16
		status security.Status
	}{
		{"www.example.", dns.TypeA, security.Secure},
		{"www.example.", dns.TypeAAAA, security.Secure},      // NODATA (NSEC)
		{"nx.example.", dns.TypeA, security.Secure},          // NXDOMAIN (NSEC)
		{"b.c.example.", dns.TypeA, security.Secure},         // empty non-terminal
		{"x.wild.example.", dns.TypeTXT, security.Secure},    // wildcard answer
		{"x.wild.example.", dns.TypeMX, security.Secure},     // wildcard NODATA
		{"alias.example.", dns.TypeA, security.Secure},       // CNAME into the NSEC3 child
		{"www.insec.example.", dns.TypeA, security.Insecure}, // referral, NSEC no-DS proof
		{"insec.example.", dns.TypeDS, security.Secure},      // DS NODATA at the parent
		{"www.n3.example.", dns.TypeA, security.Secure},      // answer in the NSEC3 zone
		{"www.n3.example.", dns.TypeTXT, security.Secure},    // NODATA (NSEC3)
		{"y.n3.example.", dns.TypeA, security.Secure},        // empty non-terminal (NSEC3)
		{"nx.n3.example.", dns.TypeA, security.Insecure},     // NXDOMAIN under opt-out
		// An opt-out span covers the next closer name: an unsigned
		// delegation may sit there, so the wildcard answer is not secure
		// (as Knot Resolver decides).
		{"q.wild.n3.example.", dns.TypeTXT, security.Insecure},
		{"www.unsigned.n3.example.", dns.TypeA, security.Insecure}, // referral under opt-out
		{"n3.example.", dns.TypeDNSKEY, security.Secure},
		{"www.m3.example.", dns.TypeA, security.Secure},
		{"nx.m3.example.", dns.TypeA, security.Secure},          // NXDOMAIN (NSEC3, salt, 5 iterations)
		{"a.b.nx.m3.example.", dns.TypeA, security.Secure},      // deep NXDOMAIN
		{"y.m3.example.", dns.TypeMX, security.Secure},          // empty non-terminal
		{"q.wild.m3.example.", dns.TypeTXT, security.Secure},    // wildcard answer (NSEC3)
		{"q.wild.m3.example.", dns.TypeMX, security.Secure},     // wildcard NODATA (NSEC3)
		{"www.insec.m3.example.", dns.TypeA, security.Insecure}, // referral, NSEC3 no-DS proof
		{"nx.h3.example.", dns.TypeA, security.Insecure},        // 51 iterations: RFC 9276
		{"www.h3.example.", dns.TypeA, security.Insecure},
		{"example.", dns.TypeDS, security.Secure},
	}
	for _, tc := range tests {
		name := tc.qname + "/" + dns.TypeToString[tc.qtype]
		t.Run(name, func(t *testing.T) {
			resp := srv.Answer(dnstest.Query(dns.Fqdn(tc.qname), tc.qtype, dnstest.EDNS(1232, true)))
			res := v.ValidateResponse(context.Background(), tc.qname, tc.qtype, resp, validator.NewBudget(v.Limits()))
			if res.Status != tc.status {
				t.Fatalf("got %v EDE %d (%s), want %v\n%v", res.Status, res.EDE, res.Reason, tc.status, resp)
			}
		})
	}
}
