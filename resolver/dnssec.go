package resolver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// DNSSEC is the resolver's DNSSEC validation: a validator.Validator behind
// the Validator seam. Give it to Config.Validator; New binds it to the
// Resolver, which then serves as its key source (DS and DNSKEY fetched
// with validation off, from the client's own Budget). It also marks the
// RRset cache with the results (Entry.Security, TTL capped by the
// signatures) and keeps validated NSEC ranges for RFC 8198 answers.
//
// One DNSSEC serves one Resolver, on the same DNS clock as the resolver's
// cache (Config.Clock).
type DNSSEC struct {
	v       *validator.Validator
	clk     clock.Clock
	r       *Resolver // set by bind, before the first query
	src     *resolverKeySource
	denials *denialStore
	anchors *anchorRefresh // RFC 5011 refresh; nil without managed anchors
}

var _ Validator = (*DNSSEC)(nil)

// NewDNSSEC makes the validation for trust anchors (DS and/or DNSKEY
// records) on the DNS clock clk, with the validator's default limits and
// opts (negative trust anchors, RFC 5011 managed anchors, ...).
func NewDNSSEC(anchors []dns.RR, clk clock.Clock, opts ...validator.Option) (*DNSSEC, error) {
	if clk == nil {
		clk = clock.System{}
	}
	d := &DNSSEC{clk: clk, src: &resolverKeySource{}, denials: newDenialStore(clk)}
	v, err := validator.New(anchors, d.src, clk, validator.DefaultLimits(), opts...)
	if err != nil {
		return nil, fmt.Errorf("dnssec: %w", err)
	}
	d.v = v
	return d, nil
}

// Validator returns the validator behind d.
func (d *DNSSEC) Validator() *validator.Validator { return d.v }

// bind makes r the key source; New calls it once.
func (d *DNSSEC) bind(r *Resolver) {
	d.r = r
	d.src.r = r
}

// resolverKeySource answers the validator's DS and DNSKEY questions with
// Resolver.Query: no validation (the validator checks what it gets), and
// the client Budget rides in the context.
type resolverKeySource struct{ r *Resolver }

func (s *resolverKeySource) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	if s.r == nil {
		return nil, errors.New("dnssec: key source used before the resolver was made")
	}
	return s.r.Query(ctx, name, qtype)
}

// dnssecState is what validation keeps in a client question's Budget
// (Budget.Validation): the validator's budget, which retries and
// sub-fetches share so that nothing resets the caps, and the TTL cap of the
// validated answer for the response.
type dnssecState struct {
	budget *validator.Budget
	ttl    uint32 // 0: no cap

	mu sync.Mutex
	// denied are the negative answers this question synthesised from
	// validated NSEC/NSEC3 records (RFC 8198): secure without a
	// signature check.
	denied []synthesisedDenial
}

// synthesisedDenial is one negative answer synthesised from validated
// denial records.
type synthesisedDenial struct {
	q     question
	rcode int
}

// synthesised records that q was answered rcode from validated records.
func (st *dnssecState) synthesised(q question, rcode int) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.denied = append(st.denied, synthesisedDenial{q, rcode})
}

// wasSynthesised reports whether this question answered name/qtype with
// rcode from validated records. st may be nil (no validation state).
func (st *dnssecState) wasSynthesised(name string, qtype, qclass uint16, rcode int) bool {
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range st.denied {
		if s.rcode == rcode && s.q == (question{name, qtype, qclass}) {
			return true
		}
	}
	return false
}

// stateOf returns b's validation state, or nil when it has none.
func stateOf(b *Budget) *dnssecState {
	if b == nil {
		return nil
	}
	st, _ := b.Validation.(*dnssecState)
	return st
}

// state returns b's validation state, making it on first use.
func (d *DNSSEC) state(b *Budget) *dnssecState {
	if st, ok := b.Validation.(*dnssecState); ok {
		return st
	}
	st := &dnssecState{budget: validator.NewBudget(d.v.Limits())}
	b.Validation = st
	return st
}

// validationBudget returns the validator's budget of b.
func (d *DNSSEC) validationBudget(b *Budget) *validator.Budget { return d.state(b).budget }

