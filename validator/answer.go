package validator

import (
	"context"

	"github.com/miekg/dns"
)

// Answer is a resolver's finished answer in pieces, as iteration built it:
// the RRsets of the CNAME/DNAME chain in order, each with its RRSIGs (the
// CNAME a DNAME implies has none: it is checked against the DNAME), and
// the authority records of a negative answer or of a wildcard expansion's
// proof (SOA, NSEC, NSEC3 and their RRSIGs).
type Answer struct {
	Rcode     int
	Sets      []RRset
	Authority []dns.RR
}

// RRset is one RRset of an Answer with the RRSIGs over it.
type RRset struct {
	RRs  []dns.RR
	Sigs []dns.RR
}

// Piece is the validation of one piece of an Answer. Checked is false for
// a piece validation did not judge on its own: one it did not reach (the
// denial after a bogus link), or the CNAME a DNAME implies, which is as
// good as that DNAME.
type Piece struct {
	Result
	Checked bool
}

// AnswerResult is the validation of an Answer: the whole, and each
// piece's own state, so that a resolver marks each cached RRset with its
// own (the secure CNAME of a chain ending in insecure or bogus data stays
// secure when it is reached again).
type AnswerResult struct {
	// Result is the whole answer: the worst of the pieces or, when the
	// chain itself is wrong (a CNAME that disagrees with its DNAME, a
	// chain over the limit), worse than all of them: then the pieces do
	// not tell the whole story and a caller must not mark them alone.
	Result
	// Sets[i] is the result of Answer.Sets[i].
	Sets []Piece
	// Denial is the NXDOMAIN or NODATA proof for the name the chain ends
	// at.
	Denial Piece
}

// ValidateAnswer validates a as ValidateResponse validates a response to
// q, and says what each piece's own state is.
func (v *Validator) ValidateAnswer(ctx context.Context, q dns.Question, a Answer, b *Budget) AnswerResult {
	out := AnswerResult{Sets: make([]Piece, len(a.Sets))}
	sets := rrsets{sets: make(map[string][]dns.RR, len(a.Sets))}
	piece := make(map[string]int, len(a.Sets)) // the piece of each set
	var sigs []*dns.RRSIG
	for i, s := range a.Sets {
		// One set per owner and type: an ANY answer's piece holds several.
		for _, rr := range s.RRs {
			h := rr.Header()
			k := setKey(h.Name, h.Rrtype)
			j, seen := piece[k]
			if !seen {
				j = i
				piece[k] = i
				sets.keys = append(sets.keys, k)
			}
			if j == i { // a set the chain passes twice is judged once
				sets.sets[k] = append(sets.sets[k], rr)
			}
		}
		for _, rr := range s.Sigs {
			if sig, ok := rr.(*dns.RRSIG); ok {
				sigs = append(sigs, sig)
			}
		}
	}
	rec := &recorder{res: &out, index: make(map[dns.RR]int, len(sets.keys))}
	for _, k := range sets.keys {
		rec.index[sets.sets[k][0]] = piece[k]
	}
	out.Result = v.validateChain(ctx, q.Name, q.Qtype, a.Rcode, sets, sigs, a.Authority, b, rec)
	return out
}

// recorder notes, for ValidateAnswer, the result of each piece; a nil
// recorder notes nothing.
type recorder struct {
	res *AnswerResult
	// index is the Answer.Sets index of each RRset, by its first record
	// (the validator hands back the records it was given).
	index map[dns.RR]int
}

// set notes the result of the RRset whose first record is first, with
// those of the other RRsets of its piece (ANY), and returns it.
func (rc *recorder) set(first dns.RR, r Result) Result {
	if rc == nil {
		return r
	}
	if i, ok := rc.index[first]; ok {
		p := &rc.res.Sets[i]
		if p.Checked {
			p.Result = combine(p.Result, r)
		} else {
			*p = Piece{Result: r, Checked: true}
		}
	}
	return r
}

// denial notes the result of the denial proof and returns it.
func (rc *recorder) denial(r Result) Result {
	if rc != nil {
		rc.res.Denial = Piece{Result: r, Checked: true}
	}
	return r
}
