package resolver

import (
	"net/netip"
	"sync"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// Bogus answers asked again elsewhere (issue 15 point 5). One broken or
// attacked secondary, or one forged reply, must not make a signed zone
// fail: when an answer fails validation, the servers that sent the RRsets
// that failed (the answer's own, or the DS or DNSKEY where the chain of
// trust broke) are excluded for the rest of the question, their data and
// the validator's bogus states are dropped, and the question is resolved
// and validated again from the zone's other servers, at most
// maxBogusRetries times, all from the question's Budget. Only what stays
// bogus when no other server is left (or the retries are spent) is
// cached as bogus. This is Unbound's restart with the server blacklisted
// (val_blacklist, VAL_MAX_RESTART_COUNT); Knot Resolver retries a bogus
// answer at another server too. The servers are also marked lame for the
// zone (selector.markLame), so later questions ask them last.

// maxBogusRetries bounds the re-resolutions of one question whose answer
// was bogus. Each excludes at least one more server, so a zone with two
// servers needs one; the bound keeps a zone with many bad servers from
// costing more than a few rounds (Unbound allows 5 restarts).
const maxBogusRetries = 3

// maxTracedSources bounds the RRsets one question traces to servers.
const maxTracedSources = 64

// rrKey is an RRset (or, with nx, the NXDOMAIN entry of a name).
type rrKey struct {
	name  string
	rtype uint16
	nx    bool
}

// serverOf is a server address asked as a server of zone.
type serverOf struct {
	zone string
	addr netip.Addr
}

// sourceLog traces one question's RRsets to the servers that sent them
// and holds the servers its retries must not ask.
type sourceLog struct {
	mu       sync.Mutex
	from     map[rrKey]serverOf
	excluded []serverOf
}

// log returns b's source log, making it on first use.
func (b *Budget) log() *sourceLog {
	if l := b.sources.Load(); l != nil {
		return l
	}
	l := &sourceLog{from: make(map[rrKey]serverOf, 8)}
	if !b.sources.CompareAndSwap(nil, l) {
		return b.sources.Load()
	}
	return l
}

// noteSource records that the RRset k of this question came from addr, a
// server of zone.
func (b *Budget) noteSource(k rrKey, zone string, addr netip.Addr) {
	l := b.log()
	l.mu.Lock()
	if _, ok := l.from[k]; ok || len(l.from) < maxTracedSources {
		l.from[k] = serverOf{zone, addr}
	}
	l.mu.Unlock()
}

// sourceOf returns the server that sent RRset k in this question.
func (b *Budget) sourceOf(k rrKey) (serverOf, bool) {
	l := b.sources.Load()
	if l == nil {
		return serverOf{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.from[k]
	return s, ok
}

// sentBy returns the RRsets of this question that s sent.
func (b *Budget) sentBy(s serverOf) []rrKey {
	l := b.sources.Load()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []rrKey
	for k, from := range l.from {
		if from == s {
			out = append(out, k)
		}
	}
	return out
}

// exclude keeps s from being asked again in this question.
func (b *Budget) exclude(s serverOf) {
	l := b.log()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.excluded {
		if x == s {
			return
		}
	}
	l.excluded = append(l.excluded, s)
}

// excludes reports whether this question must not ask addr as a server
// of zone (it sent bogus data). Without exclusions it costs one load.
func (b *Budget) excludes(zone string, addr netip.Addr) bool {
	l := b.sources.Load()
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.excluded {
		if x.addr == addr && x.zone == zone {
			return true
		}
	}
	return false
}

// noteReferral traces the DS (or the proof of its absence) of a referral
// to child to the server of zone that sent it.
func (rs *resolution) noteReferral(zone string, from netip.Addr, child string) {
	if rs.r.dnssec != nil && from.IsValid() {
		rs.budget.noteSource(rrKey{name: child, rtype: dns.TypeDS}, zone, from)
	}
}

// noteAnswer traces the RRsets and the denial of st to the server of zone
// that sent them.
func (rs *resolution) noteAnswer(zone string, from netip.Addr, st *step) {
	if rs.r.dnssec == nil || !from.IsValid() || st == nil {
		return
	}
	for _, s := range st.sets {
		if !s.synthesised {
			rs.budget.noteSource(rrKey{name: s.name, rtype: s.rtype}, zone, from)
		}
	}
	if d := st.denial; d != nil && d.ref.name != "" {
		rs.budget.noteSource(denialKey(d.ref), zone, from)
	}
}

func denialKey(ref entryRef) rrKey {
	return rrKey{name: ref.name, rtype: ref.qtype, nx: ref.nxdomain}
}

// prepareBogusRetry decides whether the bogus answer out (validated as
// res) is asked again: the RRsets that failed, traced to the servers of
// this question that sent them, exclude those servers; when one of their
// zones has a server left, the failed data, everything else those servers
// sent in this question (a forger's other replies are no better) and the
// validator's states resting on it are dropped and it reports true. Bogus
// data that came from the cache (an earlier question's verdict) is not
// retried.
func (r *Resolver) prepareBogusRetry(q question, out *outcome, res validator.AnswerResult, b *Budget) bool {
	suspects, cuts := r.bogusSuspects(q, out, res)
	retry := false
	drop := suspects
	for _, k := range suspects {
		src, ok := b.sourceOf(k)
		if !ok {
			continue
		}
		b.exclude(src)
		r.sel.markLame(src.zone, src.addr)
		if r.serverLeft(src.zone, q.qclass, b) {
			retry = true
		}
		drop = append(drop, b.sentBy(src)...)
	}
	if !retry {
		return false
	}
	for _, k := range drop {
		switch {
		case k.nx:
			r.cache.DeleteNXDomain(k.name, q.qclass)
		default:
			r.cache.Delete(k.name, k.rtype, q.qclass)
			if k.rtype == dns.TypeDS || k.rtype == dns.TypeDNSKEY {
				cuts = append(cuts, k.name)
			}
		}
	}
	r.dnssec.v.Forget(cuts...)
	return true
}

// bogusSuspects are the RRsets behind a bogus answer: where the chain of
// trust broke (a DS or DNSKEY, with the names of those cuts), else the
// answer's pieces that failed on their own.
func (r *Resolver) bogusSuspects(q question, out *outcome, res validator.AnswerResult) ([]rrKey, []string) {
	var suspects []rrKey
	var cuts []string
	owners := []string{q.name}
	for _, s := range out.sets {
		owners = append(owners, s.name)
	}
	for _, n := range owners {
		for _, c := range r.dnssec.v.BogusCuts(n) {
			if c.Type != 0 && !containsString(cuts, c.Name) {
				cuts = append(cuts, c.Name)
				suspects = append(suspects, rrKey{name: c.Name, rtype: c.Type})
			}
		}
	}
	if len(cuts) > 0 {
		return suspects, cuts
	}
	for i, s := range out.sets {
		if p := res.Sets[i]; p.Checked && p.Status == security.Bogus && !s.synthesised {
			suspects = append(suspects, rrKey{name: s.name, rtype: s.rtype})
		}
	}
	if d := out.denial; d != nil && d.ref.name != "" && res.Denial.Checked && res.Denial.Status == security.Bogus {
		suspects = append(suspects, denialKey(d.ref))
	}
	return suspects, nil
}

// serverLeft reports whether zone has a server this question may still
// ask: a known address not excluded, or a name server whose address is
// not known yet.
func (r *Resolver) serverLeft(zone string, qclass uint16, b *Budget) bool {
	d := r.closestDelegation(zone, dns.TypeNS, qclass)
	if d.zone != zone {
		return true // not cached: asking again finds the servers anew
	}
	for _, ns := range d.ns {
		addrs, settled := r.knownAddrs(d, ns, qclass)
		if !settled {
			return true
		}
		for _, a := range addrs {
			if !b.excludes(zone, a) {
				return true
			}
		}
	}
	return false
}
