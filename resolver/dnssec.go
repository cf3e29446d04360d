package resolver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// DNSSECConfig turns on DNSSEC validation (RFC 4033-4035) when set in
// Config.DNSSEC. The zero value validates with the built-in IANA root
// anchors and the validator's default limits: DNSSEC on in one line is
//
//	cfg.DNSSEC = &resolver.DNSSECConfig{}
//
// New builds the validation on the resolver's own clock (Config.Clock) and
// makes the resolver its key source: DS and DNSKEY are fetched with
// validation off, drawing from the client question's own Budget.
type DNSSECConfig struct {
	// Anchors are the trust anchors, DS and/or DNSKEY records for one or
	// more zones; nil means the built-in IANA root anchors
	// (roothints.DefaultAnchors), which belong to the IANA root only: give
	// the anchors of a private root with its hints. Anchors of a zone that
	// Managed holds are left out (the managed state replaces them).
	Anchors []dns.RR
	// NegativeTrustAnchors turn validation off at and below these names
	// (RFC 7646): their data is Insecure with a reason saying so.
	NegativeTrustAnchors []string
	// Limits bound the validation work of one client question (KeyTrap,
	// NSEC3 hashing); the zero value means validator.DefaultLimits().
	Limits validator.Limits
	// Options are further validator options (key cache size, bogus TTL,
	// maximum key TTL).
	Options []validator.Option
	// Managed are RFC 5011 managed trust anchors: their zones' DNSKEY sets
	// are refreshed on RFC 5011's schedule and the state follows
	// rollovers. SaveManaged, when set, is called with Managed after every
	// refresh that changed it, to persist it.
	Managed     *validator.ManagedAnchors
	SaveManaged func(*validator.ManagedAnchors) error
}

// dnssec is the resolver's DNSSEC part (nil when validation is off): the
// validator, which fetches keys through the resolver from each question's
// own Budget (budgetKeys), the validated NSEC ranges
// kept for RFC 8198 answers, and the RFC 5011 refresh of managed anchors.
// The resolver marks its RRset cache with the results (Entry.Security, TTL
// capped by the signatures).
type dnssec struct {
	v       *validator.Validator
	denials *denialStore
	anchors *anchorRefresh // RFC 5011 refresh; nil without managed anchors
}

// newDNSSEC builds r's DNSSEC part from c on r's clock, with r as the key
// source.
func newDNSSEC(c *DNSSECConfig, r *Resolver) (*dnssec, error) {
	anchors := c.Anchors
	if anchors == nil {
		anchors = roothints.DefaultAnchors().Records()
	}
	opts := slices.Clone(c.Options)
	if c.Managed != nil {
		// The managed state replaces the static anchors of its zones.
		zones := c.Managed.Zones()
		anchors = slices.DeleteFunc(slices.Clone(anchors), func(rr dns.RR) bool {
			return slices.Contains(zones, canonical(rr.Header().Name))
		})
		opts = append(opts, validator.WithManagedAnchors(c.Managed))
	}
	for _, n := range c.NegativeTrustAnchors {
		if _, ok := dns.IsDomainName(n); !ok {
			return nil, fmt.Errorf("dnssec: negative trust anchor %q: not a domain name", n)
		}
	}
	if len(c.NegativeTrustAnchors) > 0 {
		opts = append(opts, validator.WithNegativeTrustAnchors(c.NegativeTrustAnchors...))
	}
	lim := c.Limits
	if lim == (validator.Limits{}) {
		lim = validator.DefaultLimits()
	}
	// No default key source: every validation fetches through its own
	// question's Budget (Resolver.dnssecState).
	v, err := validator.New(anchors, nil, r.cfg.Clock, lim, opts...)
	if err != nil {
		return nil, fmt.Errorf("dnssec: %w", err)
	}
	d := &dnssec{v: v, denials: newDenialStore(r.cfg.Clock)}
	if c.Managed != nil {
		d.anchors = &anchorRefresh{m: c.Managed, save: c.SaveManaged, done: make(chan struct{})}
	}
	return d, nil
}

// dnssecState is what validation keeps in a client question's Budget: the
// validator's budget, which retries and sub-fetches share so that nothing
// resets the caps, the key source bound to the question's Budget, and the
// TTL cap of the validated answer for the response.
type dnssecState struct {
	budget *validator.Budget
	keys   budgetKeys // the budget's KeySource
	ttl    uint32     // 0: no cap
}

// stateOf returns b's validation state, or nil when it has none.
func stateOf(b *Budget) *dnssecState {
	if b == nil {
		return nil
	}
	return b.dnssec.Load()
}

