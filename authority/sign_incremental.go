package authority

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// This file signs a new version of a zone by patching the signed previous
// version: only the RRsets that changed, and the NSEC or NSEC3 records
// whose links or type bitmaps they move, are built and signed again; every
// other node, record and signature is shared with the previous version
// (copy-on-write: the previous version keeps serving, unchanged). A
// ten-record change of a 100 000-record zone then costs milliseconds where
// signing and checking the whole zone again costs seconds.
//
// Changes that move the zone's structure (delegations, DNAMEs, wildcards,
// glue, the SOA's TTLs that every denial record carries) are left to the
// full path: Resign says so with ErrNotIncremental.

// ErrNotIncremental says that Resign cannot patch this change and the zone
// must be signed whole (Sign).
var ErrNotIncremental = errors.New("the change needs a full signing")

// maxIncrementalShare: when more than 1/maxIncrementalShare of the names
// changed, a full signing (parallel, one build) is cheaper than patching.
const maxIncrementalShare = 4

// dnssecType reports the types a signer makes itself, which the unsigned
// input's own copies never reach (Sign and the signer drop them).
func dnssecType(t uint16) bool {
	switch t {
	case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
		return true
	}
	return false
}

// apexKeyType: apex RRsets a signer carries over from the previous
// version while its keys do not change.
func apexKeyType(t uint16) bool {
	switch t {
	case dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY, dns.TypeNSEC3PARAM:
		return true
	}
	return false
}

// ChangedNames lists the names whose data, DNSSEC types aside, differ
// between two versions of a zone: names added, removed (empty
// non-terminals included) or with any RRset changed (TTL included). For
// versions NewZone built it compares each name's fingerprint, made while
// NewZone checked the records, so one walk of the zone touches no record.
func ChangedNames(prev, next *Zone) []string {
	same := sameUnsignedData // a patched version's nodes have no fingerprints
	if !prev.patched && !next.patched {
		same = func(a, b *node) bool { return a.fp == b.fp }
	}
	var out []string
	common := 0
	for name, nn := range next.nodes {
		pn := prev.nodes[name]
		if pn != nil {
			common++
		}
		if pn == nil || !same(pn, nn) {
			out = append(out, name)
		}
	}
	if common != len(prev.nodes) {
		for name := range prev.nodes {
			if next.nodes[name] == nil {
				out = append(out, name)
			}
		}
	}
	return out
}

// sameUnsignedData compares two nodes' non-DNSSEC RRsets.
func sameUnsignedData(a, b *node) bool {
	count := 0
	for t, s := range a.sets {
		if dnssecType(t) || len(s.rrs) == 0 {
			continue
		}
		bs := b.sets[t]
		if bs == nil || !sameRecords(s.rrs, bs.rrs) {
			return false
		}
		count++
	}
	for t, s := range b.sets {
		if !dnssecType(t) && len(s.rrs) > 0 {
			count--
		}
	}
	return count == 0
}

// sameRecords compares two RRsets record by record, in order, TTLs
// included: records in another order count as a change (signed again,
// with the same signature digest, so the cache still answers).
func sameRecords(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Header().Ttl != b[i].Header().Ttl || !dns.IsDuplicate(a[i], b[i]) {
			return false
		}
	}
	return true
}

// ResignInput is a change to sign incrementally.
type ResignInput struct {
	// Prev is the signed version made from PrevUnsigned with the same keys
	// and options; Next is the new unsigned version; Changed is
	// ChangedNames(PrevUnsigned, Next).
	Prev, PrevUnsigned, Next *Zone
	Changed                  []string
	// Serial is the SOA serial the signed version is served with.
	Serial uint32
}

// resigner holds the work of one Resign.
type resigner struct {
	in     ResignInput
	opts   SignOptions
	origin string
	// repl holds the replacement nodes (nil: the name is gone).
	repl        map[string]*node
	zoneSigners []*Key
	// jobs are the RRsets to sign, targets where their signatures go.
	jobs    []signJob
	targets []*rrset
	negTTL  uint32
	// nsecIndex and nsec3 are the new version's denial indexes.
	nsecIndex []nsecEntry
	nsec3     *nsec3Chain
	// dropped lists the cache keys of RRsets that no longer exist.
	dropped []sigCacheKey
}

