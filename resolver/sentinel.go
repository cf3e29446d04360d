package resolver

import (
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// The root key trust anchor sentinel (RFC 8509) lets anyone learn which
// root KSKs a validating resolver trusts, by asking for names whose first
// label names a key tag. Unbound, BIND and Knot Resolver answer it; so
// does Sextant, when it validates.
const (
	sentinelIsTA  = "root-key-sentinel-is-ta-"
	sentinelNotTA = "root-key-sentinel-not-ta-"
	// sentinelTagDigits: the key tag is written as five decimal digits,
	// zero-padded (RFC 8509 2).
	sentinelTagDigits = 5
)

// parseSentinel reads a sentinel label at the start of name: whether it
// asks "is-ta" (else "not-ta") and the key tag. The label is matched
// without regard to ASCII case.
func parseSentinel(name string) (isTA bool, tag uint16, ok bool) {
	var rest string
	switch {
	case hasPrefixFold(name, sentinelIsTA):
		isTA, rest = true, name[len(sentinelIsTA):]
	case hasPrefixFold(name, sentinelNotTA):
		rest = name[len(sentinelNotTA):]
	default:
		return false, 0, false
	}
	if len(rest) <= sentinelTagDigits || rest[sentinelTagDigits] != '.' {
		return false, 0, false
	}
	n := 0
	for _, c := range []byte(rest[:sentinelTagDigits]) {
		if c < '0' || c > '9' {
			return false, 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 0xffff {
		return false, 0, false
	}
	return isTA, uint16(n), true
}

func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// applySentinel turns a Secure answer to an A or AAAA question for a
// sentinel name into SERVFAIL when the key tag says otherwise than the
// root's trust anchors (RFC 8509 3.2): "is-ta" with a tag that is not an
// anchor, "not-ta" with one that is. Every other result is left alone:
// unvalidated (CD, validation off) and insecure answers included.
func (r *Resolver) applySentinel(q dns.Question, res *Result) *Result {
	if r.dnssec == nil || res == nil || res.Security != security.Secure ||
		(q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA) {
		return res
	}
	isTA, tag, ok := parseSentinel(q.Name)
	if !ok {
		return res
	}
	trusted := slices.Contains(r.dnssec.v.AnchorKeyTags("."), tag)
	if isTA == trusted {
		return res
	}
	text := fmt.Sprintf("root key sentinel: key %05d is not a trust anchor of this resolver", tag)
	if trusted {
		text = fmt.Sprintf("root key sentinel: key %05d is a trust anchor of this resolver", tag)
	}
	return &Result{Rcode: dns.RcodeServerFailure, ede: &Error{EDE: dns.ExtendedErrorCodeOther, Text: text}}
}
