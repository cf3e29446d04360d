package lab

import "github.com/miekg/dns"

// Expect is what a validating resolver should answer for a case.
type Expect string

const (
	ExpectSecure           Expect = "secure"            // NOERROR with data, AD set
	ExpectInsecure         Expect = "insecure"          // NOERROR with data, AD clear
	ExpectBogus            Expect = "bogus"             // SERVFAIL (EDE: DNSSEC bogus and the like)
	ExpectNXDomainSecure   Expect = "nxdomain-secure"   // NXDOMAIN, AD set
	ExpectNXDomainInsecure Expect = "nxdomain-insecure" // NXDOMAIN, AD clear
	ExpectNXDomain         Expect = "nxdomain"          // NXDOMAIN; AD depends on the validator (see the case)
	ExpectNoDataSecure     Expect = "nodata-secure"     // NOERROR, empty answer, AD set
	ExpectServfail         Expect = "servfail"          // SERVFAIL for a reason other than DNSSEC
)

// Case is one query the lab is built to exercise.
type Case struct {
	Name      string
	QName     string
	QType     uint16
	Expect    Expect
	Exercises string
}

// Cases lists the lab's cases with what a validating resolver (trust
// anchor: the lab's root DS) should answer.
func Cases() []Case {
	a, txt := dns.TypeA, dns.TypeTXT
	return []Case{
		{"root", ".", dns.TypeSOA, ExpectSecure, "signed root (alg 13 KSK+ZSK, NSEC), the trust anchor"},
		{"tld-nsec", "www.test.", a, ExpectSecure, "TLD signed KSK+ZSK with NSEC"},
		{"tld-nsec3", "www.example.", a, ExpectSecure, "TLD signed with a CSK and NSEC3"},
		{"alg8", "www." + SecureAlg8, a, ExpectSecure, "RSASHA256 KSK+ZSK; in-bailiwick glue in test."},
		{"alg13", "www." + SecureAlg13, a, ExpectSecure, "ECDSAP256SHA256 CSK; CDS/CDNSKEY published"},
		{"alg15", "www." + SecureAlg15, a, ExpectSecure, "ED25519 KSK+ZSK"},
		{"alg16", "www." + SecureAlg16, a, ExpectSecure, "ED448 (RFC 8080) CSK: secure where the validator implements ED448 (Sextant does), insecure otherwise"},
		{"nxdomain-nsec", "nonexistent." + SecureAlg13, a, ExpectNXDomainSecure, "NSEC proof of non-existence"},
		{"nxdomain-nsec-octets", `a\200b.` + SecureAlg13, a, ExpectNXDomainSecure, `NSEC proof between a\128 and a\255: names compare octet by octet, only ASCII letters fold (RFC 4343, RFC 4034 6.1)`},
		{"nodata-nsec", "www." + SecureAlg13, txt, ExpectNoDataSecure, "NSEC proof of no data"},
		{"ent-nsec", "ent." + SecureAlg13, a, ExpectNoDataSecure, "empty non-terminal (no NSEC owner; proved by the covering NSEC)"},
		{"nsec3", "www." + NSEC3Zone, a, ExpectSecure, "NSEC3 zone, iterations 0, no salt"},
		{"nxdomain-nsec3", "nonexistent." + NSEC3Zone, a, ExpectNXDomainSecure, "NSEC3 closest encloser proof"},
		{"nodata-nsec3", "www." + NSEC3Zone, txt, ExpectNoDataSecure, "NSEC3 no-data proof"},
		{"ent-nsec3", "ent." + NSEC3Zone, a, ExpectNoDataSecure, "empty non-terminal with its own NSEC3"},
		{"wildcard-nsec", "anything." + Wildcard, a, ExpectSecure, "wildcard expansion, NSEC proof that the name itself is absent"},
		{"wildcard-nodata-nsec", "anything." + Wildcard, dns.TypeMX, ExpectNoDataSecure, "wildcard no-data"},
		{"wildcard-nsec3", "x.wild." + NSEC3Zone, txt, ExpectSecure, "wildcard expansion under NSEC3"},
		{"optout-insecure", "www." + OptOutInsecureChild, a, ExpectInsecure, "unsigned child skipped by an NSEC3 opt-out span"},
		{"optout-secure", "www." + OptOutSecureChild, a, ExpectSecure, "signed child of an opt-out zone"},
		{"optout-nxdomain", "nonexistent." + OptOut, a, ExpectNXDomain, "NXDOMAIN whose next closer name is covered by an opt-out NSEC3 (many validators clear AD)"},
		{"insecure", "www." + Insecure, a, ExpectInsecure, "unsigned zone delegated from a signed parent (NSEC proves no DS)"},
		{"insecure-nsec3", "www." + InsecureNSEC3, a, ExpectInsecure, "unsigned zone delegated from an NSEC3 parent: the referral's matching NSEC3 (NS set, DS and SOA clear) proves no DS (RFC 5155 8.9)"},
		{"unsigned-tld", "www." + TLDUnsigned, a, ExpectInsecure, "unsigned TLD (no DS in the root)"},
		{"island", "www." + Island, a, ExpectInsecure, "signed zone below an unsigned TLD: insecure from the root anchor, secure with its own anchor (lab.ZoneDS)"},
		{"insecure-to-secure", "cname-back." + Insecure, a, ExpectInsecure, "CNAME from an insecure zone to a secure one"},
		{"bogus-sig", "www." + BogusSig, a, ExpectBogus, "RRSIG that does not match its RRset"},
		{"bogus-nosig", "nosig." + BogusSig, a, ExpectBogus, "RRset of a signed zone without RRSIG"},
		{"bogus-zone-ok-name", "ok." + BogusSig, a, ExpectSecure, "a well-signed name beside the broken ones"},
		{"expired", "www." + Expired, a, ExpectBogus, "every signature expired (window 60 to 30 days ago)"},
		{"bad-ds", "www." + BadDS, a, ExpectBogus, "DS in the parent matches no DNSKEY"},
		{"unsigned-dnskey", "www." + UnsignedDNSKEY, a, ExpectBogus, "DNSKEY RRset without RRSIG"},
		{"unknown-alg", "www." + UnknownAlgorithm, a, ExpectInsecure, "DS and keys of algorithm 253 only: no supported algorithm, so insecure (RFC 4035 5.2)"},
		{"unknown-digest", "www." + UnknownDigest, a, ExpectInsecure, "the only DS has an unknown digest type (200): insecure (RFC 4035 5.2, RFC 6840 5.2)"},
		{"future", "www." + Future, a, ExpectBogus, "signatures not yet valid (inception in 10 days)"},
		{"nodenial-nxdomain", "nonexistent." + NoDenial, a, ExpectBogus, "NXDOMAIN from a signed zone without any NSEC proof"},
		{"nodenial-www", "www." + NoDenial, a, ExpectSecure, "positive answer from the zone that lacks its NSEC chain"},
		{"cname-secure", "cname-secure." + SecureAlg13, a, ExpectSecure, "CNAME secure to secure, across zones"},
		{"cname-insecure", "cname-insecure." + SecureAlg13, a, ExpectInsecure, "CNAME secure to insecure"},
		{"cname-cross-tld", "cname-example." + SecureAlg13, a, ExpectSecure, "CNAME to another TLD"},
		{"cname-chain", "chain." + SecureAlg13, a, ExpectSecure, "two CNAMEs over three zones (secure13 -> secure8 -> nsec3)"},
		{"cname-bogus", "cname-bogus." + SecureAlg13, a, ExpectBogus, "CNAME from a secure zone to a bogus answer"},
		{"dname", "www.dname." + SecureAlg13, a, ExpectSecure, "DNAME secure13 -> secure15 with a synthesised CNAME"},
		{"dname-twice", "back.dname." + SecureAlg13, a, ExpectSecure, "a chain that passes the DNAME secure13 -> secure15 twice: the DNAME is in the answer once"},
		{"dname-insecure", "www.dname-insecure." + SecureAlg13, a, ExpectInsecure, "signed DNAME to an unsigned zone: no AD"},
		{"dname-loop", "x.dloop." + SecureAlg13, a, ExpectServfail, "DNAME loop across two zones (secure13 <-> secure15)"},
		{"cname-loop", "loop." + SecureAlg13, a, ExpectServfail, "CNAME loop across two zones"},
		{"glueless", "www." + Glueless, a, ExpectSecure, "name servers only named in example.: no glue possible"},
		{"dead-ns", "www." + DeadNS, a, ExpectSecure, "one name server drops every query, the other works"},
		{"refused-ns", "www." + RefusedNS, a, ExpectSecure, "one name server answers REFUSED, the other works"},
		{"lame", "www." + Lame, a, ExpectServfail, "the only name server answers REFUSED"},
		{"slow-ns", "www." + SlowNS, a, ExpectSecure, "one slow name server (Config.SlowDelay) beside a fast one"},
		{"big", "big." + SecureAlg13, txt, ExpectSecure, "answer over 1232 bytes: truncated over UDP, whole over TCP"},
		{"bulk", "h0." + Bulk, a, ExpectSecure, "bulk host names h0..h<N-1> for load tests"},
		{"iter100", "www." + HighIterations, a, ExpectSecure, "positive answer from a zone with 100 NSEC3 iterations"},
		{"iter100-nxdomain", "nonexistent." + HighIterations, a, ExpectNXDomainInsecure, "NSEC3 with 100 iterations: over the RFC 9276 limit, insecure (SERVFAIL also allowed)"},
	}
}
