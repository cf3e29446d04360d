package resolver

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// buildResponse makes the client response for query q from res.
func buildResponse(q *dns.Msg, res *Result, do bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	m.Rcode = res.Rcode
	m.Answer = filterDNSSEC(res.Answer, do)
	m.Ns = filterDNSSEC(res.Authority, do)
	m.AuthenticatedData = res.Security == security.Secure && (do || q.AuthenticatedData)
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(ednsUDPSize, do)
		if res.Err != nil {
			o := m.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: res.Err.EDE, ExtraText: truncateText(res.Err.Text, 200)})
		}
	}
	return m
}

// filterDNSSEC drops RRSIG, NSEC and NSEC3 records for clients without DO
// (RFC 4035 3.2.1), copying only when needed.
func filterDNSSEC(rrs []dns.RR, do bool) []dns.RR {
	if do {
		return rrs
	}
	var out []dns.RR
	for i, rr := range rrs {
		switch rr.Header().Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			if out == nil {
				out = append(make([]dns.RR, 0, len(rrs)), rrs[:i]...)
			}
		default:
			if out != nil {
				out = append(out, rr)
			}
		}
	}
	if out == nil {
		return rrs
	}
	return out
}

func truncateText(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	return s[:n]
}
