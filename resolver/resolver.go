package resolver

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/security"
)

// SpecialNames says whether special-use names are answered locally.
type SpecialNames uint8

const (
	// SpecialNamesAuto answers them locally with the built-in root hints
	// and resolves them through the operator's root when hints are given
	// (a private root may delegate test. or a reverse zone); localhost. is
	// still loopback when that root does not have it.
	SpecialNamesAuto SpecialNames = iota
	// SpecialNamesLocal always answers them locally.
	SpecialNamesLocal
	// SpecialNamesResolve never answers them locally.
	SpecialNamesResolve
)

// Validator is the seam for DNSSEC validation (nil: off, every answer is
// security.Indeterminate). It is called once per client question (not for
// CD=1 queries) with the finished answer and the question's Budget, whose
// Validation field the validator may use for its own caps; it fetches DS
// and DNSKEY through Resolver.Query with the ctx it was given, which draws
// from the same Budget. A Bogus result turns the answer into SERVFAIL with
// the returned error's EDE.
type Validator interface {
	Validate(ctx context.Context, q dns.Question, rcode int, answer, authority []dns.RR, b *Budget) (security.Status, *Error)
}

// Config configures a Resolver. Start from DefaultConfig.
type Config struct {
	// Hints are the root servers; nil means roothints.Default().
	Hints *roothints.Hints
	// Clock is the DNS clock for the cache it makes; nil means the system
	// clock. Network timeouts use the real clock regardless.
	Clock clock.Clock
	// Cache is the RRset cache; nil makes one with default sizes.
	Cache *cache.Cache
	// QNameMinimisation sends each server only the labels it needs to see
	// (RFC 9156), with the RFC's fallbacks.
	QNameMinimisation bool
	// Use0x20 randomises the case of upstream query names and requires the
	// reply to echo it, falling back for servers that do not.
	Use0x20 bool
	// UpstreamIPv4 and UpstreamIPv6 choose the address families of the
	// servers queried.
	UpstreamIPv4, UpstreamIPv6 bool
	// OutgoingAddrs are source addresses for upstream queries (one is
	// picked per query, per family); empty lets the kernel choose.
	OutgoingAddrs []netip.Addr
	// UpstreamLoopback allows queries to loopback servers. It is implied
	// when every root hint address is loopback (a lab).
	UpstreamLoopback bool
	// UpstreamPort is the servers' port; 0 means 53.
	UpstreamPort uint16
	// SpecialNames chooses local answers for RFC 6761 / RFC 6303 names.
	SpecialNames SpecialNames
	// Limits bound the work of one client question.
	Limits Limits
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
	// Validator validates answers; nil turns validation off.
	Validator Validator
}

// DefaultConfig returns the defaults: built-in root hints, QNAME
// minimisation and 0x20 on, IPv4 and IPv6, default limits.
func DefaultConfig() Config {
	return Config{
		QNameMinimisation: true,
		Use0x20:           true,
		UpstreamIPv4:      true,
		UpstreamIPv6:      true,
		Limits:            DefaultLimits(),
	}
}

// Resolver resolves questions iteratively. It is safe for concurrent use.
type Resolver struct {
	cfg     Config
	limits  Limits
	cache   *cache.Cache
	sel     *selector
	x       *exchanger
	policy  addrPolicy
	roots   rootServers
	port    uint16
	special bool
	// localhostFallback answers localhost locally when the operator's
	// root does not (SpecialNamesAuto with own hints).
	localhostFallback bool
	log               *slog.Logger
	flights           flightGroup

	// started is set by Start; priming is set while a priming query runs.
	started          atomic.Bool
	priming          atomic.Bool
	primeMu          sync.Mutex
	primeCtx         context.Context
	lastPrimeFailure time.Time
}

