package authority

import (
	"sort"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// This file finds, in a zone's pre-signed data, the NSEC (RFC 4035 3.1.3)
// or NSEC3 (RFC 5155 7.2) records that prove a negative or wildcard answer.
// Unsigned zones have neither and every function here adds nothing.

// nsecCovering returns the NSEC RRset whose owner is the greatest owner at
// or before name in canonical order: the one that matches or covers name.
// Before the first owner it wraps to the last, whose next name is the apex.
func (z *Zone) nsecCovering(name string) *rrset {
	if len(z.nsecIndex) == 0 {
		return nil
	}
	labels, ok := dnsname.CanonicalLabels(name)
	if !ok {
		return nil
	}
	i := sort.Search(len(z.nsecIndex), func(i int) bool {
		return dnsname.CompareLabels(z.nsecIndex[i].labels, labels) > 0
	})
	if i == 0 {
		i = len(z.nsecIndex)
	}
	return z.nsecIndex[i-1].node.nsec
}

// find returns the NSEC3 RRset whose hash equals h, or else the one that
// covers h (the greatest hash below it, wrapping to the last).
func (c *nsec3Chain) find(h string) (matched, covering *rrset) {
	if len(c.entries) == 0 || h == "" {
		return nil, nil
	}
	i := sort.Search(len(c.entries), func(i int) bool { return c.entries[i].hash >= h })
	if i < len(c.entries) && c.entries[i].hash == h {
		return c.entries[i].set, nil
	}
	if i == 0 {
		i = len(c.entries)
	}
	return nil, c.entries[i-1].set
}

// hashOf returns the NSEC3 hash of a canonical name, precomputed for names
// in the tree.
func (z *Zone) hashOf(name string) string {
	if n := z.nodes[name]; n != nil && n.nsec3h != "" {
		return n.nsec3h
	}
	return z.nsec3.hashName(name)
}

func (z *Zone) nsec3Match(name string) *rrset {
	m, _ := z.nsec3.find(z.hashOf(name))
	return m
}

func (z *Zone) nsec3Cover(name string) *rrset {
	m, c := z.nsec3.find(z.hashOf(name))
	if m != nil {
		return nil // the name's hash exists: nothing can cover it
	}
	return c
}

// nextCloser returns the ancestor of name (or name) that has one label
// more than its ancestor ce.
func nextCloser(name, ce string) string {
	return dnsname.LastLabels(name, dnsname.CountLabels(ce)+1)
}

// proveClosestEncloser adds the RFC 5155 7.2.1 closest (provable) encloser
// proof for name: the NSEC3 matching the nearest ancestor at or above from
// that has one, and the NSEC3 covering the next closer name. It returns the
// encloser it proved ("" if none).
func (z *Zone) proveClosestEncloser(r *responder, name, from string) string {
	for ce := from; ; ce = dnsname.Parent(ce) {
		if m := z.nsec3Match(ce); m != nil {
			r.addProof(m)
			r.addProof(z.nsec3Cover(nextCloser(name, ce)))
			return ce
		}
		if ce == z.origin || !dnsname.IsAtOrBelow(ce, z.origin) {
			return ""
		}
	}
}

// proveNXDomain: the name does not exist and neither does the wildcard at
// its closest encloser ce (RFC 4035 3.1.3.2, RFC 5155 7.2.2).
func (z *Zone) proveNXDomain(r *responder, name, ce string) {
	switch {
	case z.nsec3 != nil:
		if pce := z.proveClosestEncloser(r, name, ce); pce != "" {
			r.addProof(z.nsec3Cover(wildcardName(pce)))
		}
	case len(z.nsecIndex) > 0:
		r.addProof(z.nsecCovering(name))
		r.addProof(z.nsecCovering(wildcardName(ce)))
	}
}

// proveNoData: the name n exists but has no records of the type asked
// (RFC 4035 3.1.3.1, RFC 5155 7.2.3). Empty non-terminals have no NSEC of
// their own: the NSEC before them covers them. With NSEC3 a name without a
// matching NSEC3 (a DS query at an opt-out delegation, RFC 5155 7.2.4, or
// an empty non-terminal left out by opt-out) gets the closest provable
// encloser proof.
func (z *Zone) proveNoData(r *responder, name string, n *node) {
	switch {
	case z.nsec3 != nil:
		if m := z.nsec3Match(name); m != nil {
			r.addProof(m)
			return
		}
		z.proveClosestEncloser(r, name, dnsname.Parent(name))
	case len(z.nsecIndex) > 0:
		if n.nsec != nil {
			r.addProof(n.nsec)
			return
		}
		r.addProof(z.nsecCovering(name))
	}
}

// proveWildcardNoData: the name does not exist, the wildcard w at its
// closest encloser ce does but lacks the type (RFC 4035 3.1.3.4, RFC 5155
// 7.2.5). A wildcard that is an empty non-terminal ("*.w" above "a.*.w")
// owns no NSEC: the NSEC before it, whose next name is below it, proves it
// empty, so the NSEC matching or covering w is the one to send.
func (z *Zone) proveWildcardNoData(r *responder, name, ce string, w *node) {
	switch {
	case z.nsec3 != nil:
		z.proveClosestEncloser(r, name, ce)
		r.addProof(z.nsec3Match(w.name))
	case len(z.nsecIndex) > 0:
		r.addProof(z.nsecCovering(name))
		r.addProof(z.nsecCovering(w.name))
	}
}

// proveWildcardAnswer: an answer synthesised from the wildcard at ce needs
// the proof that the name itself does not exist (RFC 4035 3.1.3.3, RFC 5155
// 7.2.6: the NSEC3 covering the next closer name).
func (z *Zone) proveWildcardAnswer(r *responder, name, ce string) {
	switch {
	case z.nsec3 != nil:
		r.addProof(z.nsec3Cover(nextCloser(name, ce)))
	case len(z.nsecIndex) > 0:
		r.addProof(z.nsecCovering(name))
	}
}

// proveNoDS: an insecure delegation at cut has no DS (RFC 4035 3.1.4, RFC
// 5155 7.2.7: the matching NSEC3, or with opt-out the closest provable
// encloser proof whose next-closer NSEC3 has the opt-out flag).
func (z *Zone) proveNoDS(r *responder, cut *node) {
	switch {
	case z.nsec3 != nil:
		if m := z.nsec3Match(cut.name); m != nil {
			r.addProof(m)
			return
		}
		z.proveClosestEncloser(r, cut.name, dnsname.Parent(cut.name))
	case len(z.nsecIndex) > 0:
		r.addProof(cut.nsec)
	}
}

// wildcardName returns the wildcard name directly below ce.
func wildcardName(ce string) string {
	if ce == "." {
		return "*."
	}
	return "*." + ce
}
