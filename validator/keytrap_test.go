package validator

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// collidingKey returns an ED25519-shaped DNSKEY of random bytes whose key tag
// is tag: the last 16-bit word of the RDATA is solved for (RFC 4034
// appendix B is a ones'-complement-like sum).
func collidingKey(t testing.TB, zone string, tag uint16) *dns.DNSKEY {
	t.Helper()
	pub := make([]byte, 32)
	rand.Read(pub)
	k := &dns.DNSKEY{
		Hdr:   dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: dns.ZONE, Protocol: 3, Algorithm: dns.ED25519,
	}
	pub[30], pub[31] = 0, 0
	rdata := append([]byte{byte(k.Flags >> 8), byte(k.Flags), k.Protocol, k.Algorithm}, pub...)
	sum := 0
	for i, b := range rdata {
		if i&1 == 0 {
			sum += int(b) << 8
		} else {
			sum += int(b)
		}
	}
	for w := 0; w < 1<<16; w++ {
		ac := sum + w
		if uint16(ac+(ac>>16)) != tag {
			continue
		}
		pub[30], pub[31] = byte(w>>8), byte(w)
		k.PublicKey = base64.StdEncoding.EncodeToString(pub)
		if k.KeyTag() != tag {
			t.Fatalf("solved tag %d, KeyTag says %d", tag, k.KeyTag())
		}
		return k
	}
	t.Fatalf("no key with tag %d", tag)
	return nil
}

func bogusSigs(t testing.TB, like *dns.RRSIG, n int) []*dns.RRSIG {
	out := make([]*dns.RRSIG, n)
	for i := range out {
		s := *like
		junk := make([]byte, 64)
		rand.Read(junk)
		s.Signature = base64.StdEncoding.EncodeToString(junk)
		out[i] = &s
	}
	return out
}

// TestKeyTrap: 100 DNSKEYs sharing one key tag and 100 signatures that all
// claim it. Without caps that is 10 000 verifications (CVE-2023-50387);
// with the budget it ends bogus after a handful, in milliseconds.
func TestKeyTrap(t *testing.T) {
	real := newTestKey(t, "evil.", dns.ED25519, dns.ZONE|dns.SEP)
	tag := real.dnskey.KeyTag()
	keys := []*dns.DNSKEY{}
	for range 99 {
		keys = append(keys, collidingKey(t, "evil.", tag))
	}
	keys = append(keys, real.dnskey)
	set := dnstest.MustRRs(t, "www.evil. 300 IN A 192.0.2.1")
	good := real.sign(t, set)
	sigs := append(bogusSigs(t, good, 100), good)

	b := NewBudget(DefaultLimits())
	start := time.Now()
	res := VerifyRRset(set, sigs, keys, "evil.", testNow, b)
	elapsed := time.Since(start)
	t.Logf("KeyTrap RRset: %v in %v, %d validations, %d failures (%s)", res.Status, elapsed, b.Validations(), b.Failures(), res.Reason)
	if res.Status != security.Bogus || !errors.Is(res.Err, ErrBudgetExhausted) {
		t.Fatalf("got %+v, want bogus with an exhausted budget", res)
	}
	if b.Validations() > DefaultLimits().MaxFailures+1 || elapsed > time.Second {
		t.Fatalf("%d validations in %v", b.Validations(), elapsed)
	}
	// A retry with the same budget (the resolver trying another server)
	// gets nothing more.
	before := b.Validations()
	if res := VerifyRRset(set, []*dns.RRSIG{good}, []*dns.DNSKEY{real.dnskey}, "evil.", testNow, b); res.Status != security.Bogus || !errors.Is(res.Err, ErrBudgetExhausted) || b.Validations() != before {
		t.Fatalf("retry on a spent budget: %+v, validations %d -> %d", res, before, b.Validations())
	}

	// The same attack on the DNSKEY set, with a DS naming the real key,
	// listed first so that the DS matches it and the signatures are tried.
	keyRRs := []dns.RR{real.dnskey}
	for _, k := range keys[:99] {
		keyRRs = append(keyRRs, k)
	}
	ksig := real.sign(t, keyRRs)
	b = NewBudget(DefaultLimits())
	start = time.Now()
	res, trusted := VerifyDNSKEYs(keyRRs, append(bogusSigs(t, ksig, 100), ksig), []*dns.DS{real.dnskey.ToDS(dns.SHA256)}, nil, testNow, b)
	t.Logf("KeyTrap DNSKEY set: %v in %v, %d validations, %d failures", res.Status, time.Since(start), b.Validations(), b.Failures())
	if res.Status != security.Bogus || !errors.Is(res.Err, ErrBudgetExhausted) || trusted != nil || b.Validations() > DefaultLimits().MaxFailures+1 {
		t.Fatalf("got %+v after %d validations", res, b.Validations())
	}
	// With the colliding keys ahead of the real one, the DS tries only
	// MaxKeysPerSig digests (Unbound's 4 DS match failures) and gives up
	// before any signature: bogus, DNSKEY missing.
	reordered := append(slices.Clone(keyRRs[1:]), keyRRs[0])
	b = NewBudget(DefaultLimits())
	res, _ = VerifyDNSKEYs(reordered, []*dns.RRSIG{ksig}, []*dns.DS{real.dnskey.ToDS(dns.SHA256)}, nil, testNow, b)
	if res.Status != security.Bogus || res.EDE != EDEDNSKEYMissing || b.Validations() != 0 {
		t.Fatalf("colliding keys first: %+v after %d validations", res, b.Validations())
	}
}

// Per signature, no more than MaxKeysPerSig colliding keys are tried, and
// no more than MaxSigsPerRRset signatures per RRset, even with a generous
// failure budget.
func TestKeyTrapPerSignatureCaps(t *testing.T) {
	real := newTestKey(t, "evil.", dns.ED25519, dns.ZONE)
	tag := real.dnskey.KeyTag()
	var keys []*dns.DNSKEY
	for range 20 {
		keys = append(keys, collidingKey(t, "evil.", tag))
	}
	set := dnstest.MustRRs(t, "www.evil. 300 IN A 192.0.2.1")
	sigs := bogusSigs(t, real.sign(t, set), 50)
	lim := DefaultLimits()
	lim.MaxFailures, lim.MaxValidations = 1000, 1000
	b := NewBudget(lim)
	res := VerifyRRset(set, sigs, keys, "evil.", testNow, b)
	want := lim.MaxKeysPerSig * lim.MaxSigsPerRRset
	if res.Status != security.Bogus || b.Validations() != want {
		t.Fatalf("got %v after %d validations, want bogus after %d", res.Status, b.Validations(), want)
	}
}