// New makes a Resolver from cfg.
func New(cfg Config) (*Resolver, error) {
	if !cfg.UpstreamIPv4 && !cfg.UpstreamIPv6 {
		return nil, fmt.Errorf("resolver: neither IPv4 nor IPv6 upstream is enabled")
	}
	builtin := cfg.Hints == nil
	if builtin {
		cfg.Hints = roothints.Default()
	}
	roots, err := rootsFrom(cfg.Hints)
	if err != nil {
		return nil, fmt.Errorf("resolver: root hints: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Cache == nil {
		cfg.Cache = cache.New(cache.Config{Clock: cfg.Clock})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{
		cfg:    cfg,
		limits: cfg.Limits.withDefaults(),
		cache:  cfg.Cache,
		roots:  roots,
		port:   cfg.UpstreamPort,
		log:    cfg.Logger,
		x:      newExchanger(),
		policy: addrPolicy{
			ipv4:          cfg.UpstreamIPv4,
			ipv6:          cfg.UpstreamIPv6,
			allowLoopback: cfg.UpstreamLoopback || cfg.Hints.AllLoopback(),
		},
	}
	if r.port == 0 {
		r.port = 53
	}
	for _, a := range cfg.OutgoingAddrs {
		if a = a.Unmap(); a.Is4() {
			r.x.local4 = append(r.x.local4, a)
		} else {
			r.x.local6 = append(r.x.local6, a)
		}
	}
	switch cfg.SpecialNames {
	case SpecialNamesLocal:
		r.special = true
	case SpecialNamesAuto:
		r.special = builtin
		r.localhostFallback = !builtin
	}
	r.sel = newSelector(&r.limits)
	r.primeCtx = context.Background()
	return r, nil
}

// Cache returns the RRset cache the resolver uses.
func (r *Resolver) Cache() *cache.Cache { return r.cache }

// Limits returns the limits in force (defaults filled in).
func (r *Resolver) Limits() Limits { return r.limits }

// Result is the outcome of resolving one question.
type Result struct {
	// Rcode is NOERROR (data or NODATA), NXDOMAIN or SERVFAIL; REFUSED or
	// NOTIMP for questions a resolver does not serve (non-IN classes,
	// zone transfers and other meta-types).
	Rcode int
	// Answer is the answer section: any CNAME/DNAME chain, then the data,
	// with RRSIGs when the upstream servers gave them.
	Answer []dns.RR
	// Authority holds the SOA (and denial proofs) of a negative answer.
	Authority []dns.RR
	// Security is the DNSSEC status (Indeterminate without a validator).
	Security security.Status
	// Err says why, when Rcode is SERVFAIL.
	Err *Error
}

// Resolve resolves name/qtype in class IN. The Result is never nil; the
// error is its Err when the answer is SERVFAIL.
func (r *Resolver) Resolve(ctx context.Context, name string, qtype uint16) (*Result, error) {
	res := r.resolve(ctx, dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}, false)
	if res.Err != nil && res.Rcode == dns.RcodeServerFailure {
		return res, res.Err
	}
	return res, nil
}

// resolve answers one question, sharing the work with identical concurrent
// questions (unless traced).
func (r *Resolver) resolve(ctx context.Context, q dns.Question, cd bool) *Result {
	if _, ok := dns.IsDomainName(q.Name); !ok {
		return &Result{Rcode: dns.RcodeServerFailure, Err: &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("invalid name %q", q.Name)}}
	}
	q.Name = canonical(q.Name)
	if rcode, why := unservedQuestion(q); rcode != dns.RcodeSuccess {
		return &Result{Rcode: rcode, Err: &Error{EDE: dns.ExtendedErrorCodeNotSupported, Text: why}}
	}
	if tracerFrom(ctx) != nil {
		return r.run(ctx, q, cd)
	}
	if r.cfg.Validator == nil || cd {
		// Fast path: an answer wholly in the cache needs no flight.
		if res := r.cachedResult(ctx, q); res != nil {
			return res
		}
	}
	key := flightKey{name: q.Name, qtype: q.Qtype, qclass: q.Qclass, cd: cd}
	return r.flights.do(ctx, key, r.limits.ClientDeadline, func(ctx context.Context) *Result {
		return r.run(ctx, q, cd)
	})
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
	ctx, cancel := context.WithDeadline(ctx, b.Deadline())
	defer cancel()
	rs := &resolution{r: r, budget: b, trace: tracerFrom(ctx)}
	out, err := rs.lookup(ctx, question{q.Name, q.Qtype, q.Qclass}, 0)
	if err != nil {
		e := asError(err)
		r.log.Debug("resolution failed", "name", q.Name, "type", dns.TypeToString[q.Qtype], "err", e)
		return &Result{Rcode: dns.RcodeServerFailure, Err: e}
	}
	res := &Result{Rcode: out.rcode, Answer: out.answer, Authority: out.authority}
	if r.cfg.Validator != nil && !cd {
		vctx := context.WithValue(ctx, budgetKey{}, b)
		status, verr := r.cfg.Validator.Validate(vctx, q, res.Rcode, res.Answer, res.Authority, b)
		res.Security = status
		if status == security.Bogus {
			if verr == nil {
				verr = &Error{EDE: dns.ExtendedErrorCodeDNSBogus, Text: "validation failed"}
			}
			return &Result{Rcode: dns.RcodeServerFailure, Security: status, Err: verr}
		}
	}
	return res
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
		res = r.fromCacheOnly(ctx, q.Question[0])
	}
	return buildResponse(q, res, do), res
}

