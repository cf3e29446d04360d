package resolver

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// Error is a resolution failure as the client will see it: SERVFAIL with an
// Extended DNS Error (RFC 8914) info-code and text that say why.
type Error struct {
	// Rcode is the response code of the failure as Resolve returns it:
	// SERVFAIL, or REFUSED/NOTIMP for questions a resolver does not serve
	// (0 inside the resolver, where every Error is a SERVFAIL until then).
	Rcode int
	// Security is Bogus for a validation failure as Resolve returns it
	// (Indeterminate for the others).
	Security security.Status
	// EDE is the RFC 8914 info-code.
	EDE uint16
	// Text is the EDE extra text.
	Text string
	// Cacheable marks failures of the servers themselves (unreachable,
	// lame, cyclic delegations) that RFC 9520 says to cache briefly; budget
	// and deadline failures belong to one client query and are not cached.
	Cacheable bool
	// Err is the underlying cause, if any.
	Err error
	// fromCache marks a failure answered from a zone's failure entry: it
	// is cached already, and a copy per name would outlive it.
	fromCache bool
	// budget marks an exhausted Budget (budgetError), counted in Stats.
	budget bool
}

func (e *Error) Error() string {
	name := dns.ExtendedErrorCodeToString[e.EDE]
	if e.Err != nil {
		return fmt.Sprintf("%s (EDE %d %s): %v", e.Text, e.EDE, name, e.Err)
	}
	return fmt.Sprintf("%s (EDE %d %s)", e.Text, e.EDE, name)
}

func (e *Error) Unwrap() error { return e.Err }

// asError turns any error into an *Error (EDE 0 Other for foreign ones).
func asError(err error) *Error {
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	return &Error{EDE: dns.ExtendedErrorCodeOther, Text: err.Error(), Err: err}
}

// budgetError reports an exhausted limit (not cached: it is this query's).
func budgetError(format string, args ...any) *Error {
	return &Error{EDE: dns.ExtendedErrorCodeOther, Text: "budget exceeded: " + fmt.Sprintf(format, args...), budget: true}
}

// unreachableError reports that no server of zone gave a usable answer.
func unreachableError(zone string, network bool, cause error) *Error {
	code := dns.ExtendedErrorCodeNoReachableAuthority
	if network {
		code = dns.ExtendedErrorCodeNetworkError
	}
	return &Error{EDE: code, Text: fmt.Sprintf("no usable answer from the servers of %q", zone), Cacheable: true, Err: cause}
}

// errNotCached answers a query without recursion desired (RD=0) that the
// cache cannot answer: REFUSED with EDE 20 Not Authoritative (RFC 8914).
var errNotCached = &Error{EDE: dns.ExtendedErrorCodeNotAuthoritative, Text: "not in the cache and recursion not desired"}
