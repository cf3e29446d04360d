package authority

import (
	"bytes"
	"slices"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// This file holds the canonical DNS name order of RFC 4034 6.1, which the
// NSEC chain follows and which Sign uses to emit records deterministically.

// signLabels returns the labels of name as wireLabels does (wire form,
// lower-cased, most significant first), so that names compare label by
// label as RFC 4034 6.1 asks.
func signLabels(name string) [][]byte {
	if labels, ok := dnsname.CanonicalLabels(dns.Fqdn(name)); ok {
		return labels
	}
	// Unpackable names cannot reach here from a parsed record; fall back to
	// the presentation labels so the order is still total.
	parts := dns.SplitDomainName(dnsname.Lower(name))
	out := make([][]byte, len(parts))
	for i, p := range parts {
		out[len(parts)-1-i] = []byte(p)
	}
	return out
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

// signSortNames sorts names in canonical order. Each name's labels are
// computed once, beside it, so that comparisons do no map lookups.
func signSortNames(names []string) {
	type keyed struct {
		name   string
		labels [][]byte
	}
	ks := make([]keyed, len(names))
	for i, n := range names {
		ks[i] = keyed{n, signLabels(n)}
	}
	slices.SortFunc(ks, func(a, b keyed) int { return dnsname.CompareLabels(a.labels, b.labels) })
	for i := range ks {
		names[i] = ks[i].name
	}
}

// signSortRecords puts records in a deterministic canonical order: by owner
// name (RFC 4034 6.1), then type, RRSIGs by the type they cover, then by
// wire-form RDATA.
func signSortRecords(rrs []dns.RR) {
	type keyed struct {
		rr      dns.RR
		labels  [][]byte
		typ     uint16
		covered uint16
		rdata   []byte
	}
	ks := make([]keyed, len(rrs))
	buf := make([]byte, 0, 512)
	o := make(signNameOrder)
	for i, rr := range rrs {
		k := keyed{rr: rr, labels: o.labels(rr.Header().Name), typ: rr.Header().Rrtype}
		if sig, ok := rr.(*dns.RRSIG); ok {
			k.covered = sig.TypeCovered
		}
		k.rdata, buf = signRdataBytes(rr, buf)
		ks[i] = k
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := dnsname.CompareLabels(a.labels, b.labels); c != 0 {
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