// dnssecState returns b's validation state, making it on first use: the
// validator's budget, fetching keys through r from b. r.dnssec is set.
func (r *Resolver) dnssecState(b *Budget) *dnssecState {
	if st := b.dnssec.Load(); st != nil {
		return st
	}
	st := &dnssecState{keys: budgetKeys{r: r, b: b}}
	st.budget = validator.NewBudget(r.dnssec.v.Limits()).FetchKeysWith(&st.keys)
	if !b.dnssec.CompareAndSwap(nil, st) {
		return b.dnssec.Load() // made meanwhile by a concurrent sub-resolution
	}
	return st
}

// budgetKeys is the validator's key source for one client question: DS
// and DNSKEY resolved with validation off (the validator checks what it
// gets), drawing from the question's own Budget, so that validation work
// cannot reset its limits.
type budgetKeys struct {
	r *Resolver
	b *Budget
}

func (k *budgetKeys) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	return k.r.query(ctx, name, qtype, k.b)
}

// validatedTTLs caps the TTLs of a validated answer by what its signatures
// allow (RRSIG original TTL, time to expiration), copying only the records
// that change, so that the response and the ready-to-send answer cache do
// not outlive the signatures. Without a cap it returns the sections as they are.
func validatedTTLs(b *Budget, answer, authority []dns.RR) ([]dns.RR, []dns.RR) {
	st := stateOf(b)
	if st == nil || st.ttl == 0 {
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

// validate gives the finished answer to q its status, once per client
// question (never for CD=1), drawing from b: an *Error with the EDE for
// Bogus (SERVFAIL) and, as information, for Insecure answers the validator
// attached one to (algorithms, digests, NSEC3 iterations). A bogus answer
// is resolved again through rs at the zone's other servers (see
// dnssec_retry.go); the answer returned is the one validated last.
// r.dnssec is set.
func (r *Resolver) validate(ctx context.Context, q dns.Question, out *outcome, b *Budget, rs *resolution) (*outcome, security.Status, *Error) {
	if !validatedRcode(out.rcode) {
		return out, security.Indeterminate, nil
	}
	d := r.dnssec
	r.maybeRefreshAnchors()
	if r.answeredLocally(q) {
		// RFC 6761 / RFC 6303 names answered by local policy: nothing
		// signed them, and they are not bogus for it.
		return out, security.Indeterminate, nil
	}
	if st, err, ok := markedStatus(out); ok {
		return out, st, err
	}
	st := r.dnssecState(b)
	res := d.v.ValidateAnswer(ctx, q, validatorAnswer(out), st.budget)
	r.stats.validated(res.Result)
	cq := question{q.Name, q.Qtype, q.Qclass}
	for retries := 0; res.Status == security.Bogus && res.Err == nil && retries < maxBogusRetries &&
		r.prepareBogusRetry(cq, out, res, b); retries++ {
		again, err := rs.lookup(ctx, cq, 0)
		if err != nil || !validatedRcode(again.rcode) {
			// The other servers failed otherwise: the bogus answer
			// stands for this question, but nothing confirmed it.
			return out, res.Status, resultError(res.Result)
		}
		out = again
		if st, err, ok := markedStatus(out); ok {
			return out, st, err
		}
		res = d.v.ValidateAnswer(ctx, q, validatorAnswer(out), st.budget)
	}
	if res.Status == security.Secure {
		st.ttl = res.TTL
	}
	if r.log.Enabled(ctx, slog.LevelDebug) {
		r.log.Debug("validated", "name", q.Name, "type", dns.TypeToString[q.Qtype],
			"status", res.Status, "ede", res.EDE, "reason", res.Reason)
	}
	if res.Err == nil {
		// Budget exhaustion and fetch failures belong to this client
		// question; they are not remembered for others.
		r.markEntries(out, res, q.Qclass)
		r.keepProofs(res, out.authority, q.Qclass)
	}
	return out, res.Status, resultError(res.Result)
}

// validatorAnswer is the validator's view of out: its RRsets in chain
// order with their RRSIGs, and the authority records.
func validatorAnswer(out *outcome) validator.Answer {
	a := validator.Answer{Rcode: out.rcode, Sets: make([]validator.RRset, len(out.sets)), Authority: out.authority}
	for i, s := range out.sets {
		a.Sets[i] = validator.RRset{RRs: s.rrs, Sigs: s.sigs}
	}
	return a
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

// maxBogusEntryTTL bounds how long a bogus answer's data stays in the
// cache (marked bogus) before it is fetched and validated again; the
// cache's own MaxBogusTTL applies too.
const maxBogusEntryTTL = 60 * time.Second
