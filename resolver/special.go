package resolver

import (
	"net"
	"strings"

	"github.com/miekg/dns"
)

// Special-use names answered without asking anyone.
//
// RFC 6761 6.3: localhost. and below resolve to loopback. 6.4: invalid.
// gives NXDOMAIN. 6.2: test. gives NXDOMAIN by default. RFC 7686: onion.
// and RFC 6762 22.1: local. (multicast DNS) give NXDOMAIN. RFC 6303: the locally served reverse zones for private,
// loopback, link-local and documentation addresses exist locally with an
// SOA and NS at the apex and nothing below.

// specialTTL is the TTL of local answers (RFC 6303 4: the SOA minimum).
const specialTTL = 10800

// nxdomainZones are the special-use zones where nothing exists.
var nxdomainZones = [...]string{"invalid.", "test.", "onion.", "local."}

// rfc6303Zones are the locally served zones of RFC 6303 4.
var rfc6303Zones = func() []string {
	z := []string{
		"10.in-addr.arpa.", "168.192.in-addr.arpa.", "0.in-addr.arpa.", "127.in-addr.arpa.",
		"254.169.in-addr.arpa.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
		"113.0.203.in-addr.arpa.", "255.255.255.255.in-addr.arpa.",
		"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.",
		"d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.", "a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.",
		"8.b.d.0.1.0.0.2.ip6.arpa.",
	}
	for i := 16; i <= 31; i++ {
		z = append(z, itoa(i)+".172.in-addr.arpa.")
	}
	return z
}()

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// specialAnswer answers q locally if its name is special-use.
func specialAnswer(q question) (*step, bool) {
	if q.qclass != dns.ClassINET {
		return nil, false
	}
	if isSubdomain(q.name, "localhost.") {
		return localhostAnswer(q), true
	}
	for _, z := range nxdomainZones {
		if isSubdomain(q.name, z) {
			return localDenial(dns.RcodeNameError, localSOA(z)), true
		}
	}
	if !strings.HasSuffix(q.name, ".arpa.") {
		return nil, false
	}
	for _, z := range rfc6303Zones {
		if !isSubdomain(q.name, z) {
			continue
		}
		if q.name != z {
			return localDenial(dns.RcodeNameError, localSOA(z)), true
		}
		switch q.qtype {
		case dns.TypeSOA:
			return &step{sets: localSet(localSOA(z))}, true
		case dns.TypeNS:
			return &step{sets: localSet(localNS(z))}, true
		}
		return localDenial(dns.RcodeSuccess, localSOA(z)), true
	}
	return nil, false
}

func localhostAnswer(q question) *step {
	hdr := dns.RR_Header{Name: q.name, Rrtype: q.qtype, Class: dns.ClassINET, Ttl: specialTTL}
	switch q.qtype {
	case dns.TypeA:
		return &step{sets: localSet(&dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1).To4()})}
	case dns.TypeAAAA:
		return &step{sets: localSet(&dns.AAAA{Hdr: hdr, AAAA: net.IPv6loopback})}
	case dns.TypeSOA:
		if q.name == "localhost." {
			return &step{sets: localSet(localSOA("localhost."))}
		}
	case dns.TypeNS:
		if q.name == "localhost." {
			return &step{sets: localSet(localNS("localhost."))}
		}
	}
	return localDenial(dns.RcodeSuccess, localSOA("localhost."))
}

// localSOA is the RFC 6303 4 SOA of a locally served zone.
func localSOA(zone string) dns.RR {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: specialTTL},
		Ns:  "localhost.", Mbox: "nobody.invalid.",
		Serial: 1, Refresh: 604800, Retry: 86400, Expire: 2419200, Minttl: specialTTL,
	}
}

func localNS(zone string) dns.RR {
	return &dns.NS{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: specialTTL}, Ns: "localhost."}
}

// localSet is the one-record RRset of a local answer (no cache entry).
func localSet(rr dns.RR) []rrset {
	h := rr.Header()
	return []rrset{{name: h.Name, rtype: h.Rrtype, rrs: []dns.RR{rr}}}
}

// localDenial is a local negative answer (NXDOMAIN, or NODATA for
// RcodeSuccess) with the zone's SOA.
func localDenial(rcode int, soa dns.RR) *step {
	return &step{rcode: rcode, authority: []dns.RR{soa}, denial: entrylessDenial}
}
