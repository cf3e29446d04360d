package authority

import "github.com/miekg/dns"

// CDSRecords returns the CDS (SHA-256) and CDNSKEY records (RFC 7344) of
// the SEP keys among keys, with ttl, for signers that publish CDS for a
// key not (yet) in the DNSKEY RRset, as a double-DS KSK rollover does:
// give them to Sign with PublishCDS off.
func CDSRecords(keys []*dns.DNSKEY, ttl uint32) []dns.RR {
	return signCDSRecords(keys, ttl)
}
