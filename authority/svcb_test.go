package authority

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestServiceHints: an HTTPS or SVCB answer carries the addresses of its
// in-zone targets (the owner for ".", ServiceMode), with signatures under
// DO, but none for AliasMode ".", targets outside the zone or below a
// delegation; the number of targets is bounded.
func TestServiceHints(t *testing.T) {
	var many strings.Builder
	for i := range maxServiceHints + 4 {
		fmt.Fprintf(&many, "many HTTPS %d h%d\nh%d A 192.0.2.%d\n", i+1, i, i, i+10)
	}
	text := `$ORIGIN svc.test.
$TTL 300
@ SOA ns1 hostmaster 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.53
@ HTTPS 1 . alpn=h2
@ A 192.0.2.1
@ AAAA 2001:db8::1
www HTTPS 1 cdn alpn=h3
www HTTPS 2 cdn.other.test.
www HTTPS 3 x.sub
cdn A 192.0.2.2
alias HTTPS 0 www
nothing HTTPS 0 .
_8443._foo.api SVCB 1 api port=8443
api AAAA 2001:db8::3
sub NS ns.sub
x.sub A 192.0.2.9
ns.sub A 192.0.2.8
` + many.String()
	for _, signed := range []bool{false, true} {
		z := buildServiceZone(t, text, signed)
		srv := NewServer(z)
		cases := []struct {
			name  string
			qtype uint16
			want  []string // additional A/AAAA owners and types
		}{
			{"svc.test.", dns.TypeHTTPS, []string{"svc.test./A", "svc.test./AAAA"}},
			{"www.svc.test.", dns.TypeHTTPS, []string{"cdn.svc.test./A"}},
			{"alias.svc.test.", dns.TypeHTTPS, nil}, // www has no addresses
			{"nothing.svc.test.", dns.TypeHTTPS, nil},
			{"_8443._foo.api.svc.test.", dns.TypeSVCB, []string{"api.svc.test./AAAA"}},
		}
		for _, c := range cases {
			for _, do := range []bool{false, true} {
				m := srv.Answer(query(c.name, c.qtype, do))
				var got []string
				sigs := 0
				for _, rr := range m.Extra {
					switch rr.Header().Rrtype {
					case dns.TypeA, dns.TypeAAAA:
						got = append(got, rr.Header().Name+"/"+dns.TypeToString[rr.Header().Rrtype])
					case dns.TypeRRSIG:
						sigs++
					}
				}
				want := c.want
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("signed=%v do=%v %s: additional %v, want %v", signed, do, c.name, got, want)
				}
				if wantSigs := signed && do && len(want) > 0; wantSigs != (sigs > 0) || (!wantSigs && sigs != 0) {
					t.Errorf("signed=%v do=%v %s: %d signatures in the additional section", signed, do, c.name, sigs)
				}
			}
		}
		m := srv.Answer(query("many.svc.test.", dns.TypeHTTPS, false))
		if len(m.Extra) > maxServiceHints+1 { // + OPT
			t.Errorf("%d additional records for %d targets, want at most %d", len(m.Extra), maxServiceHints+4, maxServiceHints)
		}
	}
}

func buildServiceZone(t *testing.T, text string, signed bool) *Zone {
	t.Helper()
	rrs := parseRecords(t, "svc.test.", text)
	if signed {
		now := time.Now()
		k := signMustKey(t, "svc.test.", dns.ED25519, FlagsKSK)
		var err error
		rrs, err = Sign("svc.test.", rrs, SignOptions{Keys: []*Key{k}, Inception: now.Add(-time.Hour), Expiration: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
	}
	z, err := NewZone("svc.test.", rrs)
	if err != nil {
		t.Fatal(err)
	}
	return z
}
