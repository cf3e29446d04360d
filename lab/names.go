package lab

// Zone names of the lab, so that other packages' tests name the cases
// rather than spell them. Every zone has a "www" A record unless said.
const (
	Root       = "."
	TLDTest    = "test."    // alg 13 KSK+ZSK, NSEC; parent of most cases
	TLDExample = "example." // alg 13 CSK, NSEC3; holds hosting.example name servers
	// TLDUnsigned is an unsigned TLD (no DS in the root, no keys).
	TLDUnsigned = "unsigned."
	// Island is a signed zone below TLDUnsigned: no chain of trust from
	// the root reaches it; a trust anchor of its own does (RFC 4033 5).
	Island = "island.unsigned."
	// InsecureNSEC3 is an unsigned zone delegated from example. (NSEC3,
	// no opt-out): the referral's matching NSEC3 proves there is no DS.
	InsecureNSEC3 = "insecure.example."

	SecureAlg8  = "secure8.test."  // RSASHA256 KSK+ZSK, NSEC, in-bailiwick glue
	SecureAlg13 = "secure13.test." // ECDSAP256SHA256 CSK, NSEC, CDS/CDNSKEY; CNAME, DNAME, ENT, big answer
	SecureAlg15 = "secure15.test." // ED25519 KSK+ZSK, NSEC, in-bailiwick glue
	SecureAlg16 = "secure16.test." // ED448 CSK, NSEC
	NSEC3Zone   = "nsec3.test."    // alg 13, NSEC3 iterations 0, no salt; wildcard, ENT
	OptOut      = "optout.test."   // alg 13, NSEC3 opt-out with a secure and an insecure child
	// OptOutSecureChild and OptOutInsecureChild are the children of OptOut.
	OptOutSecureChild   = "secure.optout.test."
	OptOutInsecureChild = "insecure.optout.test."
	Insecure            = "insecure.test."        // unsigned, no DS in test.
	BogusSig            = "bogus-sig.test."       // www's RRSIG corrupted, nosig's RRSIG removed, ok is fine
	Expired             = "expired.test."         // every signature expired 30 days ago
	BadDS               = "bad-ds.test."          // DS in test. matches no DNSKEY
	UnsignedDNSKEY      = "unsigned-dnskey.test." // DNSKEY RRset without RRSIG
	Wildcard            = "wild.test."            // *.wild.test, NSEC
	Glueless            = "glueless.test."        // name servers only in example.
	DeadNS              = "deadns.test."          // one server drops everything, one works
	RefusedNS           = "refused.test."         // one server REFUSEs, one works
	Lame                = "lame.test."            // only server REFUSEs: unresolvable
	SlowNS              = "slow.test."            // one slow server, one fast
	Bulk                = "bulk.test."            // h0 .. h<BulkHosts-1>, for load tests
	HighIterations      = "iter100.test."         // NSEC3 with 100 iterations (RFC 9276 limit)
	UnknownAlgorithm    = "unknown-alg.test."     // DNSKEY/RRSIG/DS of algorithm 253 (PRIVATEDNS)
	UnknownDigest       = "unknown-digest.test."  // the only DS has digest type 200
	Future              = "future.test."          // signatures valid from 10 days on
	NoDenial            = "nodenial.test."        // signed, but its NSEC chain removed
)

// Name-server host names. Each maps to one Server.
const (
	HostRootA     = "a.root-servers.test."
	HostRootB     = "b.root-servers.test."
	HostNIC1      = "ns1.nic.test." // test. and example.
	HostNIC2      = "ns2.nic.test."
	HostZones1    = "ns1.zones.test." // second-level zones
	HostZones2    = "ns2.zones.test."
	HostSub       = "ns1.sub.test."         // third-level zones (children of optout.test)
	HostDead      = "dead.servers.test."    // drops every query
	HostRefused   = "refused.servers.test." // answers REFUSED
	HostSlow      = "slow.servers.test."    // adds Config.SlowDelay
	HostSecure8A  = "ns1.secure8.test."     // = HostZones1, with glue in test.
	HostSecure8B  = "ns2.secure8.test."     // = HostZones2
	HostSecure15A = "ns1.secure15.test."    // = HostZones1
	HostSecure15B = "ns2.secure15.test."    // = HostZones2
	HostGlueless1 = "ns1.hosting.example."  // = HostZones1, only in example.
	HostGlueless2 = "ns2.hosting.example."  // = HostZones2
)

// DigestUnknown is the digest type of UnknownDigest's DS.
const DigestUnknown = 200

// AlgUnknown is the algorithm number of UnknownAlgorithm's keys
// (PRIVATEDNS): no validator can check it, so the zone is insecure.
const AlgUnknown = 253
