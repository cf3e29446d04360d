package authority

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// This file signs RRsets for algorithms miekg/dns cannot sign with (ED448,
// RFC 8080): it builds the signed data of RFC 4034 3.1.8.1 itself and
// hands it to the key as it is (EdDSA signs the message, not a hash).

// signRaw fills in sig's covered type, labels and original TTL and signs
// rrset with k.
func signRaw(sig *dns.RRSIG, k crypto.Signer, rrset []dns.RR) error {
	h := rrset[0].Header()
	sig.Hdr.Rrtype = dns.TypeRRSIG
	sig.Hdr.Name = h.Name
	sig.Hdr.Class = h.Class
	if sig.OrigTtl == 0 {
		sig.OrigTtl = h.Ttl
	}
	sig.TypeCovered = h.Rrtype
	sig.Labels = signLabelCount(h.Name)
	data, err := signData(sig, rrset)
	if err != nil {
		return err
	}
	raw, err := k.Sign(rand.Reader, data, crypto.Hash(0))
	if err != nil {
		return err
	}
	sig.Signature = base64.StdEncoding.EncodeToString(raw)
	return nil
}

// signLabelCount is the RRSIG Labels field for owner: its label count, less
// one for a leading "*" label (RFC 4034 3.1.3).
func signLabelCount(owner string) uint8 {
	n := dns.CountLabel(owner)
	if owner == "*" || strings.HasPrefix(owner, "*.") {
		n--
	}
	return uint8(n)
}

// signData is RRSIG_RDATA (without the signature) | RR(1) | RR(2) ...,
// each RR in canonical form (RFC 4034 6.2) and the RRs in canonical order
// (6.3), duplicates removed.
func signData(sig *dns.RRSIG, rrset []dns.RR) ([]byte, error) {
	var buf bytes.Buffer
	var fixed [18]byte
	binary.BigEndian.PutUint16(fixed[0:], sig.TypeCovered)
	fixed[2] = sig.Algorithm
	fixed[3] = sig.Labels
	binary.BigEndian.PutUint32(fixed[4:], sig.OrigTtl)
	binary.BigEndian.PutUint32(fixed[8:], sig.Expiration)
	binary.BigEndian.PutUint32(fixed[12:], sig.Inception)
	binary.BigEndian.PutUint16(fixed[16:], sig.KeyTag)
	buf.Write(fixed[:])
	signer, err := signWireName(sig.SignerName)
	if err != nil {
		return nil, err
	}
	buf.Write(signer)

	type canon struct{ head, rdata []byte }
	rrs := make([]canon, 0, len(rrset))
	for _, rr := range rrset {
		c := dns.Copy(rr)
		hd := c.Header()
		hd.Ttl = sig.OrigTtl
		labels := dns.SplitDomainName(hd.Name)
		if len(labels) > int(sig.Labels) {
			hd.Name = "*." + strings.Join(labels[len(labels)-int(sig.Labels):], ".") + "."
		}
		hd.Name = dns.CanonicalName(hd.Name)
		signLowerRdata(c)
		wire := make([]byte, dns.Len(c)+1)
		off, err := dns.PackRR(c, wire, 0, nil, false)
		if err != nil {
			return nil, fmt.Errorf("canonical form of %s: %w", rr.Header().Name, err)
		}
		wire = wire[:off]
		split := off - int(hd.Rdlength)
		rrs = append(rrs, canon{head: wire[:split], rdata: wire[split:]})
	}
	slices.SortFunc(rrs, func(a, b canon) int { return bytes.Compare(a.rdata, b.rdata) })
	for i, r := range rrs {
		if i > 0 && bytes.Equal(r.rdata, rrs[i-1].rdata) {
			continue
		}
		buf.Write(r.head)
		buf.Write(r.rdata)
	}
	return buf.Bytes(), nil
}

// signWireName is name lower-cased in uncompressed wire form.
func signWireName(name string) ([]byte, error) {
	var b [256]byte
	n, err := dns.PackDomainName(dns.CanonicalName(name), b[:], 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("pack %q: %w", name, err)
	}
	return bytes.Clone(b[:n]), nil
}

// signLowerRdata lower-cases the domain names inside the RDATA of the
// types RFC 4034 6.2 (as amended by RFC 6840 5.1) lists.
func signLowerRdata(rr dns.RR) {
	switch x := rr.(type) {
	case *dns.NS:
		x.Ns = dns.CanonicalName(x.Ns)
	case *dns.MD:
		x.Md = dns.CanonicalName(x.Md)
	case *dns.MF:
		x.Mf = dns.CanonicalName(x.Mf)
	case *dns.CNAME:
		x.Target = dns.CanonicalName(x.Target)
	case *dns.SOA:
		x.Ns = dns.CanonicalName(x.Ns)
		x.Mbox = dns.CanonicalName(x.Mbox)
	case *dns.MB:
		x.Mb = dns.CanonicalName(x.Mb)
	case *dns.MG:
		x.Mg = dns.CanonicalName(x.Mg)
	case *dns.MR:
		x.Mr = dns.CanonicalName(x.Mr)
	case *dns.PTR:
		x.Ptr = dns.CanonicalName(x.Ptr)
	case *dns.MINFO:
		x.Rmail = dns.CanonicalName(x.Rmail)
		x.Email = dns.CanonicalName(x.Email)
	case *dns.MX:
		x.Mx = dns.CanonicalName(x.Mx)
	case *dns.RP:
		x.Mbox = dns.CanonicalName(x.Mbox)
		x.Txt = dns.CanonicalName(x.Txt)
	case *dns.AFSDB:
		x.Hostname = dns.CanonicalName(x.Hostname)
	case *dns.RT:
		x.Host = dns.CanonicalName(x.Host)
	case *dns.SIG:
		x.SignerName = dns.CanonicalName(x.SignerName)
	case *dns.PX:
		x.Map822 = dns.CanonicalName(x.Map822)
		x.Mapx400 = dns.CanonicalName(x.Mapx400)
	case *dns.NAPTR:
		x.Replacement = dns.CanonicalName(x.Replacement)
	case *dns.KX:
		x.Exchanger = dns.CanonicalName(x.Exchanger)
	case *dns.SRV:
		x.Target = dns.CanonicalName(x.Target)
	case *dns.DNAME:
		x.Target = dns.CanonicalName(x.Target)
	}
}
