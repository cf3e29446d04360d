package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// markedStatus answers for an answer whose every piece is a cache entry a
// validation already marked (a CNAME a DNAME implies goes with its DNAME;
// a denial synthesised from validated NSEC/NSEC3 records is secure): their
// worst state, without checking a signature again. ok is false when any
// piece has no entry or an unmarked one.
func markedStatus(out *outcome) (security.Status, *Error, bool) {
	var worst *cache.Entry
	consider := func(e *cache.Entry) bool {
		if e == nil || e.Security == security.Indeterminate {
			return false
		}
		if worst == nil || e.Security.Worse(worst.Security) {
			worst = e
		}
		return true
	}
	for _, s := range out.sets {
		if !s.synthesised && !consider(s.entry) {
			return 0, nil, false
		}
	}
	if d := out.denial; d != nil {
		switch {
		case d.secure:
			if worst == nil {
				return security.Secure, nil, true
			}
		case !consider(d.ref.entry):
			return 0, nil, false
		}
	}
	switch {
	case worst == nil:
		return 0, nil, false
	case worst.Security == security.Bogus:
		return security.Bogus, &Error{EDE: worst.EDE, Text: "cached bogus: " + worst.EDEText}, true
	case worst.EDE != 0:
		return worst.Security, &Error{EDE: worst.EDE, Text: worst.EDEText}, true
	}
	return worst.Security, nil, true
}

// markTarget is one cache entry of an answer with the validation of its
// piece.
type markTarget struct {
	ref entryRef
	res validator.Piece
}

// markEntries stores the result in the cache entries the answer was read
// from or stored as (cache.Mark: only while each is still the live entry):
// Security (so that cache hits keep it), the EDE of bogus and annotated
// insecure data, and a TTL no longer than the signatures allow
// (Result.TTL: RRSIG original TTL, signature expiration) or, for bogus
// data, the bogus TTL. Each entry gets the state of its own piece: in a
// secure CNAME to an insecure or bogus target, the CNAME stays secure, and
// the next question through the chain, the worst of the marks, needs no
// signature check. When the pieces do not add up to the whole (the chain
// itself is wrong) or validation did not reach one, only a single entry
// or an all-secure answer is marked, with the whole result.
func (r *Resolver) markEntries(out *outcome, res validator.AnswerResult, qclass uint16) {
	if res.Status == security.Indeterminate {
		return
	}
	var targets []markTarget
	for i, s := range out.sets {
		if s.entry != nil {
			targets = append(targets, markTarget{entryRef{s.name, s.rtype, qclass, false, s.entry}, res.Sets[i]})
		}
	}
	if out.denial != nil && out.denial.ref.entry != nil {
		targets = append(targets, markTarget{out.denial.ref, res.Denial})
	}
	if len(targets) == 0 {
		return
	}
	if !byPiece(targets, res.Status) {
		if len(targets) > 1 && res.Status != security.Secure {
			return
		}
		for i := range targets {
			targets[i].res = validator.Piece{Result: res.Result, Checked: true}
		}
	}
	for _, t := range targets {
		r.mark(t)
	}
}

// byPiece reports whether every target's piece was judged and the worst
// of them is the whole result: then each entry gets its own.
func byPiece(targets []markTarget, whole security.Status) bool {
	worst := security.Secure
	for _, t := range targets {
		if !t.res.Checked {
			return false
		}
		if t.res.Status.Worse(worst) {
			worst = t.res.Status
		}
	}
	return worst == whole
}

// mark gives one entry its piece's verdict. A piece cut short by this
// question's budget or a failed key fetch is not remembered for others.
func (r *Resolver) mark(t markTarget) {
	p := t.res
	if p.Status == security.Indeterminate || p.Err != nil || t.ref.entry.Security == p.Status {
		return
	}
	v := cache.Verdict{Security: p.Status, TTL: p.TTL}
	if p.Status == security.Bogus {
		v.TTL = uint32(maxBogusEntryTTL.Seconds())
	}
	if p.HasEDE() {
		v.EDE, v.EDEText = p.EDE, p.Reason
	}
	if ref := t.ref; ref.nxdomain {
		r.cache.MarkNXDomain(ref.name, ref.qclass, ref.entry, v)
	} else {
		r.cache.Mark(ref.name, ref.qtype, ref.qclass, ref.entry, v)
	}
}

// cacheOnlySecurity gives an answer from the cache alone (RD=0, nothing
// asked upstream) its validation state from the cache marks. With
// validation on and CD=0, data no validation has marked is not given out
// (it may be bogus: a CD=1 resolution cached it); bogus data is SERVFAIL.
// out is the structured answer behind res (nil for a failure).
func (r *Resolver) cacheOnlySecurity(q dns.Question, out *outcome, res *Result, cd bool) *Result {
	if r.dnssec == nil || cd || out == nil || !validatedRcode(res.Rcode) || r.answeredLocally(q) {
		return res
	}
	st, verr, ok := markedStatus(out)
	switch {
	case !ok:
		return &Result{Rcode: dns.RcodeRefused, ede: errNotCached}
	case st == security.Bogus:
		return &Result{Rcode: dns.RcodeServerFailure, Security: st, ede: verr}
	}
	res.Security, res.ede = st, verr
	return res
}

// validatedCachedResult answers canonical q wholly from the cache when
// every part of the answer carries a validation mark that is not bogus,
// without a flight or a signature check; nil otherwise (bogus included:
// the full path gives its SERVFAIL).
func (r *Resolver) validatedCachedResult(ctx context.Context, q dns.Question) (*outcome, *Result) {
	if r.dnssec == nil {
		return nil, nil
	}
	r.maybeRefreshAnchors()
	out, res := r.cachedLookup(ctx, q, newBudget(&r.limits, time.Now()))
	if out == nil || !validatedRcode(res.Rcode) || r.answeredLocally(q) {
		return nil, nil
	}
	st, verr, ok := markedStatus(out)
	if !ok || st == security.Bogus {
		return nil, nil
	}
	res.Security, res.ede = st, verr
	return out, res
}
