package secondary

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/miekg/dns"
)

// The errors below say what went wrong in the terms of the protocol;
// describe turns them into a sentence for the operator that names the
// primary and suggests where to look.

// rcodeError: the primary answered with an error code.
type rcodeError struct {
	op    string // "SOA query", "AXFR", "IXFR"
	rcode int
}

func (e *rcodeError) Error() string {
	return fmt.Sprintf("%s answered %s", e.op, dns.RcodeToString[e.rcode])
}

// tsigError: a TSIG failure, reported by the primary (theirs) or found
// here in its answer.
type tsigError struct {
	code     int // dns.RcodeBadSig, BadKey, BadTime
	theirs   bool
	unsigned bool
	key      string
}

func (e *tsigError) Error() string { return describeTSIG(e) }

func describeTSIG(e *tsigError) string {
	name := dns.RcodeToString[e.code]
	switch {
	case e.unsigned:
		return fmt.Sprintf("TSIG: the primary's answer is not signed although key %s was used: is the key configured for this zone on the primary?", e.key)
	case e.code == dns.RcodeBadKey && e.theirs:
		return fmt.Sprintf("TSIG BADKEY: the primary does not know key %s: the key names or algorithms differ", e.key)
	case e.code == dns.RcodeBadKey:
		return fmt.Sprintf("TSIG BADKEY: the primary signed with key %s, not the one configured here", e.key)
	case e.code == dns.RcodeBadTime:
		return fmt.Sprintf("TSIG BADTIME: the clocks here and on the primary differ by more than %d s", tsigFudge)
	case e.code == dns.RcodeBadSig && e.theirs:
		return "TSIG BADSIG: the key names or secrets differ (the primary could not verify our signature)"
	case e.code == dns.RcodeBadSig:
		return "TSIG BADSIG: the key names or secrets differ (the primary's signature does not verify)"
	}
	return fmt.Sprintf("TSIG %s with key %s", name, e.key)
}

// limitError: the transfer is larger than the configured bound.
type limitError struct {
	what  string // "records" or "bytes"
	limit int
}

func (e *limitError) Error() string {
	return fmt.Sprintf("the transfer exceeds the limit of %d %s (raise --xfr-max-%s if the zone really is that large)", e.limit, e.what, e.what)
}

// outOfZoneError: a record not at or below the zone's origin.
type outOfZoneError struct {
	rr   dns.RR
	zone string
}

func (e *outOfZoneError) Error() string {
	return fmt.Sprintf("the transfer holds a record outside the zone %s: %s", e.zone, e.rr.String())
}

// soaFrameError: the record stream is not framed by the zone's SOA.
type soaFrameError struct {
	op, msg string
}

func (e *soaFrameError) Error() string {
	return fmt.Sprintf("the %s answer %s (RFC 5936 2.2: it must start and end with the same SOA)", e.op, e.msg)
}

// incompleteError: the transfer stopped before its closing SOA.
type incompleteError struct {
	op      string
	records int
	err     error
}

func (e *incompleteError) Error() string {
	why := e.err.Error()
	if isTimeout(e.err) {
		why = "nothing more came in time"
	}
	return fmt.Sprintf("the %s stopped after %d records without its closing SOA (%s)", e.op, e.records, why)
}

func (e *incompleteError) Unwrap() error { return e.err }

// describe says what went wrong with primary in words an operator can act on.
func describe(primary netip.AddrPort, err error) string {
	var rc *rcodeError
	var te *tsigError
	var ie *incompleteError
	switch {
	case errors.As(err, &ie):
		return fmt.Sprintf("primary %s: %s", primary, ie.Error())
	case errors.As(err, &te):
		return fmt.Sprintf("primary %s: %s", primary, te.Error())
	case errors.As(err, &rc):
		return describeRcode(primary, rc)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("primary %s refused the connection: is it running and listening on that address and port?", primary)
	case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("primary %s did not answer in time: is it reachable from here (routes, firewall)?", primary)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Sprintf("cannot send to primary %s from the configured source address: is that address on this host?", primary)
	}
	return fmt.Sprintf("primary %s: %v", primary, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func describeRcode(primary netip.AddrPort, e *rcodeError) string {
	name := dns.RcodeToString[e.rcode]
	switch e.rcode {
	case dns.RcodeRefused:
		if e.op == "SOA query" {
			return fmt.Sprintf("primary %s REFUSED the SOA query: does it serve the zone, and answer queries from this server's address?", primary)
		}
		return fmt.Sprintf("primary %s REFUSED the %s: is this server's address allowed to transfer?", primary, e.op)
	case dns.RcodeNotAuth:
		return fmt.Sprintf("primary %s is NOTAUTH for the zone (%s): is the zone loaded there, and is a TSIG key required?", primary, e.op)
	case dns.RcodeServerFailure:
		return fmt.Sprintf("primary %s answered SERVFAIL to the %s: is the zone loaded there (check its log)?", primary, e.op)
	case dns.RcodeNotImplemented:
		return fmt.Sprintf("primary %s does not implement the %s (NOTIMP)", primary, e.op)
	}
	return fmt.Sprintf("primary %s answered %s to the %s", primary, name, e.op)
}
