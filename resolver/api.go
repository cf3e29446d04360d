package resolver

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// Result is the outcome of resolving one question.
type Result struct {
	// Rcode is NOERROR (data or NODATA), NXDOMAIN, YXDOMAIN (a DNAME
	// substitution longer than 255 octets, RFC 6672 2.2) or SERVFAIL;
	// REFUSED or NOTIMP for questions a resolver does not serve (non-IN
	// classes, zone transfers and other meta-types).
	Rcode int
	// Answer is the answer section as a server sends it: any CNAME/DNAME
	// chain, then the data, with RRSIGs when the upstream servers gave
	// them. Records and Signatures take it apart for programs.
	Answer []dns.RR
	// Authority holds the SOA (and denial proofs) of a negative answer.
	Authority []dns.RR
	// Security is the DNSSEC status (Indeterminate without a validator).
	Security security.Status
	// ede is the Extended DNS Error (RFC 8914) sent with the response: why,
	// on a failure; information such as EDE 27 on an answer.
	ede *Error
}

// ExtendedError returns the Extended DNS Error (RFC 8914) that goes with
// the response, or nil: why the question failed (Exchange's SERVFAIL,
// REFUSED or NOTIMP), or information attached to an answer, such as
// EDE 27 (Unsupported NSEC3 Iterations Value) on an insecure one.
func (res *Result) ExtendedError() *Error { return res.ede }

// failed reports whether res is a failure rather than an answer: SERVFAIL,
// REFUSED or NOTIMP. NXDOMAIN and NODATA are answers.
func (res *Result) failed() bool {
	switch res.Rcode {
	case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented:
		return true
	}
	return false
}

// Records returns the answer's records of type rtype (for an A question,
// the A records at the end of any CNAME chain), without the chain and
// without signatures, so that a loop may assert their type:
//
//	for _, rr := range res.Records(dns.TypeA) {
//		fmt.Println(rr.(*dns.A).A)
//	}
func (res *Result) Records(rtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range res.Answer {
		if rr.Header().Rrtype == rtype {
			out = append(out, rr)
		}
	}
	return out
}

// Signatures returns the RRSIGs of the answer section, over the data and
// over any CNAME/DNAME chain, for programs that check or keep them.
func (res *Result) Signatures() []*dns.RRSIG {
	var out []*dns.RRSIG
	for _, rr := range res.Answer {
		if sig, ok := rr.(*dns.RRSIG); ok {
			out = append(out, sig)
		}
	}
	return out
}

// Resolve resolves name/qtype in class IN. A question that gets no answer
// (SERVFAIL, or REFUSED/NOTIMP for types a resolver does not resolve)
// returns a nil Result and an *Error saying why, with that Rcode and an
// Extended DNS Error code; NXDOMAIN and NODATA are answers, not errors.
func (r *Resolver) Resolve(ctx context.Context, name string, qtype uint16) (*Result, error) {
	res := r.resolve(ctx, dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}, false)
	if res.failed() {
		return nil, res.failure()
	}
	return res, nil
}

// failure is the error of a failed res, carrying its Rcode (a copy: the
// Error may be shared with other questions through a cache entry).
func (res *Result) failure() *Error {
	e := Error{EDE: dns.ExtendedErrorCodeOther, Text: "no answer"}
	if res.ede != nil {
		e = *res.ede
	}
	e.Rcode, e.Security = res.Rcode, res.Security
	return &e
}

// resolve answers one question, sharing the work with identical concurrent
// questions (unless traced), and applies the root key sentinel.
func (r *Resolver) resolve(ctx context.Context, q dns.Question, cd bool) *Result {
	return r.applySentinel(q, r.resolveShared(ctx, q, cd))
}

