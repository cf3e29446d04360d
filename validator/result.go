package validator

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// Extended DNS Error codes (RFC 8914, RFC 9276) the validator reports.
const (
	EDENone                       uint16 = 0xffff // no EDE to report
	EDEUnsupportedDNSKEYAlg       uint16 = 1
	EDEUnsupportedDSDigest        uint16 = 2
	EDEDNSSECIndeterminate        uint16 = 5
	EDEDNSSECBogus                uint16 = 6
	EDESignatureExpired           uint16 = 7
	EDESignatureNotYetValid       uint16 = 8
	EDEDNSKEYMissing              uint16 = 9
	EDERRSIGsMissing              uint16 = 10
	EDENSECMissing                uint16 = 12
	EDEUnsupportedNSEC3Iterations uint16 = 27
)

// Result is the outcome of one validation step.
type Result struct {
	// Status is the RFC 4035 section 4.3 state.
	Status security.Status
	// EDE is the RFC 8914 info-code to attach, EDENone when there is none.
	// Every Result this package returns sets it; test with HasEDE (code 0,
	// "Other", is never produced).
	EDE uint16
	// Reason is a short human text for the EDE EXTRA-TEXT and logs.
	Reason string
	// TTL is the longest time the validated data may be cached: the
	// smallest of the RRset TTLs, the RRSIG original TTLs and the time left
	// until signature expiration. Zero when nothing was validated.
	TTL uint32
	// Wildcard is the wildcard owner ("*.example.") when a positive answer
	// was synthesised from a wildcard; the caller must then check
	// ProveWildcardAnswer (ValidateResponse does so itself).
	Wildcard string
	// Err wraps ErrBudgetExhausted when a Budget cap ended validation, or a
	// KeySource error. Nil otherwise.
	Err error
	// Proofs are the denial proofs (negative answer, wildcard expansion)
	// the result rests on, each verified Secure; empty unless Status is
	// Secure. A resolver keeps their records for RFC 8198 synthesis.
	Proofs []Proof
}

// Proof is what one secure denial proof verified with the keys of Zone:
// the NSEC or NSEC3 RRsets the proof used and, in a negative answer, the
// zone's SOA (records only, no RRSIGs). Their signatures need no second
// check until they expire (RFC 8198 section 4: "validated" records); the
// Result's TTL bounds how long that is.
type Proof struct {
	Zone    string
	Records []dns.RR
}

// HasEDE reports whether r carries an Extended DNS Error code.
func (r Result) HasEDE() bool { return r.EDE != EDENone }

func secure(ttl uint32) Result {
	return Result{Status: security.Secure, EDE: EDENone, TTL: ttl}
}

func bogus(ede uint16, reason string) Result {
	return Result{Status: security.Bogus, EDE: ede, Reason: reason}
}

func insecure(ede uint16, reason string) Result {
	return Result{Status: security.Insecure, EDE: ede, Reason: reason}
}

func indeterminate(reason string) Result {
	return Result{Status: security.Indeterminate, EDE: EDENone, Reason: reason}
}

func budgetBogus(err error) Result {
	return Result{Status: security.Bogus, EDE: EDEDNSSECBogus, Reason: err.Error(), Err: err}
}

// combine merges the result of another part of the same answer into r.
// The proofs of both are kept while the whole stays Secure.
func combine(r, other Result) Result {
	if other.Status.Worse(r.Status) {
		ttl := r.TTL
		other.TTL = minTTL(ttl, other.TTL)
		other.Proofs = nil
		return other
	}
	r.TTL = minTTL(r.TTL, other.TTL)
	if r.Wildcard == "" {
		r.Wildcard = other.Wildcard
	}
	switch {
	case r.Status != security.Secure:
		r.Proofs = nil
	case len(other.Proofs) > 0:
		// A fresh slice: r's may share its array with another Result.
		r.Proofs = append(append(make([]Proof, 0, len(r.Proofs)+len(other.Proofs)), r.Proofs...), other.Proofs...)
	}
	return r
}

// minTTL returns the smaller TTL, treating 0 as "not set".
func minTTL(a, b uint32) uint32 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case a < b:
		return a
	default:
		return b
	}
}
