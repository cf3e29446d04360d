package validator

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// NegativeTrustAnchors is a set of negative trust anchors (RFC 7646) that
// may change while the validator runs: an operator adds one for a zone
// whose signatures broke and removes it once the zone is repaired (RFC
// 7646 8: they are meant to be short-lived), without a restart. Readers
// take one atomic load; writers copy the list (it is short). Safe for
// concurrent use.
type NegativeTrustAnchors struct {
	mu    sync.Mutex // serialises writers
	names atomic.Pointer[[]string]
}

// NewNegativeTrustAnchors makes a set holding names.
func NewNegativeTrustAnchors(names ...string) (*NegativeTrustAnchors, error) {
	n := &NegativeTrustAnchors{}
	return n, n.Set(names)
}

// ntaName checks name and returns its canonical form.
func ntaName(name string) (string, error) {
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return "", fmt.Errorf("negative trust anchor %q: not a domain name", name)
	}
	return dns.CanonicalName(name), nil
}

// Set replaces the whole set with names; on an error nothing changes.
func (n *NegativeTrustAnchors) Set(names []string) error {
	list := make([]string, 0, len(names))
	for _, name := range names {
		c, err := ntaName(name)
		if err != nil {
			return err
		}
		if !slices.Contains(list, c) {
			list = append(list, c)
		}
	}
	slices.Sort(list)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names.Store(&list)
	return nil
}

// Add adds name and reports whether it was new.
func (n *NegativeTrustAnchors) Add(name string) (bool, error) {
	c, err := ntaName(name)
	if err != nil {
		return false, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := n.List()
	if slices.Contains(cur, c) {
		return false, nil
	}
	next := append(cur, c)
	slices.Sort(next)
	n.names.Store(&next)
	return true, nil
}

// Remove removes name and reports whether it was there.
func (n *NegativeTrustAnchors) Remove(name string) (bool, error) {
	c, err := ntaName(name)
	if err != nil {
		return false, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := n.List()
	i := slices.Index(cur, c)
	if i < 0 {
		return false, nil
	}
	next := slices.Delete(cur, i, i+1)
	n.names.Store(&next)
	return true, nil
}

// List returns the names, sorted, in a slice the caller may keep.
func (n *NegativeTrustAnchors) List() []string {
	if p := n.names.Load(); p != nil {
		return slices.Clone(*p)
	}
	return nil
}

// Covers reports whether name is at or below one of the anchors.
func (n *NegativeTrustAnchors) Covers(name string) bool {
	p := n.names.Load()
	if p == nil {
		return false
	}
	for _, a := range *p {
		if dnsname.IsAtOrBelow(name, a) {
			return true
		}
	}
	return false
}

// WithNegativeTrustAnchorSet is WithNegativeTrustAnchors with a set the
// caller may change while the validator runs (NegativeTrustAnchors).
// Validation results already cached elsewhere (an RRset cache's marks) are
// the caller's to flush when the set changes.
func WithNegativeTrustAnchorSet(s *NegativeTrustAnchors) Option {
	return func(v *Validator) { v.ntaSet = s }
}
