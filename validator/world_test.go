package validator

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

// fakeZone is a signed zone served by fakeWorld.
type fakeZone struct {
	*testZone
	names   map[string][]uint16 // owner -> types; delegations carry NS (and DS)
	nsec3   bool
	optOut  bool
	skip    []string // unsigned delegations left out of an opt-out chain
	chain   []dns.RR
	iter    uint16
	salt    string
	dsFor   map[string][]dns.RR // signed DS RRsets of children
	soa     []dns.RR
	memo    map[string][]dns.RR // memoised signed denial records
	signMu  sync.Mutex
	noDNSKE bool // answer DNSKEY queries with NODATA (a broken zone)
}

// fakeWorld answers DS and DNSKEY questions from fakeZones, the way the
// resolver will: DS from the parent side of a cut, DNSKEY from the apex.
type fakeWorld struct {
	t       testing.TB
	zones   map[string]*fakeZone
	queries atomic.Int64
	fail    map[string]bool // names whose queries fail with a transport error
}

func newWorld(t testing.TB) *fakeWorld {
	return &fakeWorld{t: t, zones: map[string]*fakeZone{}, fail: map[string]bool{}}
}

func (w *fakeWorld) addZone(name string, alg uint8, names map[string][]uint16) *fakeZone {
	z := &fakeZone{testZone: newTestZone(w.t, name, alg), names: names, dsFor: map[string][]dns.RR{}, memo: map[string][]dns.RR{}}
	if _, ok := names[z.name]; !ok {
		names[z.name] = []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY}
	}
	w.zones[z.name] = z
	return z
}

// finish builds every zone's denial chain and the signed DS sets.
func (w *fakeWorld) finish() {
	for _, z := range w.zones {
		z.soa = z.testZone.signed(w.t, dnstest.MustRR(w.t, z.name+" 300 IN SOA ns.invalid. host.invalid. 1 7200 3600 1209600 300"))
		if z.nsec3 {
			z.chain = nsec3Chain(z.name, z.names, z.iter, z.salt, z.optOut, z.skip...)
		} else {
			z.chain = nsecChain(z.name, z.names)
		}
		if z.name == "." {
			continue
		}
		parent := w.zoneOf(dnsname.Parent(z.name))
		if slices.Contains(parent.names[z.name], dns.TypeDS) {
			parent.dsFor[z.name] = parent.testZone.signed(w.t, z.ds(dns.SHA256))
		}
	}
}

// zoneOf returns the deepest zone at or above name.
func (w *fakeWorld) zoneOf(name string) *fakeZone {
	for n := dnsname.Canonical(name); ; n = dnsname.Parent(n) {
		if z, ok := w.zones[n]; ok {
			return z
		}
		if n == "." {
			return nil
		}
	}
}

var errFakeTransport = errors.New("fake transport failure")

func (w *fakeWorld) Query(_ context.Context, name string, qtype uint16) (*dns.Msg, error) {
	w.queries.Add(1)
	name = dnsname.Canonical(name)
	if w.fail[name] {
		return nil, errFakeTransport
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response = true
	var z *fakeZone
	if qtype == dns.TypeDS && name != "." {
		z = w.zoneOf(dnsname.Parent(name))
	} else {
		z = w.zoneOf(name)
	}
	if z == nil {
		m.Rcode = dns.RcodeRefused
		return m, nil
	}
	switch {
	case qtype == dns.TypeDNSKEY && name == z.name && !z.noDNSKE:
		m.Answer = z.signedDNSKEY(w.t)
	case qtype == dns.TypeDS && len(z.dsFor[name]) > 0:
		m.Answer = z.dsFor[name]
	default:
		m.Rcode, m.Ns = z.negative(w.t, name, qtype)
	}
	return m, nil
}

// exists reports whether name exists in z (as an owner or an empty
// non-terminal).
func (z *fakeZone) exists(name string) bool {
	for n := range z.names {
		if dnsname.IsAtOrBelow(n, name) {
			return true
		}
	}
	return false
}

func (z *fakeZone) sign1(t testing.TB, r dns.RR) []dns.RR {
	z.signMu.Lock()
	defer z.signMu.Unlock()
	k := r.Header().Name + "/" + dns.TypeToString[r.Header().Rrtype]
	if s, ok := z.memo[k]; ok {
		return s
	}
	s := z.testZone.signed(t, r)
	z.memo[k] = s
	return s
}

// negative builds the NXDOMAIN or NODATA authority section for name.
func (z *fakeZone) negative(t testing.TB, name string, qtype uint16) (int, []dns.RR) {
	rcode := dns.RcodeSuccess
	if !z.exists(name) {
		rcode = dns.RcodeNameError
	}
	auth := append([]dns.RR{}, z.soa...)
	add := func(r dns.RR) {
		for _, have := range auth {
			if have == r {
				return
			}
		}
		auth = append(auth, z.sign1(t, r)...)
	}
	if !z.nsec3 {
		if _, ok := z.names[name]; ok {
			add(nsecFind(t, z.chain, name, false))
			return rcode, auth
		}
		c := nsecFind(t, z.chain, name, true)
		add(c)
		if rcode == dns.RcodeNameError {
			add(nsecFind(t, z.chain, wildcardOf(nsecClosestEncloser(c.(*dns.NSEC), name)), true))
		}
		return rcode, auth
	}
	if r := nsec3Lookup(z.chain, name, false); r != nil {
		add(r)
		return rcode, auth
	}
	ce := name
	var nc string
	for nsec3Lookup(z.chain, ce, false) == nil {
		nc, ce = ce, dnsname.Parent(ce)
	}
	add(nsec3Lookup(z.chain, ce, false))
	add(nsec3Lookup(z.chain, nc, true))
	if rcode == dns.RcodeNameError {
		add(nsec3Lookup(z.chain, wildcardOf(ce), true))
	}
	return rcode, auth
}

func nsec3Lookup(chain []dns.RR, name string, covering bool) dns.RR {
	first := chain[0].(*dns.NSEC3)
	s, _ := newNSEC3Set(asNSEC3(chain), dnsname.Parent(first.Hdr.Name), NewBudget(Limits{MaxNSEC3Hashes: 1 << 30, MaxNSEC3Iterations: 1 << 15}))
	h, err := s.hash(name)
	if err != nil {
		return nil
	}
	i := s.match(h)
	if covering {
		i = s.cover(h)
	}
	if i < 0 {
		return nil
	}
	return s.recs[i]
}

func asNSEC3(chain []dns.RR) []*dns.NSEC3 {
	out := make([]*dns.NSEC3, len(chain))
	for i, r := range chain {
		out[i] = r.(*dns.NSEC3)
	}
	return out
}
