package authority

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// CNAME flattening: a CNAME that may not be sent as one (at the apex it
// would sit beside the SOA and NS, RFC 2181 10.1) is answered, for the
// address types, with its target's records, resolved through a Flattener
// (the co-located resolver) under the CNAME's owner name, with the
// smallest TTL along the chain. The standards-based alternative at an apex
// is an HTTPS/SVCB record in alias mode (RFC 9460 2.4.2), which needs no
// flattening.

// FlattenMode says which CNAMEs of a zone are flattened.
type FlattenMode uint8

const (
	// FlattenOff: CNAMEs are sent as CNAMEs; one at the apex is an error.
	FlattenOff FlattenMode = iota
	// FlattenApex: the CNAME at the apex (allowed beside SOA and NS).
	FlattenApex
	// FlattenAll: every CNAME of the zone, the apex's included.
	FlattenAll
)

// ParseFlattenMode reads "apex" or "all" ("" is apex).
func ParseFlattenMode(s string) (FlattenMode, error) {
	switch strings.ToLower(s) {
	case "", "apex":
		return FlattenApex, nil
	case "all":
		return FlattenAll, nil
	}
	return FlattenOff, fmt.Errorf("flattening mode %q is neither apex nor all", s)
}

func (m FlattenMode) String() string {
	switch m {
	case FlattenApex:
		return "apex"
	case FlattenAll:
		return "all"
	}
	return "off"
}

// Flattener resolves a name outside the local zones for flattening: the
// records of qtype at the end of its CNAME/DNAME chain (none for NODATA or
// NXDOMAIN), and the smallest TTL of the chain and the data. A failure
// returns a *FlattenError, whose EDE the client sees with SERVFAIL.
// Implementations must bound the work (the resolver's budget does).
type Flattener interface {
	Flatten(ctx context.Context, name string, qtype uint16) (rrs []dns.RR, ttl uint32, err error)
}

// FlattenError is why a flattened CNAME's target could not be resolved.
type FlattenError struct {
	EDE  uint16 // RFC 8914 info-code
	Text string
}

func (e *FlattenError) Error() string { return e.Text }

// flattenedType reports whether a flattened CNAME answers qtype with its
// target's records: the address types, and HTTPS, which browsers ask
// beside them.
func flattenedType(qtype uint16) bool {
	return qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeHTTPS
}

// flattens reports whether the CNAME at n is flattened.
func (z *Zone) flattens(n *node) bool {
	return z.flatten == FlattenAll || (z.flatten == FlattenApex && n == z.apex)
}

// Flatten returns how the zone's CNAMEs are answered.
func (z *Zone) Flatten() FlattenMode { return z.flatten }

// flatRequest is a flattened answer the zone could not finish alone: the
// target's records go under owner.
type flatRequest struct {
	zone   *Zone
	node   *node  // the CNAME's owner
	owner  string // as the answer names it (the query's case)
	target string // canonical
	qtype  uint16
	ttl    uint32 // the CNAME's, and those of any in-zone chain before it
}

// answerFlattened handles a flattened CNAME at n; it reports whether the
// answer is done (or left to the Server through r.flat). Types not
// flattened get the node's own data at the apex (never the CNAME, which
// a cache would then apply to the apex's SOA and NS) and the CNAME
// elsewhere.
func (z *Zone) answerFlattened(r *responder, n *node, name string, qtype uint16) bool {
	if flattenedType(qtype) {
		ttl := n.cname.Hdr.Ttl
		for _, rr := range r.m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
		r.flat = &flatRequest{zone: z, node: n, owner: name, target: dnsname.Canonical(dns.Fqdn(n.cname.Target)), qtype: qtype, ttl: ttl}
		return true
	}
	if n != z.apex {
		return false
	}
	if qtype == dns.TypeCNAME || !z.answerNode(r, n, name, qtype) {
		z.addNegativeSOA(r)
		if r.do {
			z.proveNoData(r, n.name, n)
		}
	}
	return true
}

// finishFlattened completes r's flattened answer from the target's
// records, or makes it a SERVFAIL with the reason: never an answer the
// target did not give.
func (s *Server) finishFlattened(r *responder) {
	f := r.flat
	m := r.m
	res := s.flatCache().get(f.target, f.qtype)
	if res.err != nil {
		m.Rcode = dns.RcodeServerFailure
		m.Answer, m.Ns = nil, nil
		m.Authoritative = false
		r.ede = &dns.EDNS0_EDE{InfoCode: res.err.EDE, ExtraText: truncateEDE("flattening " + f.owner + " to " + f.target + ": " + res.err.Text)}
		return
	}
	if len(res.rrs) == 0 {
		f.zone.addNegativeSOA(r) // the target has no such data: NODATA here
		if r.do && f.zone.signed {
			s.proveFlatNoData(r, f)
		}
		return
	}
	served := min(f.ttl, res.ttl)
	for _, rr := range res.rrs {
		c := dns.Copy(rr)
		c.Header().Name = f.owner
		c.Header().Ttl = served
		m.Answer = append(m.Answer, c)
	}
	if !r.do || !f.zone.signed {
		return
	}
	sigs, err := s.flatCache().signatures(res, f)
	if err != nil {
		m.Rcode = dns.RcodeServerFailure
		m.Answer, m.Ns = nil, nil
		r.ede = &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: truncateEDE("signing the flattened " + f.owner + ": " + err.Error())}
		return
	}
	for _, sig := range sigs {
		c := dns.Copy(sig)
		c.Header().Name = f.owner
		c.Header().Ttl = served
		m.Answer = append(m.Answer, c)
	}
}

