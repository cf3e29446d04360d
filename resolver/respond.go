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
	var asked uint16
	if len(q.Question) == 1 {
		asked = q.Question[0].Qtype
	}
	m.Answer = filterDNSSEC(res.Answer, do, asked)
	m.Ns = filterDNSSEC(res.Authority, do, 0)
	m.AuthenticatedData = res.Security == security.Secure && (do || q.AuthenticatedData)
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(ednsUDPSize, do)
		if res.ede != nil {
			o := m.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: res.ede.EDE, ExtraText: truncateText(res.ede.Text, 200)})
		}
	}
	return m
}

// filterDNSSEC drops RRSIG, NSEC and NSEC3 records for clients without DO
// (RFC 4035 3.2.1), copying only when needed, except those of the type the
// client asked for (asked; 0 for none): RFC 4035 3.2.1 and RFC 3225 3 keep
// DNSSEC records "explicitly requested in the query", so a question for
// NSEC gets its NSEC (but not the RRSIG over it) and one for RRSIG gets
// the RRSIGs.
func filterDNSSEC(rrs []dns.RR, do bool, asked uint16) []dns.RR {
	if do {
		return rrs
	}
	var out []dns.RR
	for i, rr := range rrs {
		switch t := rr.Header().Rrtype; {
		case t != asked && (t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3):
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
