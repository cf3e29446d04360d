package validator

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// Limits bound the work one client query may cause. The defaults follow what
// deployed resolvers settled on after KeyTrap (CVE-2023-50387) and the NSEC3
// closest-encloser attack (CVE-2023-50868).
type Limits struct {
	// MaxKeysPerSig caps the DNSKEYs tried for one RRSIG (or one DS):
	// only keys with the signature's key tag and algorithm are candidates,
	// and honest zones almost never have two of them. Default 4.
	MaxKeysPerSig int
	// MaxSigsPerRRset caps the RRSIGs tried for one RRset. Default 8, as
	// Unbound: a zone in an algorithm rollover has at most a few.
	MaxSigsPerRRset int
	// MaxValidations caps signature verifications (public-key operations)
	// for one client query across all RRsets, zones and retries. Default
	// 64. PowerDNS uses 30; we counted that a cold CNAME chain through five
	// signed zones under five TLDs needs 26 (root DNSKEY, then DS, DNSKEY,
	// DS, DNSKEY and the answer per link) before any denial proof, so 30
	// would fail honest cold lookups. 64 checks cost at most ~10 ms of CPU
	// (ED448 ~150 us, RSA-4096 less); the KeyTrap defence proper is
	// MaxFailures with MaxKeysPerSig and MaxSigsPerRRset.
	MaxValidations int
	// MaxFailures caps failed signature verifications per client query.
	// Default 4: BIND stops a fetch after 1, Unbound after 4 DS match
	// failures; an honest chain fails none, an algorithm rollover rarely one.
	MaxFailures int
	// MaxNSEC3Hashes caps NSEC3 name hashes per client query. Default 600,
	// as PowerDNS. With MaxNSEC3Iterations 50 that is at most ~30 600 SHA-1
	// blocks, a few milliseconds.
	MaxNSEC3Hashes int
	// MaxNSEC3Iterations: NSEC3 records with more iterations make the proof
	// insecure (EDE 27) without any hashing (RFC 9276 section 3.2).
	// Default 50.
	MaxNSEC3Iterations uint16
	// MinRSABits and MaxRSABits bound the RSA modulus of usable keys.
	// Default 1024..4096: Go's crypto/rsa refuses smaller keys, RFC 3110
	// stops at 4096, and larger ones only cost CPU. Keys outside the range
	// are treated like an unsupported algorithm (insecure, EDE 1).
	MinRSABits, MaxRSABits int
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxKeysPerSig:      4,
		MaxSigsPerRRset:    8,
		MaxValidations:     64,
		MaxFailures:        4,
		MaxNSEC3Hashes:     600,
		MaxNSEC3Iterations: 50,
		MinRSABits:         1024,
		MaxRSABits:         4096,
	}
}

// ErrBudgetExhausted is wrapped by Result.Err when a Budget cap was
// exceeded. The resolver should answer SERVFAIL and stop the resolution.
var ErrBudgetExhausted = errors.New("validation budget exhausted")

// Budget counts the validation work of one client query. The resolver creates
// one per client query and passes it to every call. It is safe for concurrent
// use. Once a cap is exceeded every further spend fails too.
type Budget struct {
	lim         Limits
	validations atomic.Int64
	failures    atomic.Int64
	hashes      atomic.Int64
	spent       atomic.Bool
	// keys, when set, answers the DS and DNSKEY questions of the walks
	// that spend this budget, in place of the Validator's own KeySource.
	keys KeySource
}

// NewBudget returns a fresh budget enforcing l.
func NewBudget(l Limits) *Budget { return &Budget{lim: l} }

// FetchKeysWith makes src the KeySource of the validations that spend b
// and returns b. A resolver binds it to the client query the budget belongs
// to, so that the DS and DNSKEY fetches draw from that query's own limits
// (upstream queries, depth, deadline), whatever the Validator's default
// KeySource. Call it before b is first spent.
func (b *Budget) FetchKeysWith(src KeySource) *Budget {
	b.keys = src
	return b
}

// Limits returns the limits the budget enforces.
func (b *Budget) Limits() Limits { return b.lim }

// Validations returns the number of signature verifications spent.
func (b *Budget) Validations() int { return int(b.validations.Load()) }

// Failures returns the number of failed signature verifications.
func (b *Budget) Failures() int { return int(b.failures.Load()) }

// Hashes returns the number of NSEC3 name hashes computed.
func (b *Budget) Hashes() int { return int(b.hashes.Load()) }

// Exhausted reports whether any cap has been exceeded.
func (b *Budget) Exhausted() bool { return b.spent.Load() }

// spend adds one to counter and fails, for good, once any cap is exceeded:
// a query that hit one cap gets no more work of any kind.
func (b *Budget) spend(counter *atomic.Int64, limit int, what string) error {
	if b.spent.Load() {
		return fmt.Errorf("%w: an earlier cap was exceeded", ErrBudgetExhausted)
	}
	if n := counter.Add(1); n > int64(limit) {
		b.spent.Store(true)
		return fmt.Errorf("%w: more than %d %s", ErrBudgetExhausted, limit, what)
	}
	return nil
}

func (b *Budget) spendValidation() error {
	return b.spend(&b.validations, b.lim.MaxValidations, "signature validations")
}

func (b *Budget) spendFailure() error {
	return b.spend(&b.failures, b.lim.MaxFailures, "signature failures")
}

func (b *Budget) spendHash() error {
	return b.spend(&b.hashes, b.lim.MaxNSEC3Hashes, "NSEC3 hashes")
}

// orDefault gives calls made without a budget a fresh default one, so that
// they are still bounded.
func orDefault(b *Budget) *Budget {
	if b == nil {
		return NewBudget(DefaultLimits())
	}
	return b
}