// fromCacheOnly answers a query without RD from local data and the cache
// (RFC 1034 4.3.1), sending nothing upstream.
func (r *Resolver) fromCacheOnly(ctx context.Context, q dns.Question) *Result {
	if _, ok := dns.IsDomainName(q.Name); !ok {
		return &Result{Rcode: dns.RcodeServerFailure, Err: &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("invalid name %q", q.Name)}}
	}
	q.Name = canonical(q.Name)
	if rcode, why := unservedQuestion(q); rcode != dns.RcodeSuccess {
		return &Result{Rcode: rcode, Err: &Error{EDE: dns.ExtendedErrorCodeNotSupported, Text: why}}
	}
	if res := r.cachedResult(ctx, q); res != nil {
		return res
	}
	return &Result{Rcode: dns.RcodeRefused, Err: errNotCached}
}

// cachedResult answers canonical q from local data and the cache alone,
// CNAME chains included, or returns nil when that needs the network.
func (r *Resolver) cachedResult(ctx context.Context, q dns.Question) *Result {
	rs := &resolution{r: r, budget: newBudget(&r.limits, time.Now()), cacheOnly: true}
	out, err := rs.lookup(ctx, question{q.Name, q.Qtype, q.Qclass}, 0)
	switch {
	case err == errNotCached:
		return nil
	case err != nil:
		return &Result{Rcode: dns.RcodeServerFailure, Err: asError(err)}
	}
	return &Result{Rcode: out.rcode, Answer: out.answer, Authority: out.authority}
}

// Query resolves name/qtype with validation off and returns the response
// as a message (answer, authority with the denial proofs, rcode), or an
// error on SERVFAIL. It is the key source for the validator's DS and DNSKEY
// fetches: called with the context the Validator was given, it draws from
// the same client Budget, so validation work cannot reset the limits.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := dns.Question{Name: canonical(name), Qtype: qtype, Qclass: dns.ClassINET}
	if _, ok := dns.IsDomainName(q.Name); !ok {
		return nil, fmt.Errorf("query %q: not a domain name", name)
	}
	var res *Result
	if b, ok := ctx.Value(budgetKey{}).(*Budget); ok {
		res = r.runWith(ctx, q, true, b)
	} else {
		res = r.resolve(ctx, q, true)
	}
	if res.Err != nil {
		return nil, fmt.Errorf("query %s %s: %w", q.Name, dns.TypeToString[qtype], res.Err)
	}
	m := new(dns.Msg)
	m.SetQuestion(q.Name, qtype)
	m.Response, m.Authoritative = true, false
	m.Rcode = res.Rcode
	m.Answer, m.Ns = res.Answer, res.Authority
	return m, nil
}

// budgetKey carries the client Budget to the Validator's key fetches.
type budgetKey struct{}

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