// proveFlatNoData proves that the flattened apex has no data of f's type:
// the apex's NSEC or NSEC3 names the flattened types (its bitmap cannot
// know what the target has), so a copy without the type is signed online.
func (s *Server) proveFlatNoData(r *responder, f *flatRequest) {
	z := f.zone
	denial, err := s.flatCache().denial(z, f.qtype)
	if err != nil || denial == nil {
		z.proveNoData(r, dnsname.Canonical(f.owner), f.node)
		return
	}
	r.addRecords(&r.m.Ns, denial, "", r.proofTTL)
}

// maxEDEText bounds the EDE text of a flattening failure.
const maxEDEText = 200

func truncateEDE(s string) string {
	if len(s) > maxEDEText {
		s = s[:maxEDEText]
	}
	return strings.ToValidUTF8(s, "?")
}

// resolveTarget resolves name/qtype for flattening: through the local
// zones (CNAMEs followed, never flattened, so that a chain cannot loop
// through flattening) as long as the chain stays in them, then through the
// Flattener. The chain is bounded by maxChain names here and by the
// resolver's budget outside.
func (s *Server) resolveTarget(ctx context.Context, ext Flattener, name string, qtype uint16) ([]dns.RR, uint32, error) {
	ttl := uint32(math.MaxUint32)
	for hop := 0; hop < maxChain; hop++ {
		z := s.zoneFor(name, qtype)
		if z == nil {
			if ext == nil {
				return nil, 0, &FlattenError{EDE: dns.ExtendedErrorCodeNotSupported, Text: "no resolver to flatten through"}
			}
			rrs, t, err := ext.Flatten(ctx, name, qtype)
			return rrs, min(ttl, t), err
		}
		if z.unavailable != nil {
			return nil, 0, &FlattenError{EDE: dns.ExtendedErrorCodeNotReady, Text: "zone " + z.origin + " of the target is not available"}
		}
		r := responder{m: new(dns.Msg), noFlatten: true}
		z.answer(&r, name, qtype)
		next, data, t, err := localStep(r.m, qtype, z)
		if errors.Is(err, errDelegated) && ext != nil {
			// Below a delegation of ours: the resolver follows it.
			rrs, t, err := ext.Flatten(ctx, name, qtype)
			return rrs, min(ttl, t), err
		}
		if err != nil {
			return nil, 0, err
		}
		ttl = min(ttl, t)
		if next == "" {
			return data, ttl, nil
		}
		name = next
	}
	return nil, 0, &FlattenError{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("CNAME chain longer than %d names", maxChain)}
}

// localStep reads a local zone's answer to a flattening question: the data
// and TTL (next ""), or the name the chain continues at outside the zone
// (a CNAME/DNAME target, or the name a referral hands to the resolver).
// errDelegated: the name is below a delegation of the zone.
var errDelegated = &FlattenError{EDE: dns.ExtendedErrorCodeNotSupported, Text: "the target is below a delegation of a local zone"}

func localStep(m *dns.Msg, qtype uint16, z *Zone) (next string, data []dns.RR, ttl uint32, err error) {
	ttl = math.MaxUint32
	last := ""
	for _, rr := range m.Answer {
		h := rr.Header()
		ttl = min(ttl, h.Ttl)
		switch {
		case h.Rrtype == qtype:
			data = append(data, rr)
		case h.Rrtype == dns.TypeCNAME:
			last = dnsname.Canonical(rr.(*dns.CNAME).Target)
		}
	}
	switch {
	case m.Rcode == dns.RcodeNameError:
		return "", nil, min(ttl, z.negTTL), nil
	case m.Rcode != dns.RcodeSuccess:
		return "", nil, 0, &FlattenError{EDE: dns.ExtendedErrorCodeOther, Text: "the target's zone " + z.origin + " answered " + dns.RcodeToString[m.Rcode]}
	case len(data) > 0:
		return "", data, ttl, nil
	case len(m.Ns) > 0 && m.Ns[0].Header().Rrtype == dns.TypeNS:
		if len(m.Answer) > 0 {
			return "", nil, 0, &FlattenError{EDE: dns.ExtendedErrorCodeNotSupported, Text: "a CNAME chain in " + z.origin + " ends below one of its delegations"}
		}
		return "", nil, 0, errDelegated
	case last != "" && !dnsname.IsAtOrBelow(last, z.origin):
		return last, nil, ttl, nil
	case last != "":
		return "", nil, 0, &FlattenError{EDE: dns.ExtendedErrorCodeOther, Text: "CNAME loop in " + z.origin}
	}
	return "", nil, min(ttl, z.negTTL), nil // NODATA
}
