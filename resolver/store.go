package resolver

import (
	"fmt"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/security"
)

// storeReferral caches a referral from a server of zone to child: the NS
// set, the DS set if any, and the glue. Glue is accepted only within zone
// (the data the server is authoritative for): an address for a name outside
// it is unsolicited and dropped, so a referral cannot poison other zones. It
// returns the delegation to follow, with the glue in hand even when the
// cache keeps none (TTL 0, higher-ranked data present).
func (r *Resolver) storeReferral(m *dns.Msg, zone, child string, qclass uint16) (delegation, error) {
	nsRRs := rrsOf(m.Ns, child, dns.TypeNS, qclass)
	d := delegation{zone: child, hints: make(map[string][]netip.Addr)}
	names := make(map[string]bool, len(nsRRs))
	for _, rr := range nsRRs {
		name := rr.(*dns.NS).Ns
		if !names[name] {
			names[name] = true
			d.ns = append(d.ns, name)
		}
	}
	if len(d.ns) == 0 {
		return d, &Error{EDE: dns.ExtendedErrorCodeInvalidData, Text: fmt.Sprintf("referral to %s without NS records", child), Cacheable: true}
	}
	r.cache.Put(child, dns.TypeNS, qclass, &cache.Entry{RRs: nsRRs, Rank: cache.RankGlue}, minTTL(nsRRs))
	if ds := rrsOf(m.Ns, child, dns.TypeDS, qclass); len(ds) > 0 {
		r.cache.Put(child, dns.TypeDS, qclass, &cache.Entry{RRs: ds, Sigs: sigsOf(m.Ns, child, dns.TypeDS), Rank: cache.RankGlue}, minTTL(ds))
	} else if proof := denialProofs(m, zone); len(proof) > 0 {
		// A signed parent sends, with a referral to an unsigned child,
		// the NSEC or NSEC3 proving there is no DS (RFC 4035 3.1.4.1,
		// RFC 5155 7.2.7). Kept as the child's DS NODATA, it answers the
		// validator's DS question (which checks it: NS set, DS and SOA
		// clear, RFC 4035 5.2, RFC 5155 8.9) without another query, as
		// Unbound keeps it in its key cache.
		r.cache.Put(child, dns.TypeDS, qclass, &cache.Entry{Authority: proof, Rank: cache.RankGlue}, minTTL(proof))
	}
	for name := range names {
		if isSubdomain(name, child) && len(rrsOf(m.Extra, name, dns.TypeA, qclass)) == 0 && len(rrsOf(m.Extra, name, dns.TypeAAAA, qclass)) == 0 {
			// An in-zone name server without glue: remembered, so that
			// the delegation is not asked for again in vain.
			r.glue.put(name, qclass, nil, minTTL(nsRRs))
		}
	}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		for name := range names {
			if !isSubdomain(name, zone) {
				continue // out of bailiwick: never cached, never used
			}
			glue := rrsOf(m.Extra, name, t, qclass)
			if len(glue) == 0 {
				continue
			}
			r.cache.Put(name, t, qclass, &cache.Entry{RRs: glue, Rank: cache.RankGlue}, minTTL(glue))
			var addrs []netip.Addr
			for _, rr := range glue {
				if a := addrOf(rr); a.IsValid() {
					addrs = append(addrs, a)
				}
			}
			d.hints[name] = append(d.hints[name], addrs...)
			r.glue.put(name, qclass, addrs, minTTL(glue))
		}
	}
	return d, nil
}

// addrOf returns the address of an A or AAAA record.
func addrOf(rr dns.RR) netip.Addr {
	var a netip.Addr
	switch v := rr.(type) {
	case *dns.A:
		a, _ = netip.AddrFromSlice(v.A.To4())
	case *dns.AAAA:
		a, _ = netip.AddrFromSlice(v.AAAA)
	}
	return a.Unmap()
}

