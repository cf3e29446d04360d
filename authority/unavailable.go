package authority

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// unavailability is why a zone the server is responsible for has no data
// to answer from.
type unavailability struct {
	ede  uint16
	text string
}

// UnavailableZone is a zone this server is responsible for but cannot
// answer from: a secondary zone before its first transfer, or after it
// expired (RFC 1035 3.3.13: a secondary whose zone expired must stop
// answering for it). Every query for its names gets SERVFAIL with an
// Extended DNS Error (RFC 8914) carrying ede and text, so that clients see
// why and the resolver beside the server does not go elsewhere for names
// the operator said are served here.
func UnavailableZone(origin string, ede uint16, text string) *Zone {
	origin = dnsname.Canonical(origin)
	z := &Zone{
		origin:      origin,
		originLen:   dnsname.CountLabels(origin),
		nodes:       map[string]*node{},
		unavailable: &unavailability{ede: ede, text: text},
	}
	z.apex = z.nodeFor(origin)
	return z
}

// Unavailable reports whether z is an UnavailableZone, and why.
func (z *Zone) Unavailable() (reason string, ok bool) {
	if z.unavailable == nil {
		return "", false
	}
	return z.unavailable.text, true
}

// answerUnavailable fills r with the SERVFAIL of an unavailable zone.
func (z *Zone) answerUnavailable(r *responder) {
	r.m.Rcode = dns.RcodeServerFailure
	r.m.Authoritative = false
	r.ede = &dns.EDNS0_EDE{InfoCode: z.unavailable.ede, ExtraText: z.unavailable.text}
}
