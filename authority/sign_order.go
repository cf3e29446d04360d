package authority

import (
	"bytes"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// This file holds the canonical DNS name order of RFC 4034 6.1, which the
// NSEC chain follows and which Sign uses to emit records deterministically.

// signLabels returns the labels of name in wire form, lower-cased and
// most significant first (com, example, www), so that names compare label by
// label as RFC 4034 6.1 asks. Escapes (\. or \DDD) are resolved.
func signLabels(name string) [][]byte {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		// Unpackable names cannot reach here from a parsed record; fall back
		// to the presentation labels so the order is still total.
		parts := dns.SplitDomainName(strings.ToLower(name))
		out := make([][]byte, len(parts))
		for i, p := range parts {
			out[len(parts)-1-i] = []byte(p)
		}
		return out
	}
	var labels [][]byte
	for off := 0; off < n; {
		l := int(buf[off])
		if l == 0 {
			break
		}
		label := bytes.ToLower(buf[off+1 : off+1+l])
		labels = append(labels, label)
		off += 1 + l
	}
	slices.Reverse(labels)
	return labels
}

// signCompareLabels compares two names given as signLabels.
func signCompareLabels(a, b [][]byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := bytes.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// signCanonicalCompare orders two domain names as RFC 4034 6.1 does: by labels
// from the most significant, each compared as lower-cased octets, a name
// sorting before its own subdomains. It returns <0, 0 or >0.
func signCanonicalCompare(a, b string) int {
	return signCompareLabels(signLabels(a), signLabels(b))
}

// signNameOrder caches the canonical labels of names so that sorting many
// records computes each name's labels once.
type signNameOrder map[string][][]byte

func (o signNameOrder) labels(name string) [][]byte {
	if l, ok := o[name]; ok {
		return l
	}
	l := signLabels(name)
	o[name] = l
	return l
}

func (o signNameOrder) compare(a, b string) int {
	if a == b {
		return 0
	}
	return signCompareLabels(o.labels(a), o.labels(b))
}

// signSortNames sorts names in canonical order.
func signSortNames(names []string) {
	o := make(signNameOrder, len(names))
	slices.SortFunc(names, o.compare)
}

// signSortRecords puts records in a deterministic canonical order: by owner
// name (RFC 4034 6.1), then type, RRSIGs by the type they cover, then by
// wire-form RDATA.
func signSortRecords(rrs []dns.RR) {
	type keyed struct {
		rr      dns.RR
		typ     uint16
		covered uint16
		rdata   []byte
	}
	ks := make([]keyed, len(rrs))
	buf := make([]byte, 0, 512)
	for i, rr := range rrs {
		k := keyed{rr: rr, typ: rr.Header().Rrtype}
		if sig, ok := rr.(*dns.RRSIG); ok {
			k.covered = sig.TypeCovered
		}
		k.rdata, buf = signRdataBytes(rr, buf)
		ks[i] = k
	}
	o := make(signNameOrder)
	slices.SortStableFunc(ks, func(a, b keyed) int {
		if c := o.compare(a.rr.Header().Name, b.rr.Header().Name); c != 0 {
			return c
		}
		if a.typ != b.typ {
			return int(a.typ) - int(b.typ)
		}
		if a.covered != b.covered {
			return int(a.covered) - int(b.covered)
		}
		return bytes.Compare(a.rdata, b.rdata)
	})
	for i := range ks {
		rrs[i] = ks[i].rr
	}
}

// signRdataBytes packs rr without compression and returns a copy of its RDATA.
// buf is scratch space, returned for reuse.
func signRdataBytes(rr dns.RR, buf []byte) ([]byte, []byte) {
	buf = buf[:cap(buf)]
	for {
		off, err := dns.PackRR(rr, buf, 0, nil, false)
		if err == nil {
			rdlen := int(rr.Header().Rdlength)
			if rdlen > off {
				rdlen = off
			}
			return bytes.Clone(buf[off-rdlen : off]), buf
		}
		if len(buf) >= 65535+512 {
			// Cannot pack: order by presentation form instead.
			return []byte(rr.String()), buf
		}
		buf = make([]byte, 2*len(buf)+512)
	}
}
