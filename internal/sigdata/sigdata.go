// Package sigdata builds the bytes an RRSIG signs (RFC 4034 3.1.8.1): the
// one definition shared by the zone signer (authority) and the validator, so
// that what we sign and what we verify cannot drift apart.
package sigdata

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Build builds the data an RRSIG signs (RFC 4034 section 3.1.8.1,
// RFC 4035 section 5.3.2): the RRSIG RDATA without the signature, then the
// RRset in canonical form (section 6.2) and canonical order (section 6.3),
// with duplicates removed. It is computed once per signature and shared by
// every candidate key.
func Build(rrset []dns.RR, sig *dns.RRSIG) ([]byte, error) {
	buf := make([]byte, 0, 512)
	buf = binary.BigEndian.AppendUint16(buf, sig.TypeCovered)
	buf = append(buf, sig.Algorithm, sig.Labels)
	buf = binary.BigEndian.AppendUint32(buf, sig.OrigTtl)
	buf = binary.BigEndian.AppendUint32(buf, sig.Expiration)
	buf = binary.BigEndian.AppendUint32(buf, sig.Inception)
	buf = binary.BigEndian.AppendUint16(buf, sig.KeyTag)
	var name [256]byte
	n, err := dns.PackDomainName(dnsname.Canonical(sig.SignerName), name[:], 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack signer name: %w", err)
	}
	buf = append(buf, name[:n]...)

	wires := make([][]byte, 0, len(rrset))
	for _, rr := range rrset {
		w, err := canonicalWire(rr, sig)
		if err != nil {
			return nil, err
		}
		wires = append(wires, w)
	}
	// All owners are equal after canonicalisation, so ordering by RDATA is
	// ordering by the whole wire form past the fixed owner+header prefix.
	slices.SortFunc(wires, func(a, b []byte) int { return bytes.Compare(rdataOf(a), rdataOf(b)) })
	for i, w := range wires {
		if i > 0 && bytes.Equal(w, wires[i-1]) {
			continue
		}
		buf = append(buf, w...)
	}
	return buf, nil
}

// rdataOf skips the owner name and the 10 fixed header bytes.
func rdataOf(wire []byte) []byte {
	_, off, err := dns.UnpackDomainName(wire, 0)
	if err != nil || off+10 > len(wire) {
		return wire
	}
	return wire[off+10:]
}

// canonicalWire packs rr in canonical form: owner lower-cased (and replaced
// by the wildcard owner when the RRSIG Labels say so), TTL set to the
// original TTL, and the embedded names of the RFC 4034 6.2 list (as amended
// by RFC 6840 5.1) lower-cased.
func canonicalWire(rr dns.RR, sig *dns.RRSIG) ([]byte, error) {
	c := dns.Copy(rr)
	h := c.Header()
	h.Ttl = sig.OrigTtl
	if OwnerLabels(h.Name) > int(sig.Labels) {
		h.Name = "*." + LastLabels(h.Name, int(sig.Labels))
		if sig.Labels == 0 {
			h.Name = "*."
		}
	}
	h.Name = dnsname.Canonical(h.Name)
	switch x := c.(type) {
	case *dns.NS:
		x.Ns = dnsname.Canonical(x.Ns)
	case *dns.MD:
		x.Md = dnsname.Canonical(x.Md)
	case *dns.MF:
		x.Mf = dnsname.Canonical(x.Mf)
	case *dns.CNAME:
		x.Target = dnsname.Canonical(x.Target)
	case *dns.SOA:
		x.Ns = dnsname.Canonical(x.Ns)
		x.Mbox = dnsname.Canonical(x.Mbox)
	case *dns.MB:
		x.Mb = dnsname.Canonical(x.Mb)
	case *dns.MG:
		x.Mg = dnsname.Canonical(x.Mg)
	case *dns.MR:
		x.Mr = dnsname.Canonical(x.Mr)
	case *dns.PTR:
		x.Ptr = dnsname.Canonical(x.Ptr)
	case *dns.MINFO:
		x.Rmail = dnsname.Canonical(x.Rmail)
		x.Email = dnsname.Canonical(x.Email)
	case *dns.MX:
		x.Mx = dnsname.Canonical(x.Mx)
	case *dns.RP:
		x.Mbox = dnsname.Canonical(x.Mbox)
		x.Txt = dnsname.Canonical(x.Txt)
	case *dns.AFSDB:
		x.Hostname = dnsname.Canonical(x.Hostname)
	case *dns.RT:
		x.Host = dnsname.Canonical(x.Host)
	case *dns.SIG:
		x.SignerName = dnsname.Canonical(x.SignerName)
	case *dns.PX:
		x.Map822 = dnsname.Canonical(x.Map822)
		x.Mapx400 = dnsname.Canonical(x.Mapx400)
	case *dns.NAPTR:
		x.Replacement = dnsname.Canonical(x.Replacement)
	case *dns.KX:
		x.Exchanger = dnsname.Canonical(x.Exchanger)
	case *dns.SRV:
		x.Target = dnsname.Canonical(x.Target)
	case *dns.DNAME:
		x.Target = dnsname.Canonical(x.Target)
	}
	wire := make([]byte, dns.Len(c)+1)
	off, err := dns.PackRR(c, wire, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack %s RR: %w", dns.TypeToString[h.Rrtype], err)
	}
	return wire[:off], nil
}

// OwnerLabels counts the labels of an owner name as the RRSIG Labels field
// does: the root is 0 and a leading "*" label is not counted (RFC 4034
// 3.1.3).
func OwnerLabels(name string) int {
	n := dnsname.CountLabels(name)
	if len(name) >= 2 && name[0] == '*' && name[1] == '.' {
		n--
	}
	return n
}

// LastLabels returns the name made of the last n labels of name (the
// wildcard owner's suffix when a signature's Labels is below the owner's).
func LastLabels(name string, n int) string {
	if n >= dnsname.CountLabels(name) {
		return dns.Fqdn(name)
	}
	return dnsname.LastLabels(name, n)
}