// resolveShared answers one question, sharing the work with identical
// concurrent questions (unless traced).
func (r *Resolver) resolveShared(ctx context.Context, q dns.Question, cd bool) *Result {
	if _, ok := dns.IsDomainName(q.Name); !ok {
		return &Result{Rcode: dns.RcodeServerFailure, ede: &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("invalid name %q", q.Name)}}
	}
	q.Name = canonical(q.Name)
	if rcode, why := unservedQuestion(q); rcode != dns.RcodeSuccess {
		return &Result{Rcode: rcode, ede: &Error{EDE: dns.ExtendedErrorCodeNotSupported, Text: why}}
	}
	if tracerFrom(ctx) != nil {
		return r.run(ctx, q, cd)
	}
	var out *outcome
	var res *Result
	if r.dnssec == nil || cd {
		// Fast path: an answer wholly in the cache needs no flight.
		out, res = r.cachedLookup(ctx, q, newBudget(&r.limits, time.Now()))
		if res != nil && res.failed() {
			res = failedChain(res, out, cd)
		}
	} else {
		out, res = r.validatedCachedResult(ctx, q) // the same, for answers whose validation is marked
	}
	if res != nil {
		r.maybePrefetch(q, cd, out)
		return res
	}
	key := flightKey{name: q.Name, qtype: q.Qtype, qclass: q.Qclass, cd: cd}
	run := func(ctx context.Context) *Result { return r.run(ctx, q, cd) }
	if r.cfg.SharedCache != nil && !cd {
		run = func(ctx context.Context) *Result { return r.runShared(ctx, q) }
	}
	if r.stale != nil {
		return r.resolveOrStale(ctx, q, cd, key, run)
	}
	return r.flights.do(ctx, key, r.limits.ClientDeadline, run)
}

// unservedQuestion refuses what a recursive resolver does not resolve:
// classes other than IN (CHAOS and HESIOD names live on each server) and
// the meta-types that are not data (zone transfers, OPT, TSIG, ...).
func unservedQuestion(q dns.Question) (int, string) {
	if q.Qclass != dns.ClassINET {
		return dns.RcodeRefused, "only class IN is resolved"
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeNone:
		return dns.RcodeNotImplemented, fmt.Sprintf("type %s is not resolved", dns.TypeToString[q.Qtype])
	}
	return dns.RcodeSuccess, ""
}

// run resolves q with a fresh Budget.
func (r *Resolver) run(ctx context.Context, q dns.Question, cd bool) *Result {
	return r.runWith(ctx, q, cd, newBudget(&r.limits, time.Now()))
}

// runWith resolves q drawing from b.
func (r *Resolver) runWith(ctx context.Context, q dns.Question, cd bool, b *Budget) *Result {
	return r.resolveWith(ctx, q, cd, b, false)
}

// resolveWith resolves q drawing from b; refresh resolves the question's
// own chain afresh, past the cache (a prefetch).
func (r *Resolver) resolveWith(ctx context.Context, q dns.Question, cd bool, b *Budget, refresh bool) *Result {
	ctx, cancel := context.WithDeadline(ctx, b.Deadline())
	defer cancel()
	rs := &resolution{r: r, budget: b, trace: tracerFrom(ctx), refresh: refresh, background: isBackground(ctx)}
	defer r.releaseZoneProbes(rs)
	out, err := rs.lookup(ctx, question{q.Name, q.Qtype, q.Qclass}, 0)
	if err != nil {
		e := asError(err)
		r.stats.failed(e)
		r.log.Debug("resolution failed", "name", q.Name, "type", dns.TypeToString[q.Qtype], "err", e)
		return failedChain(&Result{Rcode: dns.RcodeServerFailure, ede: e}, out, cd)
	}
	if r.dnssec != nil && !cd {
		// validate may resolve q again at other servers (a bogus answer).
		out, status, verr := r.validate(ctx, q, out, b, rs)
		res := &Result{Rcode: out.rcode, Answer: out.answer(), Authority: out.authority}
		res.Security = status
		res.ede = verr // on an answer: information such as EDE 27
		if status == security.Bogus {
			if verr == nil {
				verr = &Error{EDE: dns.ExtendedErrorCodeDNSBogus, Text: "validation failed"}
			}
			return &Result{Rcode: dns.RcodeServerFailure, Security: status, ede: verr}
		}
		res.Answer, res.Authority = validatedTTLs(b, res.Answer, res.Authority)
		return res
	}
	return &Result{Rcode: out.rcode, Answer: out.answer(), Authority: out.authority}
}

