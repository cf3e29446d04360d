package authority

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// maxServiceHints bounds the targets whose addresses one SVCB or HTTPS
// answer carries: a hostile zone with thousands of targets must not make
// an answer (or the work to build it) unbounded.
const maxServiceHints = 8

// addServiceHints adds to the additional section the A and AAAA records
// (with their signatures under DO) of the in-zone targets of an SVCB or
// HTTPS RRset, as RFC 9460 4.2 asks of authoritative servers, so that a
// client gets the service's addresses in the same round trip. A target of
// "." in ServiceMode is the owner itself (RFC 9460 2.5.2); in AliasMode it
// means "no service" and has no addresses. Targets below a delegation are
// not this zone's data and are left out.
func (z *Zone) addServiceHints(r *responder, s *rrset, owner string) {
	var done [maxServiceHints]string
	count := 0
	for _, rr := range s.rrs {
		var sv *dns.SVCB
		switch v := rr.(type) {
		case *dns.SVCB:
			sv = v
		case *dns.HTTPS:
			sv = &v.SVCB
		default:
			continue
		}
		target := sv.Target
		if target == "." || target == "" {
			if sv.Priority == 0 {
				continue
			}
			target = owner
		}
		ct := dnsname.Canonical(target)
		if !dnsname.IsAtOrBelow(ct, z.origin) || seen(done[:count], ct) {
			continue
		}
		if count == maxServiceHints {
			return
		}
		done[count] = ct
		count++
		n := z.nodes[ct]
		if n == nil || n.cut || n.belowCut {
			continue
		}
		for _, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
			if a := n.set(t); a != nil {
				r.addRecords(&r.m.Extra, a.rrs, "", keepTTL)
				if r.do {
					r.addRecords(&r.m.Extra, a.sigs, "", keepTTL)
				}
			}
		}
	}
}

func seen(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