// Resign returns the signed version of in.Next, patched from in.Prev, or
// ErrNotIncremental when the change must be signed whole. opts are the
// options in.Prev was signed with (keys, denial), with a new validity
// window; opts.Cache, if set, is updated for the RRsets signed here.
func Resign(in ResignInput, opts SignOptions) (*Zone, error) {
	r, err := newResigner(in, opts)
	if err != nil {
		return nil, err
	}
	if err := r.checkShape(); err != nil {
		return nil, err
	}
	r.buildNodes()
	if opts.NSEC3 != nil {
		err = r.patchNSEC3()
	} else {
		r.patchNSEC()
	}
	if err != nil {
		return nil, err
	}
	if err := r.sign(); err != nil {
		return nil, fmt.Errorf("resign %s: %w", r.origin, err)
	}
	return r.assemble()
}

func newResigner(in ResignInput, opts SignOptions) (*resigner, error) {
	p, nx := in.Prev, in.Next
	switch {
	case p == nil || in.PrevUnsigned == nil || nx == nil || p.unavailable != nil || nx.unavailable != nil:
		return nil, ErrNotIncremental
	case !p.signed || p.origin != nx.origin || p.origin != in.PrevUnsigned.origin:
		return nil, ErrNotIncremental
	case (opts.NSEC3 != nil) != (p.nsec3 != nil):
		return nil, ErrNotIncremental
	case len(in.Changed) > len(nx.nodes)/maxIncrementalShare+1:
		return nil, ErrNotIncremental
	}
	if err := opts.check(p.origin); err != nil {
		return nil, fmt.Errorf("resign %s: %w", p.origin, err)
	}
	if opts.NSEC3 != nil {
		salt, _ := signNSEC3Salt(opts.NSEC3.Salt)
		if len(p.nsec3.entries) == 0 || p.nsec3.iterations != opts.NSEC3.Iterations || !equalFoldHex(p.nsec3.salt, salt) {
			return nil, ErrNotIncremental
		}
	}
	// Every denial record carries the negative TTL and the key RRsets
	// the SOA TTL: a change of either touches the whole zone.
	psoa, nsoa := p.soa, nx.apex.set(dns.TypeSOA)
	if nsoa == nil || len(nsoa.rrs) != 1 {
		return nil, ErrNotIncremental
	}
	if s := nsoa.rrs[0].(*dns.SOA); s.Hdr.Ttl != psoa.Hdr.Ttl || s.Minttl != psoa.Minttl {
		return nil, ErrNotIncremental
	}
	_, zoneSigners := signKeyRoles(opts.Keys)
	r := &resigner{in: in, opts: opts, origin: p.origin, repl: make(map[string]*node, len(in.Changed)+8),
		zoneSigners: zoneSigners, negTTL: p.negTTL}
	if !slices.Contains(in.Changed, r.origin) {
		r.in.Changed = append(slices.Clone(in.Changed), r.origin) // the SOA serial changes
	}
	return r, nil
}

// checkShape refuses changes that move the zone's structure.
func (r *resigner) checkShape() error {
	p, pu, nx := r.in.Prev, r.in.PrevUnsigned, r.in.Next
	for _, name := range r.in.Changed {
		pn, nn := p.nodes[name], nx.nodes[name]
		for _, n := range []*node{pn, nn} {
			if n != nil && (n.cut || n.belowCut || n.dname != nil || n.dnameAt != "") {
				return ErrNotIncremental // delegations and DNAMEs move what is authoritative below them
			}
		}
		if name != r.origin && dnsname.FirstLabel(name) == "*" {
			return ErrNotIncremental // wildcards change the proofs of their whole parent
		}
		if p.nsTargets[name] && hadAddress(pu.nodes[name]) && !hadAddress(nn) {
			return ErrNotIncremental // a name server's address: NewZone's checks decide
		}
		if nn != nil && !nn.empty() && !hasUnsignedData(nn) {
			return ErrNotIncremental // only DNSSEC records of its own: the full path drops it
		}
		if r.opts.NSEC3 != nil {
			if r.opts.NSEC3.OptOut && (pn == nil || nn == nil || pn.empty() || !hasUnsignedData(nn)) {
				return ErrNotIncremental // opt-out decides chain membership by what is below
			}
			if dnsname.Parent(name) == r.origin && len(dnsname.FirstLabel(name)) == 32 {
				return ErrNotIncremental // may clash with an NSEC3 owner
			}
		}
	}
	return nil
}