// Exchange answers a client query message: the response has the query's ID
// and question as asked, RD echoed, RA set, an OPT record (1232) when the
// query had one, the DO-dependent RRSIGs, and on SERVFAIL an Extended DNS
// Error saying why. The Result (rcode, security status, error) comes with
// it; it is nil only for a query without exactly one question (FORMERR).
func (r *Resolver) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, *Result) {
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		return m, nil
	}
	opt := q.IsEdns0()
	do := opt != nil && opt.Do()
	var res *Result
	if q.RecursionDesired {
		res = r.resolve(ctx, q.Question[0], q.CheckingDisabled)
	} else {
		res = r.applySentinel(q.Question[0], r.fromCacheOnly(ctx, q.Question[0], q.CheckingDisabled))
	}
	return buildResponse(q, res, do), res
}

// fromCacheOnly answers a query without RD from local data and the cache
// (RFC 1034 4.3.1), sending nothing upstream, with the validation state
// of the cache marks unless cd (see cacheOnlySecurity).
func (r *Resolver) fromCacheOnly(ctx context.Context, q dns.Question, cd bool) *Result {
	if _, ok := dns.IsDomainName(q.Name); !ok {
		return &Result{Rcode: dns.RcodeServerFailure, ede: &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("invalid name %q", q.Name)}}
	}
	q.Name = canonical(q.Name)
	if rcode, why := unservedQuestion(q); rcode != dns.RcodeSuccess {
		return &Result{Rcode: rcode, ede: &Error{EDE: dns.ExtendedErrorCodeNotSupported, Text: why}}
	}
	if out, res := r.cachedLookup(ctx, q, newBudget(&r.limits, time.Now())); res != nil {
		if res.failed() {
			return failedChain(res, out, cd)
		}
		return r.cacheOnlySecurity(q, out, res, cd)
	}
	return &Result{Rcode: dns.RcodeRefused, ede: errNotCached}
}

// failedChain gives a failed res the chain out that led to it (a CNAME or
// DNAME loop) when the client asked with CD: it checks the records itself
// (issue 15 point 7). Without CD the unvalidated chain stays out.
func failedChain(res *Result, out *outcome, cd bool) *Result {
	if cd && out != nil {
		res.Answer = out.answer()
	}
	return res
}

// cachedLookup answers canonical q from local data and the cache alone,
// drawing from b: the structured answer (nil on a failure) and its
// Result, or nil, nil when that needs the network.
func (r *Resolver) cachedLookup(ctx context.Context, q dns.Question, b *Budget) (*outcome, *Result) {
	rs := &resolution{r: r, budget: b, cacheOnly: true}
	out, err := rs.lookup(ctx, question{q.Name, q.Qtype, q.Qclass}, 0)
	switch {
	case err == errNotCached:
		return nil, nil
	case err != nil:
		// out is nil, or the chain up to a loop (see failedChain).
		return out, &Result{Rcode: dns.RcodeServerFailure, ede: asError(err)}
	}
	return out, &Result{Rcode: out.rcode, Answer: out.answer(), Authority: out.authority}
}

// Query resolves name/qtype with validation off and returns the response
// as a message (answer, authority with the denial proofs, rcode), or an
// error on SERVFAIL.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	return r.query(ctx, name, qtype, nil)
}

// query is Query drawing from b, or from a fresh Budget (shared with
// identical concurrent questions) when b is nil. The validator's key
// fetches (budgetKeys) pass the client question's Budget.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16, b *Budget) (*dns.Msg, error) {
	q := dns.Question{Name: canonical(name), Qtype: qtype, Qclass: dns.ClassINET}
	if _, ok := dns.IsDomainName(q.Name); !ok {
		return nil, fmt.Errorf("query %q: not a domain name", name)
	}
	var res *Result
	if b != nil {
		res = r.runWith(ctx, q, true, b)
	} else {
		res = r.resolve(ctx, q, true)
	}
	if res.failed() {
		return nil, fmt.Errorf("query %s %s: %w", q.Name, dns.TypeToString[qtype], res.failure())
	}
	m := new(dns.Msg)
	m.SetQuestion(q.Name, qtype)
	m.Response, m.Authoritative = true, false
	m.Rcode = res.Rcode
	m.Answer, m.Ns = res.Answer, res.Authority
	return m, nil
}
