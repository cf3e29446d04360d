package authority

import (
	"github.com/miekg/dns"
)

// DS returns the DS record the parent zone publishes for this key, with the
// given digest type (dns.SHA256 = 2 is the one to use; dns.SHA384 = 4 also
// works). It returns nil for an unknown digest type.
func (k *Key) DS(digest uint8) *dns.DS {
	return k.DNSKEY.ToDS(digest)
}

// signCDSRecords builds the CDS (SHA-256) and CDNSKEY records that signal the
// zone's current secure entry points to the parent (RFC 7344), one pair per
// SEP key, with the DNSKEY RRset's TTL.
func signCDSRecords(keys []*dns.DNSKEY, ttl uint32) []dns.RR {
	var out []dns.RR
	for _, k := range keys {
		if k.Flags&dns.SEP == 0 || k.Flags&dns.REVOKE != 0 {
			continue
		}
		ds := k.ToDS(dns.SHA256)
		if ds == nil {
			continue
		}
		cds := ds.ToCDS()
		cds.Hdr.Ttl = ttl
		cdnskey := k.ToCDNSKEY()
		cdnskey.Hdr.Ttl = ttl
		out = append(out, cds, cdnskey)
	}
	return out
}

// signCDSDeleteRecords builds the CDS and CDNSKEY records that ask the parent to
// remove the DS RRset and make the delegation insecure (RFC 8078 4).
func signCDSDeleteRecords(origin string, ttl uint32) []dns.RR {
	cds := &dns.CDS{DS: dns.DS{
		Hdr:    dns.RR_Header{Name: origin, Rrtype: dns.TypeCDS, Class: dns.ClassINET, Ttl: ttl},
		Digest: "00",
	}}
	cdnskey := &dns.CDNSKEY{DNSKEY: dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: origin, Rrtype: dns.TypeCDNSKEY, Class: dns.ClassINET, Ttl: ttl},
		Protocol:  3,
		PublicKey: "AA==",
	}}
	return []dns.RR{cds, cdnskey}
}