func hadAddress(n *node) bool {
	return n != nil && (n.set(dns.TypeA) != nil || n.set(dns.TypeAAAA) != nil)
}

func hasUnsignedData(n *node) bool {
	for _, t := range n.types {
		if !dnssecType(t) {
			return true
		}
	}
	return false
}

// buildNodes makes the new version's node of every changed name from the
// unsigned data, and queues its RRsets for signing.
func (r *resigner) buildNodes() {
	for _, name := range r.in.Changed {
		nn := r.in.Next.nodes[name]
		if nn == nil {
			r.repl[name] = nil
			r.dropNode(r.in.Prev.nodes[name])
			continue
		}
		pn := r.in.Prev.nodes[name]
		n := &node{name: name, sets: make(map[uint16]*rrset, len(nn.sets)+1)}
		for t, s := range nn.sets {
			if dnssecType(t) || len(s.rrs) == 0 {
				continue
			}
			set := &rrset{rrs: copyRRset(s.rrs)}
			if t == dns.TypeSOA {
				soa := set.rrs[0].(*dns.SOA)
				soa.Serial = r.in.Serial
			}
			n.sets[t] = set
			r.queue(set, r.zoneSigners)
		}
		if pn != nil {
			if name == r.origin {
				for t, s := range pn.sets {
					if apexKeyType(t) {
						n.sets[t] = s // same keys: same key RRsets and signatures
					}
				}
			}
			n.wildcard = pn.wildcard
			n.nsec3h = pn.nsec3h
			for t := range pn.sets {
				if _, ok := n.sets[t]; !ok && t != dns.TypeNSEC {
					r.dropped = append(r.dropped, sigCacheKey{name, t})
				}
			}
		}
		if r.in.Prev.nsec3 != nil && n.nsec3h == "" {
			n.nsec3h = r.in.Prev.nsec3.hashName(name)
		}
		n.setTypes()
		r.repl[name] = n
	}
}

// dropNode forgets the signatures of a removed node.
func (r *resigner) dropNode(n *node) {
	if n == nil {
		return
	}
	for t := range n.sets {
		r.dropped = append(r.dropped, sigCacheKey{n.name, t})
	}
}

// copyRRset copies records and gives them one TTL, the lowest (RFC 2181
// 5.2), as Sign does.
func copyRRset(in []dns.RR) []dns.RR {
	out := make([]dns.RR, len(in))
	ttl := in[0].Header().Ttl
	for i, rr := range in {
		out[i] = dns.Copy(rr)
		ttl = min(ttl, rr.Header().Ttl)
	}
	for _, rr := range out {
		rr.Header().Ttl = ttl
	}
	return out
}

// setTypes fills in the node's type list and shortcuts from its sets.
func (n *node) setTypes() {
	n.types = n.types[:0]
	for t, s := range n.sets {
		if len(s.rrs) > 0 {
			n.types = append(n.types, t)
		}
	}
	slices.Sort(n.types)
	n.cname, n.dname = nil, nil
	if s := n.set(dns.TypeCNAME); s != nil {
		n.cname = s.rrs[0].(*dns.CNAME)
	}
	if s := n.set(dns.TypeDNAME); s != nil {
		n.dname = s.rrs[0].(*dns.DNAME)
	}
	n.nsec = n.set(dns.TypeNSEC)
}

func (r *resigner) queue(set *rrset, keys []*Key) {
	r.jobs = append(r.jobs, signJob{rrset: set.rrs, keys: keys})
	r.targets = append(r.targets, set)
}

// node returns the new version's node for name, copying the previous
// version's on first write (copy-on-write); nil if the name is gone.
func (r *resigner) node(name string) *node {
	if n, ok := r.repl[name]; ok {
		return n
	}
	old := r.in.Prev.nodes[name]
	if old == nil {
		return nil
	}
	cp := *old
	cp.sets = maps.Clone(old.sets)
	cp.types = slices.Clone(old.types)
	r.repl[name] = &cp
	return &cp
}

// nsecOwner reports whether a node of the new version owns an NSEC:
// every authoritative name with data (RFC 4035 2.3).
func nsecOwner(n *node) bool { return n != nil && !n.empty() && !n.belowCut }

