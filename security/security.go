// Package security holds the DNSSEC security states of RFC 4035 section 4.3,
// shared by the validator (which decides them), the cache (which stores them)
// and the resolver (which reports them). It is a leaf: no Sextant imports.
package security

// Status is the security state of an RRset, answer or negative response.
type Status uint8

const (
	// Indeterminate: no trust anchor covers the data, or it was not checked
	// (validation off, CD=1). The zero value, so unchecked data is never
	// mistaken for secure.
	Indeterminate Status = iota
	// Insecure: a validated chain proves there is no chain of trust
	// (unsigned delegation, unsupported algorithm, negative trust anchor).
	Insecure
	// Secure: a validated chain of trust from an anchor covers the data.
	Secure
	// Bogus: a chain of trust should exist and the data failed it.
	Bogus
)

// String returns the lower-case RFC name of the state.
func (s Status) String() string {
	switch s {
	case Insecure:
		return "insecure"
	case Secure:
		return "secure"
	case Bogus:
		return "bogus"
	default:
		return "indeterminate"
	}
}

// Worse reports whether s is a worse state than t, in the order used to
// combine the parts of one answer (an answer is only as good as its worst
// part): Secure < Insecure < Indeterminate < Bogus.
func (s Status) Worse(t Status) bool { return s.severity() > t.severity() }

func (s Status) severity() int {
	switch s {
	case Secure:
		return 0
	case Insecure:
		return 1
	case Indeterminate:
		return 2
	}
	return 3
}
