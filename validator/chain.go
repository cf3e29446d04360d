package validator

import (
	"context"
	"errors"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/security"
)

// KeySource answers the DS and DNSKEY questions of the chain walk. The
// resolver implements it, one per client query (Budget.FetchKeysWith): it
// resolves the question (DS at the parent side of a cut) from that query's
// budget, with validation disabled for that fetch, and returns the full
// response, authority section included, because the validator checks it
// itself. Errors are transport failures; a negative answer is a response.
// Query must not call back into the Validator: concurrent walks share
// fetches, and a fetch that waited on validation would wait on itself.
type KeySource interface {
	Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}

// Option configures a Validator.
type Option func(*Validator)

// WithNegativeTrustAnchors turns validation off at and below the given
// names (RFC 7646): their data is reported Insecure with a reason saying so.
func WithNegativeTrustAnchors(names ...string) Option {
	return func(v *Validator) {
		for _, n := range names {
			v.ntas = append(v.ntas, dnsname.Canonical(n))
		}
	}
}

// WithKeyCacheSize bounds the number of zone states kept (default 10000).
func WithKeyCacheSize(n int) Option { return func(v *Validator) { v.cacheSize = n } }

// WithBogusTTL sets how long a bogus zone state is remembered (default 60 s,
// as Unbound's val-bogus-ttl): long enough to stop a bogus zone from costing
// validations on every query, short enough to recover from a repaired zone.
func WithBogusTTL(d time.Duration) Option { return func(v *Validator) { v.bogusTTL = d } }

// WithMaxKeyTTL caps how long a validated zone state is cached (default one
// day), whatever the TTLs say.
func WithMaxKeyTTL(d time.Duration) Option { return func(v *Validator) { v.maxTTL = d } }

type anchor struct {
	ds      []*dns.DS
	keys    []*dns.DNSKEY
	managed bool // the anchors live in Validator.managed (RFC 5011)
}

// WithManagedAnchors adds zones whose anchors follow RFC 5011 key
// rollovers: their current anchors are read from m at each walk, and every
// DNSKEY set validated with them is reported back to m. The caller persists
// m (Save) and refreshes the zones on RefreshInterval (the validator fetches
// DNSKEY sets only when a walk needs them).
func WithManagedAnchors(m *ManagedAnchors) Option {
	return func(v *Validator) {
		v.managed = m
		for _, z := range m.Zones() {
			v.anchors[z] = &anchor{managed: true}
		}
	}
}

// Validator walks the chain of trust from the trust anchors and validates
// responses. It is safe for concurrent use.
type Validator struct {
	anchors   map[string]*anchor
	ntas      []string
	ntaSet    *NegativeTrustAnchors // changes at run time; nil without
	src       KeySource
	clk       clock.Clock
	lim       Limits
	cache     *lru.Cache[string, zoneState]
	cacheSize int
	bogusTTL  time.Duration
	maxTTL    time.Duration
	managed   *ManagedAnchors
	inflight  flights
}

// zoneState is what the walk knows about one name on the way down.
type zoneState struct {
	status security.Status
	zone   string        // the zone holding the name: the name itself when cut
	cut    bool          // the name is a zone apex
	nx     bool          // the name provably does not exist: nothing below it does
	keys   []*dns.DNSKEY // trusted keys of zone, when Secure
	res    Result
	// failed is, for a bogus state, the type of the RRset that broke the
	// chain: DS (the parent's servers sent it) or DNSKEY (the zone's).
	failed uint16
	// cacheUntil is zero when the state must not be cached (transport
	// errors, exhausted budgets).
	cacheUntil time.Time
}

