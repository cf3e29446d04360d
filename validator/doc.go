// Package validator is Sextant's DNSSEC validator (RFC 4033-4035, 5155, 6840).
//
// It does no network I/O. It checks signatures (VerifyRRset), DNSKEY sets
// against DS or trust anchors (VerifyDNSKEYs), NSEC/NSEC3 denial proofs
// (ProveNXDOMAIN, ProveNODATA, ProveWildcardAnswer, ProveNoDS), and walks the
// chain of trust (Validator.Keys) by asking a KeySource, implemented by the
// resolver, for DS and DNSKEY RRsets. Every outcome is a Result carrying one
// of the RFC 4035 section 4.3 states (security.Status) and, when it is not
// plainly secure, an Extended DNS Error (RFC 8914) code and a short text.
//
// CPU-exhaustion defences (KeyTrap, CVE-2023-50387; NSEC3 hashing,
// CVE-2023-50868) live in a Budget, created once per client query by the
// resolver and passed to every call, so that retries cannot reset it. When a
// cap is exceeded the result is Bogus and Result.Err wraps ErrBudgetExhausted;
// the resolver answers SERVFAIL.
//
// AggressiveDenial (and AggressiveProof, which also names the records it
// used) answers RFC 8198's question for cached validated NSEC and NSEC3
// records, without signatures; Result.Proofs names the records a secure
// denial verified, for a resolver to keep. ManagedAnchors follows RFC 5011
// trust-anchor rollovers.
//
// All time is the time passed in (or read from the injected clock.Clock), so
// tests and operators can move it.
package validator