// patchNSEC updates the NSEC chain: new and removed owners are merged
// into the index, and the NSEC of every changed owner and of the owner
// before each added or removed one is made again.
func (r *resigner) patchNSEC() {
	var added []nsecEntry
	removed := make(map[string]bool)
	for _, name := range r.in.Changed {
		was := r.in.Prev.nodes[name] != nil && r.in.Prev.nodes[name].nsec != nil
		is := nsecOwner(r.repl[name])
		switch {
		case is && !was:
			labels, _ := dnsname.CanonicalLabels(name)
			added = append(added, nsecEntry{labels: labels, node: r.repl[name]})
		case was && !is:
			removed[name] = true
			if n := r.repl[name]; n != nil {
				n.nsec = nil
			}
		}
	}
	slices.SortFunc(added, func(a, b nsecEntry) int { return dnsname.CompareLabels(a.labels, b.labels) })
	r.nsecIndex = mergeNSECIndex(r.in.Prev.nsecIndex, added, removed)
	// Owners whose NSEC must be made again: the changed ones (bitmap) and
	// the predecessors of added and removed ones (next name).
	relink := make(map[string]bool)
	for _, name := range r.in.Changed {
		if nsecOwner(r.repl[name]) {
			relink[name] = true
		}
	}
	for _, e := range added {
		relink[r.nsecIndex[r.nsecBefore(e.labels)].node.name] = true
	}
	for name := range removed {
		labels, _ := dnsname.CanonicalLabels(name)
		relink[r.nsecIndex[r.nsecBefore(labels)].node.name] = true
	}
	for name := range relink {
		r.relinkNSEC(name)
	}
	// A copied wildcard node must be what its parent points at.
	for name := range relink {
		if n := r.repl[name]; n != nil && name != r.origin && dnsname.FirstLabel(name) == "*" {
			if parent := r.node(dnsname.Parent(name)); parent != nil {
				parent.wildcard = n
			}
		}
	}
	// Point the index at the new version's nodes.
	for name, n := range r.repl {
		if n == nil || n.nsec == nil {
			continue
		}
		labels, _ := dnsname.CanonicalLabels(name)
		if i, ok := r.nsecFind(labels); ok {
			r.nsecIndex[i].node = n
		}
	}
}

// mergeNSECIndex is prev without the removed owners, with added (sorted)
// merged in: one pass over the index.
func mergeNSECIndex(prev, added []nsecEntry, removed map[string]bool) []nsecEntry {
	out := make([]nsecEntry, 0, len(prev)+len(added))
	j := 0
	for _, e := range prev {
		for j < len(added) && dnsname.CompareLabels(added[j].labels, e.labels) < 0 {
			out = append(out, added[j])
			j++
		}
		if !removed[e.node.name] {
			out = append(out, e)
		}
	}
	return append(out, added[j:]...)
}

// nsecFind returns the index of the owner with labels.
func (r *resigner) nsecFind(labels [][]byte) (int, bool) {
	return slices.BinarySearchFunc(r.nsecIndex, labels, func(e nsecEntry, l [][]byte) int { return dnsname.CompareLabels(e.labels, l) })
}

// nsecBefore returns the index of the owner before labels in canonical
// order (wrapping to the last).
func (r *resigner) nsecBefore(labels [][]byte) int {
	i, _ := r.nsecFind(labels)
	if i == 0 {
		return len(r.nsecIndex) - 1
	}
	return i - 1
}

// relinkNSEC makes the NSEC of owner name again: its bitmap from its
// types if it changed, else the old one, and its next owner from the new
// index.
func (r *resigner) relinkNSEC(name string) {
	_, changed := r.repl[name]
	n := r.node(name)
	labels, _ := dnsname.CanonicalLabels(name)
	i, _ := r.nsecFind(labels)
	next := r.nsecIndex[(i+1)%len(r.nsecIndex)].node.name
	var types []uint16
	if changed || n.nsec == nil {
		types = append(dataTypes(n), dns.TypeRRSIG, dns.TypeNSEC)
		slices.Sort(types)
		types = slices.Compact(types)
	} else {
		types = n.nsec.rrs[0].(*dns.NSEC).TypeBitMap
	}
	set := &rrset{rrs: []dns.RR{&dns.NSEC{
		Hdr:        dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: r.negTTL},
		NextDomain: next,
		TypeBitMap: types,
	}}}
	n.sets[dns.TypeNSEC] = set
	n.setTypes()
	r.queue(set, r.zoneSigners)
}

