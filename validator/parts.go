package validator

import (
	"context"

	"github.com/miekg/dns"
)

// Part is the validation of one piece of an answer: an RRset along the
// CNAME/DNAME chain, or the denial for the name the chain ends at. A cache
// marks each piece with its own state, so that the secure CNAME of a chain
// ending in insecure or bogus data stays secure when it is reached again.
type Part struct {
	// Name is the owner of the RRset, or the name the denial is for.
	Name string
	// Type is the RRset's type (DNAME, CNAME or the data), or the question
	// type the denial is for.
	Type uint16
	// Negative marks the NXDOMAIN or NODATA proof (the rcode tells which).
	Negative bool
	// Result is this piece's own validation.
	Result Result
}

// ValidateParts is ValidateSections that also returns the result of each
// piece, in chain order: every answer RRset validated (the DNAME, never the
// CNAME synthesised from it, which is not signed) and the denial at the
// end. The Result is the worst of the parts or, when the chain itself is
// wrong (a CNAME that disagrees with its DNAME, a chain over the limit),
// worse than all of them: then the parts do not tell the whole story and
// a caller must not mark them alone. A piece validation did not reach
// (the denial after a bogus link) has no Part.
func (v *Validator) ValidateParts(ctx context.Context, q dns.Question, rcode int, answer, authority []dns.RR, b *Budget) (Result, []Part) {
	m := &dns.Msg{Answer: answer, Ns: authority}
	m.Rcode = rcode
	m.Response = true
	var parts []Part
	res := v.validateResponse(ctx, q.Name, q.Qtype, m, b, &parts)
	return res, parts
}

// record appends the result of one piece to parts (when the caller wants
// them) and returns it.
func record(parts *[]Part, name string, t uint16, negative bool, r Result) Result {
	if parts != nil {
		*parts = append(*parts, Part{Name: dns.CanonicalName(name), Type: t, Negative: negative, Result: r})
	}
	return r
}