// New returns a Validator with trust anchors (DS and/or DNSKEY records, for
// one or more zones), a KeySource for DS and DNSKEY fetches (the default for
// budgets without their own, Budget.FetchKeysWith; may be nil when every
// budget has one), the DNS clock and the limits every Budget made by
// NewBudget(v.Limits()) should carry.
func New(anchors []dns.RR, src KeySource, clk clock.Clock, lim Limits, opts ...Option) (*Validator, error) {
	v := &Validator{
		anchors:   map[string]*anchor{},
		src:       src,
		clk:       clk,
		lim:       lim,
		cacheSize: 10000,
		bogusTTL:  60 * time.Second,
		maxTTL:    24 * time.Hour,
	}
	for _, rr := range anchors {
		name := dnsname.Canonical(rr.Header().Name)
		a := v.anchors[name]
		if a == nil {
			a = &anchor{}
			v.anchors[name] = a
		}
		switch x := rr.(type) {
		case *dns.DS:
			a.ds = append(a.ds, x)
		case *dns.DNSKEY:
			a.keys = append(a.keys, x)
		default:
			return nil, fmt.Errorf("trust anchor %s: type %s is neither DS nor DNSKEY", name, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	for _, o := range opts {
		o(v)
	}
	cache, err := lru.New[string, zoneState](max(v.cacheSize, 1))
	if err != nil {
		return nil, fmt.Errorf("key cache: %w", err)
	}
	v.cache = cache
	return v, nil
}

// Limits returns the limits the validator was made with, for NewBudget.
func (v *Validator) Limits() Limits { return v.lim }

// Keys returns the trusted DNSKEYs of zone, walking the chain of trust from
// the closest trust anchor down through DS and DNSKEY at each zone cut.
// status is Secure with keys; Insecure below a proven unsigned delegation,
// an unsupported algorithm or digest, or a negative trust anchor;
// Indeterminate when no anchor covers zone; Bogus when the chain is broken
// (or zone is not a zone cut). res carries the EDE and reason.
func (v *Validator) Keys(ctx context.Context, zone string, b *Budget) ([]*dns.DNSKEY, security.Status, Result) {
	b = orDefault(b)
	zone = dnsname.Canonical(zone)
	st := v.walk(ctx, zone, b)
	if st.status != security.Secure {
		return nil, st.status, st.res
	}
	if !st.cut || st.zone != zone {
		return nil, security.Bogus, bogus(EDEDNSKEYMissing, "signer "+zone+" is not a zone cut below "+st.zone)
	}
	return st.keys, security.Secure, st.res
}

// AnchorKeyTags returns the key tags of the keys trusted as anchors for zone
// now: the key tags of its DS anchors and of its DNSKEY anchors, or for an
// RFC 5011 managed zone of its current anchors (Valid and Missing keys, and
// initial DS records). It is what the root key trust anchor sentinel (RFC
// 8509) reports for ".". A zone without anchors has none.
func (v *Validator) AnchorKeyTags(zone string) []uint16 {
	a, ok := v.anchors[dnsname.Canonical(zone)]
	if !ok {
		return nil
	}
	ds, keys := a.ds, a.keys
	if a.managed {
		ds, keys = v.managed.Anchors(zone)
	}
	tags := make([]uint16, 0, len(ds)+len(keys))
	for _, d := range ds {
		tags = append(tags, d.KeyTag)
	}
	for _, k := range keys {
		tags = append(tags, k.KeyTag())
	}
	return tags
}

// ntaCovers reports whether name is at or below a negative trust anchor.
func (v *Validator) ntaCovers(name string) bool {
	if v.ntaSet != nil && v.ntaSet.Covers(name) {
		return true
	}
	for _, n := range v.ntas {
		if dnsname.IsAtOrBelow(name, n) {
			return true
		}
	}
	return false
}

// closestAnchor returns the deepest trust anchor at or above name.
func (v *Validator) closestAnchor(name string) (string, *anchor) {
	for n := name; ; n = dnsname.Parent(n) {
		if a, ok := v.anchors[n]; ok {
			return n, a
		}
		if n == "." {
			return "", nil
		}
	}
}

// walk returns the state of the deepest zone enclosing name (name included),
// from the cache where it can, fetching DS and DNSKEY where it must.
func (v *Validator) walk(ctx context.Context, name string, b *Budget) zoneState {
	name = dnsname.Canonical(name)
	if v.ntaCovers(name) {
		return zoneState{status: security.Insecure, zone: name, res: insecure(EDENone, "negative trust anchor covers "+name)}
	}
	anchorName, a := v.closestAnchor(name)
	if a == nil {
		return zoneState{status: security.Indeterminate, res: indeterminate("no trust anchor above " + name)}
	}
	// path runs from the anchor down to name, one label at a time.
	path := []string{name}
	for n := name; n != anchorName; {
		n = dnsname.Parent(n)
		path = append(path, n)
	}
	now := v.clk.Now()
	start, cur := -1, zoneState{}
	for i := 0; i < len(path); i++ {
		if st, ok := v.cached(path[i], now); ok {
			start, cur = i, st
			break
		}
	}
	if start < 0 {
		start = len(path) - 1
		cur = v.inflight.do(ctx, anchorName, func() zoneState {
			if st, ok := v.cached(anchorName, v.clk.Now()); ok {
				return st
			}
			st := v.anchorState(ctx, anchorName, a, b)
			v.store(anchorName, st)
			return st
		})
	}
	for i := start - 1; i >= 0; i-- {
		if cur.status != security.Secure || cur.nx {
			// Insecure, bogus, or a proven non-existent name: what holds
			// here holds for everything below, without more queries.
			return cur
		}
		if err := ctx.Err(); err != nil {
			return zoneState{status: security.Bogus, res: Result{Status: security.Bogus, EDE: EDEDNSSECBogus, Reason: "chain walk cancelled", Err: err}}
		}
		parent, name := cur, path[i]
		cur = v.inflight.do(ctx, name, func() zoneState {
			if st, ok := v.cached(name, v.clk.Now()); ok {
				return st // stored by a flight that ended just before ours
			}
			st := v.step(ctx, parent, name, b)
			if st.zone != name || st.status != security.Secure {
				// States that rest on the parent's keys (no cut, proven
				// absence of DS) last no longer than those keys.
				st.res.TTL = minTTL(st.res.TTL, parent.res.TTL)
			}
			v.store(name, st)
			return st
		})
	}
	return cur
}

// BogusCut is a name where a cached chain walk broke: the RRset of Type
// at Name (DS, from the parent's servers, or DNSKEY, from the zone's)
// did not validate.
type BogusCut struct {
	Name string
	Type uint16
}

// BogusCuts returns the cached bogus states of name and its ancestors, so
// that a resolver can trace bogus keys to the servers that sent them and
// ask others (Unbound's restart with the server blacklisted). Forget
// drops them before such a retry.
func (v *Validator) BogusCuts(name string) []BogusCut {
	var out []BogusCut
	now := v.clk.Now()
	for n := dns.CanonicalName(name); ; n = dnsname.Parent(n) {
		if st, ok := v.cache.Peek(n); ok && st.status == security.Bogus && now.Before(st.cacheUntil) {
			out = append(out, BogusCut{Name: n, Type: st.failed})
		}
		if n == "." {
			return out
		}
	}
}

// Forget drops the cached states of names: the next walk fetches their
// DS and DNSKEY again.
func (v *Validator) Forget(names ...string) {
	for _, n := range names {
		v.cache.Remove(dns.CanonicalName(n))
	}
}

func (v *Validator) cached(name string, now time.Time) (zoneState, bool) {
	st, ok := v.cache.Get(name)
	if !ok || !now.Before(st.cacheUntil) {
		return zoneState{}, false
	}
	// Hand out the remaining lifetime as TTL.
	st.res.TTL = uint32(st.cacheUntil.Sub(now) / time.Second)
	return st, true
}

// store caches st for its TTL; bogus states for the bogus TTL; transient
// failures and indeterminate states not at all.
func (v *Validator) store(name string, st zoneState) {
	if st.res.Err != nil || st.status == security.Indeterminate {
		return
	}
	ttl := time.Duration(st.res.TTL) * time.Second
	if st.status == security.Bogus {
		ttl = v.bogusTTL
	}
	ttl = min(ttl, v.maxTTL)
	if ttl <= 0 {
		return
	}
	st.cacheUntil = v.clk.Now().Add(ttl)
	v.cache.Add(name, st)
}

// anchorState fetches and validates the DNSKEY set of a trust-anchor zone.
func (v *Validator) anchorState(ctx context.Context, zone string, a *anchor, b *Budget) zoneState {
	if !a.managed {
		return v.fetchKeys(ctx, zone, a.ds, a.keys, b, 0, nil)
	}
	if ds, keys := v.managed.Anchors(zone); len(ds) == 0 && len(keys) == 0 {
		return zoneState{status: security.Bogus, zone: zone, cut: true, res: bogus(EDEDNSKEYMissing, "no trusted RFC 5011 anchor left for "+zone)}
	}
	// The managed anchors take self-signed revocations from the set before
	// validating it (RFC 5011 2.1), and learn from it when it validates.
	return v.fetchKeys(ctx, zone, nil, nil, b, 0, func(set []dns.RR, sigs []*dns.RRSIG) (Result, []*dns.DNSKEY) {
		return v.managed.VerifyDNSKEYs(zone, set, sigs, v.clk.Now(), b)
	})
}

// fetchKeys fetches the DNSKEY set of zone and validates it against ds or
// anchor keys. dsTTL caps the state's lifetime by the DS TTL.
// verify, if not nil, validates the set instead (managed anchors).
func (v *Validator) fetchKeys(ctx context.Context, zone string, ds []*dns.DS, anchorKeys []*dns.DNSKEY, b *Budget, dsTTL uint32, verify func([]dns.RR, []*dns.RRSIG) (Result, []*dns.DNSKEY)) zoneState {
	m, err := v.keySource(b).Query(ctx, zone, dns.TypeDNSKEY)
	if err != nil {
		return failed(EDEDNSKEYMissing, "DNSKEY fetch for "+zone, err)
	}
	var keys []dns.RR
	var sigs []*dns.RRSIG
	for _, rr := range m.Answer {
		if !dnsname.Equal(rr.Header().Name, zone) {
			continue
		}
		switch x := rr.(type) {
		case *dns.DNSKEY:
			keys = append(keys, x)
		case *dns.RRSIG:
			sigs = append(sigs, x)
		}
	}
	var res Result
	var trusted []*dns.DNSKEY
	if verify != nil {
		res, trusted = verify(keys, sigs)
	} else {
		res, trusted = VerifyDNSKEYs(keys, sigs, ds, anchorKeys, v.clk.Now(), b)
	}
	res.TTL = minTTL(res.TTL, dsTTL)
	if res.Status == security.Insecure && res.TTL == 0 {
		res.TTL = uint32(v.bogusTTL / time.Second)
	}
	return zoneState{status: res.Status, zone: zone, cut: true, keys: trusted, res: res, failed: dns.TypeDNSKEY}
}

// keySource is where a walk spending b fetches DS and DNSKEY: b's own
// KeySource (Budget.FetchKeysWith), else the Validator's.
func (v *Validator) keySource(b *Budget) KeySource {
	switch {
	case b != nil && b.keys != nil:
		return b.keys
	case v.src != nil:
		return v.src
	}
	return noKeySource{}
}

// errNoKeySource: neither the Validator nor the Budget has a KeySource.
var errNoKeySource = errors.New("no key source: give one to New or Budget.FetchKeysWith")

// noKeySource fails every fetch.
type noKeySource struct{}

func (noKeySource) Query(context.Context, string, uint16) (*dns.Msg, error) {
	return nil, errNoKeySource
}

func failed(ede uint16, what string, err error) zoneState {
	err = fmt.Errorf("%s: %w", what, err)
	return zoneState{status: security.Bogus, res: Result{Status: security.Bogus, EDE: ede, Reason: err.Error(), Err: err}}
}

// step moves the walk from parent (a secure state) one label down to child,
// by asking for child's DS.
func (v *Validator) step(ctx context.Context, parent zoneState, child string, b *Budget) zoneState {
	m, err := v.keySource(b).Query(ctx, child, dns.TypeDS)
	if err != nil {
		return failed(EDEDNSSECBogus, "DS fetch for "+child, err)
	}
	now := v.clk.Now()
	var ds []dns.RR
	var dsRecs []*dns.DS
	var sigs []*dns.RRSIG
	var cname []dns.RR
	for _, rr := range m.Answer {
		if !dnsname.Equal(rr.Header().Name, child) {
			continue
		}
		switch x := rr.(type) {
		case *dns.DS:
			ds, dsRecs = append(ds, x), append(dsRecs, x)
		case *dns.RRSIG:
			sigs = append(sigs, x)
		case *dns.CNAME:
			cname = append(cname, x)
		}
	}
	notCut := func(ttl uint32) zoneState {
		return zoneState{status: security.Secure, zone: parent.zone, keys: parent.keys, res: secure(ttl)}
	}
	switch {
	case m.Rcode == dns.RcodeSuccess && len(ds) > 0:
		res := VerifyRRset(ds, sigs, parent.keys, parent.zone, now, b)
		if res.Status != security.Secure {
			res.Reason = "DS of " + child + ": " + res.Reason
			return zoneState{status: res.Status, zone: child, cut: true, res: res, failed: dns.TypeDS}
		}
		return v.fetchKeys(ctx, child, dsRecs, nil, b, res.TTL, nil)
	case m.Rcode == dns.RcodeSuccess && len(cname) > 0:
		// A CNAME owner is no zone cut; the parent zone goes on.
		res := VerifyRRset(cname, sigs, parent.keys, parent.zone, now, b)
		if res.Status != security.Secure {
			return zoneState{status: res.Status, zone: parent.zone, res: res, failed: dns.TypeDS}
		}
		return notCut(res.TTL)
	case m.Rcode == dns.RcodeSuccess:
		res, cut := proveNoDS(child, parent.zone, m.Ns, parent.keys, now, b)
		switch {
		case res.Status == security.Secure && !cut:
			return notCut(res.TTL)
		case res.Status == security.Secure:
			ins := insecure(EDENone, "no DS at "+child+": insecure delegation")
			ins.TTL = res.TTL
			return zoneState{status: security.Insecure, zone: child, cut: true, res: ins}
		case res.Status == security.Insecure:
			res.Reason = "no DS at " + child + ": " + res.Reason
			return zoneState{status: security.Insecure, zone: child, cut: true, res: res}
		}
		res.Reason = "absence of DS at " + child + ": " + res.Reason
		return zoneState{status: security.Bogus, zone: child, res: res, failed: dns.TypeDS}
	case m.Rcode == dns.RcodeNameError:
		// A proven non-existent name lies inside the parent zone; nothing
		// below it can be a zone cut.
		res := ProveNXDOMAIN(child, parent.zone, m.Ns, parent.keys, now, b)
		switch res.Status {
		case security.Secure:
			st := notCut(res.TTL)
			st.nx = true
			return st
		case security.Insecure:
			res.Reason = child + " does not exist, opt-out: " + res.Reason
			return zoneState{status: security.Insecure, zone: child, res: res}
		}
		res.Reason = "NXDOMAIN for DS at " + child + ": " + res.Reason
		return zoneState{status: security.Bogus, zone: child, res: res, failed: dns.TypeDS}
	}
	return failed(EDEDNSSECBogus, "DS query for "+child, errors.New("rcode "+dns.RcodeToString[m.Rcode]))
}