// storeAnswer caches an answer (data, CNAME/DNAME chain, NXDOMAIN, NODATA,
// or YXDOMAIN below a DNAME) from a server of zone, at the rank its AA flag
// gives it, and turns it into a step.
func (rs *resolution) storeAnswer(m *dns.Msg, kind replyKind, zone string, q question) (*step, error) {
	r := rs.r
	st := &step{rcode: dns.RcodeSuccess}
	final := q.name
	if kind == kindAnswer || kind == kindNXDomain || kind == kindYXDomain {
		ch, err := followChain(m, zone, q.name, q.qtype, q.qclass)
		if err != nil {
			return nil, err
		}
		if ch.yxdomain != (kind == kindYXDomain) {
			return nil, &Error{EDE: dns.ExtendedErrorCodeInvalidData, Cacheable: true,
				Text: fmt.Sprintf("%s answer for %s does not end in a DNAME substitution over 255 octets", kind, q)}
		}
		for range ch.hops {
			if err := rs.budget.spendHop(); err != nil {
				return nil, err
			}
		}
		var proofs []dns.RR
		if ch.done {
			// A wildcard answer comes with the NSEC/NSEC3 proof that no
			// closer name exists (RFC 4035 3.1.3.3): the validator needs it.
			proofs = denialProofs(m, zone)
		}
		for i := range ch.sets {
			s := &ch.sets[i]
			if s.synthesised {
				continue // the DNAME's entry stands for it
			}
			e := &cache.Entry{RRs: s.rrs, Sigs: s.sigs, Rank: answerRank(m)}
			if i == len(ch.sets)-1 {
				e.Authority = proofs
			}
			if r.cache.Put(s.name, s.rtype, q.qclass, e, minTTL(s.rrs)) {
				s.entry = e
			}
		}
		st.sets = ch.sets
		if ch.yxdomain {
			// RFC 6672 2.2: the cached DNAME answers this question (and
			// every name below it) with YXDOMAIN until it expires.
			st.rcode = dns.RcodeYXDomain
			return st, nil
		}
		if ch.done {
			st.authority = proofs
			return st, nil
		}
		if ch.next != "" {
			st.next = ch.next
			return st, nil
		}
		final = ch.final
	}
	// A negative answer for final (q.name, or the end of an in-zone chain).
	soa, ttl := negativeSOA(m, zone, final)
	if final != q.name && m.Rcode == dns.RcodeSuccess && soa == nil {
		// The chain stops inside the zone with neither data nor a denial:
		// ask for the target on its own.
		st.next = final
		return st, nil
	}
	st.rcode = m.Rcode
	st.denial = entrylessDenial
	if soa == nil {
		return st, nil // RFC 2308 5: no SOA, not cached
	}
	auth := negativeAuthority(m, zone, soa, ttl)
	st.authority = auth
	st.denial = r.storeNegative(final, q.qtype, q.qclass, m.Rcode, auth, ttl, negativeRank(m))
	return st, nil
}

// storeNegative caches a negative answer for name/qtype: NODATA for the
// type, NXDOMAIN for the whole name (RFC 8020: the name does not exist for
// any type, nor, once DNSSEC proves it, anything below it) at rank. It
// returns the denial behind the answer, with the entry stored for
// validation to mark.
func (r *Resolver) storeNegative(name string, qtype, qclass uint16, rcode int, auth []dns.RR, ttl uint32, rank cache.Rank) *denial {
	e := &cache.Entry{Rcode: rcode, Authority: auth, Rank: rank}
	ref := entryRef{name: name, qtype: qtype, qclass: qclass}
	if rcode == dns.RcodeNameError {
		ref.qtype, ref.nxdomain = 0, true
		if r.cache.PutNXDomain(name, qclass, e, ttl) {
			ref.entry = e
		}
	} else if r.cache.Put(name, qtype, qclass, e, ttl) {
		ref.entry = e
	}
	return r.cachedDenial(ref)
}

// negativeAuthority keeps, of a negative reply's authority section, the SOA
// (its TTL lowered to the negative TTL, RFC 2308 3) and the in-zone denial
// proofs with their signatures.
func negativeAuthority(m *dns.Msg, zone string, soa *dns.SOA, ttl uint32) []dns.RR {
	s := dns.Copy(soa)
	s.Header().Ttl = ttl
	return append([]dns.RR{s}, denialProofs(m, zone)...)
}

// denialProofs returns the in-zone NSEC and NSEC3 records of the authority
// section and the RRSIGs over them and over the SOA.
func denialProofs(m *dns.Msg, zone string) []dns.RR {
	var out []dns.RR
	for _, rr := range m.Ns {
		h := rr.Header()
		if !isSubdomain(h.Name, zone) {
			continue
		}
		switch v := rr.(type) {
		case *dns.NSEC, *dns.NSEC3:
			out = append(out, rr)
		case *dns.RRSIG:
			switch v.TypeCovered {
			case dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3:
				out = append(out, rr)
			}
		}
	}
	return out
}

// storeNSAddrs caches the addresses a name-server lookup found under the
// name server's own name when they came through a CNAME.
func (r *Resolver) storeNSAddrs(ns string, t, qclass uint16, answer []dns.RR) {
	var addrs []dns.RR
	aliased := false
	for _, rr := range answer {
		if rr.Header().Rrtype != t {
			continue
		}
		if rr.Header().Name != ns {
			aliased = true
		}
		c := dns.Copy(rr)
		c.Header().Name = ns
		addrs = append(addrs, c)
	}
	if aliased && len(addrs) > 0 {
		r.cache.Put(ns, t, qclass, &cache.Entry{RRs: addrs, Rank: cache.RankAnswerNonAuth}, minTTL(addrs))
	}
}

// cachedNXDomain finds a cached NXDOMAIN at name (for any type) or, when
// DNSSEC proved it, above name, and returns it as a negative step. Like
// Unbound's harden-below-nxdomain, an unproven NXDOMAIN does not cover the
// names below it: some servers wrongly deny empty non-terminals.
func (r *Resolver) cachedNXDomain(name string, qclass uint16) (*step, bool) {
	for cur := name; ; cur = parentName(cur) {
		if e, ok := r.cache.GetNXDomain(cur, qclass); ok && (cur == name || e.Security == security.Secure) {
			return &step{rcode: dns.RcodeNameError, authority: cache.WithTTL(e.Authority, r.cache.Remaining(e)),
				denial: r.cachedDenial(entryRef{name: cur, qclass: qclass, nxdomain: true, entry: e})}, true
		}
		if cur == "." {
			return nil, false
		}
	}
}
