// Package resolver is Sextant's iterative resolution engine: it starts from
// the closest cached delegation (or the root hints), follows referrals,
// resolves glueless name servers, chases CNAME and DNAME chains, minimises
// query names (RFC 9156), picks servers by smoothed RTT (hedging a late
// one with the zone's next server), defends against
// spoofing (random IDs, ports and 0x20 case; strict reply matching; glue
// only in bailiwick) and bounds the work of every client question with one
// Budget. Package server puts it behind the transport front ends.
//
// 0x20: a reply whose name differs from the query only in case is dropped
// and the wait goes on; it is a spoofing signal, not a fact about the
// server. Only when a server's exchanges for several distinct questions end
// with nothing but wrong-case replies is the question re-asked over TCP
// with a random case: if the server echoes it, 0x20 stays on (the UDP
// replies were forged); if not, 0x20 is off for that server for a while.
//
// Where things are:
//
//	resolver.go    Config, DefaultConfig, New
//	api.go         Resolve, Exchange, Query: the questions in, Results out
//	respond.go     the client response (RA, RD, OPT, EDE, DO filtering)
//	iterate.go     one question: CNAME restarts, cache, iteration down the tree
//	answer.go      the structured answer: RRsets with their cache entries, the denial
//	servers.go     asking one zone's servers: failover, fallbacks, NS lookups
//	hedge.go       hedged queries: the next server asked when one is late
//	response.go    what a reply means (answer, referral, NXDOMAIN, lame, ...)
//	chain.go       CNAME/DNAME chains inside one reply
//	dname_cache.go RFC 6672 answers built from a cached DNAME (no upstream query)
//	store.go       what goes into the cache, at which RFC 2181 rank
//	delegation.go  the closest delegation and its server addresses
//	qmin.go        QNAME minimisation steps and fallbacks
//	exchange.go    one query to one server (UDP/TCP, spoofing defences)
//	tcppool.go     upstream TCP connections kept and pipelined (RFC 7766)
//	selection.go   SRTT, back-off, probing, hedge delays, IPv4/IPv6
//	               interleaving, per-server EDNS/0x20 memory
//	zonefail.go    zones whose servers all failed: back-off, one probe at a time
//	budget.go      the per-question Budget; limits.go its caps
//	errors.go      failures with their Extended DNS Error
//	special.go     RFC 6761 / RFC 6303 names answered locally
//	policy.go      which server addresses may be queried
//	priming.go     RFC 8109 priming
//	singleflight.go identical concurrent questions share a resolution
//	trace.go       per-query trace events (sextant query --trace)
//	dnssec.go      DNSSEC: DNSSECConfig, the resolver's validation part, EDEs
//	dnssec_cache.go validation marks on the entries an answer holds (cache.Mark:
//	               status, TTL cap, bogus briefly); answers from marks alone
//	dnssec_aggressive.go RFC 8198 answers from validated NSEC/NSEC3 ranges
//	dnssec_anchors.go RFC 5011 managed trust anchors: refresh and save
//
// Failures of servers (all unreachable, cyclic delegations) are cached per
// question for the cache's FailureTTL (RFC 9520); failures of one client's
// budget are not. A zone none of whose servers gives a usable reply (all
// silent at once; all REFUSED, SERVFAIL or lame for a few distinct names)
// is cached as failed for 5 s, doubled after each failed re-probe up to
// 5 minutes (RFC 9520 3.2); when that entry expires one question probes the
// zone while the others still get the cached failure (zonefail.go). A
// server that timed out repeatedly is likewise skipped while backed off,
// then probed by one question at a time.
package resolver