// dataTypes are the node's types other than its denial record.
func dataTypes(n *node) []uint16 {
	out := make([]uint16, 0, len(n.types))
	for _, t := range n.types {
		if t != dns.TypeNSEC {
			out = append(out, t)
		}
	}
	return withoutFlattenedCNAME(out, n.set(dns.TypeSOA) != nil)
}

// patchNSEC3 updates the NSEC3 chain as patchNSEC does the NSEC chain:
// every name of the new version that is not below a cut owns one (empty
// non-terminals too, RFC 5155 7.1).
func (r *resigner) patchNSEC3() error {
	prev := r.in.Prev.nsec3
	template := prev.entries[0].set.rrs[0].(*dns.NSEC3)
	have := func(h string) (int, bool) {
		return slices.BinarySearchFunc(prev.entries, h, func(e nsec3Entry, h string) int { return strings.Compare(e.hash, h) })
	}
	var added []nsec3Entry
	removed := make(map[string]bool)
	changedHash := make(map[string]bool)
	for _, name := range r.in.Changed {
		pn, n := r.in.Prev.nodes[name], r.repl[name]
		was := false
		if pn != nil {
			_, was = have(pn.nsec3h)
		}
		switch {
		case n != nil && !was:
			if _, clash := have(n.nsec3h); clash || n.nsec3h == "" {
				return ErrNotIncremental // a hash collision: the full path reports it
			}
			added = append(added, nsec3Entry{hash: n.nsec3h})
			changedHash[n.nsec3h] = true
		case n == nil && was:
			removed[pn.nsec3h] = true
		case n != nil:
			changedHash[n.nsec3h] = true
		}
	}
	slices.SortFunc(added, func(a, b nsec3Entry) int { return strings.Compare(a.hash, b.hash) })
	entries := make([]nsec3Entry, 0, len(prev.entries)+len(added))
	j := 0
	for _, e := range prev.entries {
		for j < len(added) && added[j].hash < e.hash {
			entries = append(entries, added[j])
			j++
		}
		if !removed[e.hash] {
			entries = append(entries, e)
		}
	}
	entries = append(entries, added[j:]...)
	if len(entries) == 0 {
		return ErrNotIncremental
	}
	find := func(h string) int {
		i, _ := slices.BinarySearchFunc(entries, h, func(e nsec3Entry, h string) int { return strings.Compare(e.hash, h) })
		return i
	}
	before := func(h string) int {
		i := find(h)
		if i == 0 {
			return len(entries) - 1
		}
		return i - 1
	}
	relink := make(map[int]bool)
	for h := range changedHash {
		relink[find(h)] = true
	}
	for _, e := range added {
		relink[before(e.hash)] = true
	}
	for h := range removed {
		relink[before(h)] = true
		r.dropped = append(r.dropped, sigCacheKey{strings.ToLower(h) + "." + r.origin, dns.TypeNSEC3})
	}
	byHash := make(map[string]*node, len(changedHash))
	for _, n := range r.repl {
		if n != nil {
			byHash[n.nsec3h] = n
		}
	}
	for i := range relink {
		e := &entries[i]
		n3 := *template
		n3.Hdr = dns.RR_Header{Name: strings.ToLower(e.hash) + "." + r.origin, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: r.negTTL}
		n3.NextDomain = strings.ToLower(entries[(i+1)%len(entries)].hash)
		if n := byHash[e.hash]; n != nil && changedHash[e.hash] {
			n3.TypeBitMap = nsec3Bitmap(n)
		} else {
			n3.TypeBitMap = slices.Clone(e.set.rrs[0].(*dns.NSEC3).TypeBitMap)
		}
		e.set = &rrset{rrs: []dns.RR{&n3}}
		r.queue(e.set, r.zoneSigners)
	}
	r.nsec3 = &nsec3Chain{hash: prev.hash, iterations: prev.iterations, salt: prev.salt, entries: entries}
	return nil
}

// nsec3Bitmap is the NSEC3 type bitmap of a changed node (never a
// delegation here): its types and RRSIG, none for an empty non-terminal.
func nsec3Bitmap(n *node) []uint16 {
	if n.empty() {
		return nil
	}
	ts := append(withoutFlattenedCNAME(slices.Clone(n.types), n.set(dns.TypeSOA) != nil), dns.TypeRRSIG)
	slices.Sort(ts)
	return slices.Compact(ts)
}