// validatedTTLs caps the TTLs of a validated answer by what its signatures
// allow (RRSIG original TTL, time to expiration), copying only the records
// that change, so that the response and the ready-to-send answer cache do
// not outlive the signatures. Without a cap it returns the sections as they are.
func validatedTTLs(b *Budget, answer, authority []dns.RR) ([]dns.RR, []dns.RR) {
	st, ok := b.Validation.(*dnssecState)
	if !ok || st.ttl == 0 {
		return answer, authority
	}
	return capTTLs(answer, st.ttl), capTTLs(authority, st.ttl)
}

func capTTLs(rrs []dns.RR, ttl uint32) []dns.RR {
	var out []dns.RR
	for i, rr := range rrs {
		if rr.Header().Ttl <= ttl {
			continue
		}
		if out == nil {
			out = append([]dns.RR(nil), rrs...)
		}
		c := dns.Copy(rr)
		c.Header().Ttl = ttl
		out[i] = c
	}
	if out == nil {
		return rrs
	}
	return out
}

// Validate implements Validator: a status for the finished answer, an
// *Error with the EDE for Bogus (SERVFAIL) and, as information, for
// Insecure answers the validator attached one to (algorithms, digests,
// NSEC3 iterations).
func (d *DNSSEC) Validate(ctx context.Context, q dns.Question, rcode int, answer, authority []dns.RR, b *Budget) (security.Status, *Error) {
	if !validatedRcode(rcode) {
		return security.Indeterminate, nil
	}
	d.maybeRefreshAnchors()
	if d.r.answeredLocally(q) {
		// RFC 6761 / RFC 6303 names answered by local policy: nothing
		// signed them, and they are not bogus for it.
		return security.Indeterminate, nil
	}
	if st, err, ok := d.cachedStatus(q, rcode, answer, stateOf(b)); ok {
		return st, err
	}
	st := d.state(b)
	res, parts := d.v.ValidateParts(ctx, q, rcode, answer, authority, st.budget)
	if res.Status == security.Secure {
		st.ttl = res.TTL
	}
	if d.r.log.Enabled(ctx, slog.LevelDebug) {
		d.r.log.Debug("validated", "name", q.Name, "type", dns.TypeToString[q.Qtype],
			"status", res.Status, "ede", res.EDE, "reason", res.Reason)
	}
	if res.Err == nil {
		// Budget exhaustion and fetch failures belong to this client
		// question; they are not remembered for others.
		d.remember(q, rcode, answer, authority, res, parts)
	}
	return res.Status, resultError(res)
}

// validatedRcode reports whether answers with rcode are validated:
// NOERROR, NXDOMAIN, and YXDOMAIN below a DNAME (RFC 6672 2.2, where the
// signed DNAME is the answer).
func validatedRcode(rcode int) bool {
	return rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError || rcode == dns.RcodeYXDomain
}

// answeredLocally reports whether the resolver answers q itself (special-use
// names, the localhost fallback under an operator's root).
func (r *Resolver) answeredLocally(q dns.Question) bool {
	name := canonical(q.Name)
	if r.localhostFallback && isSubdomain(name, "localhost.") {
		return true
	}
	if !r.special {
		return false
	}
	_, ok := specialAnswer(question{name, q.Qtype, q.Qclass})
	return ok
}

// resultError turns a validator Result into the client's EDE: always for
// Bogus, and for other states when the validator gave a code.
func resultError(res validator.Result) *Error {
	switch {
	case res.Status == security.Bogus:
		code := res.EDE
		if !res.HasEDE() {
			code = dns.ExtendedErrorCodeDNSBogus
		}
		return &Error{EDE: code, Text: res.Reason, Err: res.Err}
	case res.HasEDE():
		return &Error{EDE: res.EDE, Text: res.Reason}
	}
	return nil
}

// remember records a validation result where later questions find it: the
// RRset cache's security status and TTL, and the NSEC/NSEC3 records that
// secure denial proofs verified, for RFC 8198.
func (d *DNSSEC) remember(q dns.Question, rcode int, answer, authority []dns.RR, res validator.Result, parts []validator.Part) {
	d.markCache(q, rcode, answer, res, parts)
	d.keepProofs(parts, authority, q.Qclass)
}

// maxBogusEntryTTL bounds how long a bogus answer's data stays in the
// cache (marked bogus) before it is fetched and validated again; the
// cache's own MaxBogusTTL applies too.
const maxBogusEntryTTL = 60 * time.Second