// sign makes the queued RRsets' signatures, reusing cached ones, and
// updates the cache.
func (r *resigner) sign() error {
	inception := uint32(r.opts.Inception.Unix())
	expiration := uint32(r.opts.Expiration.Unix())
	results, digests, reused, err := signJobsParallel(r.jobs, r.origin, inception, expiration, r.opts.Cache, r.opts.ReuseUntil)
	if err != nil {
		return err
	}
	for i, set := range r.targets {
		set.sigs = results[i]
	}
	if c := r.opts.Cache; c != nil {
		c.update(r.jobs, digests, results, reused, r.dropped)
	}
	return nil
}

// assemble makes the new version: the previous one's nodes with the
// replacements, checked as NewZone checks the nodes it changed.
func (r *resigner) assemble() (*Zone, error) {
	p := r.in.Prev
	nodes := maps.Clone(p.nodes)
	for name, n := range r.repl {
		if n == nil {
			delete(nodes, name)
		} else {
			nodes[name] = n
		}
	}
	z := &Zone{
		origin:    p.origin,
		originLen: p.originLen,
		patched:   true,
		nodes:     nodes,
		apex:      nodes[p.origin],
		signed:    true,
		nsTargets: maps.Clone(p.nsTargets),
		nsecIndex: r.nsecIndex,
		nsec3:     r.nsec3,
		flatten:   p.flatten,
	}
	if z.flatten != FlattenOff {
		z.flatKeys = r.zoneSigners // flattened answers signed with today's keys
	}
	z.soaSet = z.apex.set(dns.TypeSOA)
	z.soa = z.soaSet.rrs[0].(*dns.SOA)
	z.negTTL = min(z.soa.Hdr.Ttl, z.soa.Minttl)
	at := func(_ dns.RR, format string, args ...any) *buildError {
		return &buildError{-1, fmt.Sprintf(format, args...)}
	}
	for _, n := range r.repl {
		if n == nil {
			continue
		}
		if err := z.checkNode(n, at); err != nil {
			return nil, fmt.Errorf("zone %s: %s", z.origin, err.msg)
		}
	}
	return z, nil
}

// collectRecords fills a patched zone's record list from its nodes, in
// canonical order, NSEC3 records last.
func (z *Zone) collectRecords() {
	names := make([]string, 0, len(z.nodes))
	for name := range z.nodes {
		names = append(names, name)
	}
	signSortNames(names)
	var out []dns.RR
	for _, name := range names {
		n := z.nodes[name]
		ts := make([]uint16, 0, len(n.sets))
		for t := range n.sets {
			ts = append(ts, t)
		}
		slices.Sort(ts)
		for _, t := range ts {
			out = append(out, n.sets[t].rrs...)
			out = append(out, n.sets[t].sigs...)
		}
	}
	if z.nsec3 != nil {
		for _, e := range z.nsec3.entries {
			out = append(out, e.set.rrs...)
			out = append(out, e.set.sigs...)
		}
	}
	z.records = out
}

// update records the signatures of an incremental signing and forgets
// those of RRsets that are gone; Stats then report this signing.
func (c *SignatureCache) update(jobs []signJob, digests [][sha256.Size]byte, results [][]dns.RR, reused []bool, dropped []sigCacheKey) {
	if c.entries == nil {
		c.entries = make(map[sigCacheKey]sigCacheEntry)
	}
	for _, k := range dropped {
		delete(c.entries, k)
	}
	c.stats = SignatureStats{}
	for i, j := range jobs {
		h := j.rrset[0].Header()
		c.entries[sigCacheKey{h.Name, h.Rrtype}] = sigCacheEntry{digest: digests[i], sigs: results[i]}
		if reused[i] {
			c.stats.Reused++
		} else {
			c.stats.Signed++
		}
	}
}

// MaxTTL is the largest TTL of the records at names (signatures and
// denial records included), for a signer's rollover waits after a patch.
func (z *Zone) MaxTTL(names []string) uint32 {
	var ttl uint32
	for _, name := range names {
		n := z.nodes[name]
		if n == nil {
			continue
		}
		for _, s := range n.sets {
			for _, rr := range s.rrs {
				ttl = max(ttl, rr.Header().Ttl)
			}
		}
	}
	return ttl
}
