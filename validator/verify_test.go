package validator

import (
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

func TestVerifyRRsetAlgorithms(t *testing.T) {
	algs := []uint8{dns.RSASHA1, dns.RSASHA1NSEC3SHA1, dns.RSASHA256, dns.RSASHA512,
		dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519, dns.ED448}
	for _, alg := range algs {
		t.Run(dns.AlgorithmToString[alg], func(t *testing.T) {
			k := newTestKey(t, "example.", alg, dns.ZONE)
			set := dnstest.MustRRs(t, "www.example. 300 IN A 192.0.2.1", "www.example. 300 IN A 192.0.2.2")
			sig := k.sign(t, set)
			keys := []*dns.DNSKEY{k.dnskey}

			b := NewBudget(DefaultLimits())
			res := VerifyRRset(set, []*dns.RRSIG{sig}, keys, "example.", testNow, b)
			if res.Status != security.Secure || res.TTL != 300 || res.Wildcard != "" {
				t.Fatalf("good signature: %+v", res)
			}
			if b.Validations() != 1 || b.Failures() != 0 {
				t.Fatalf("budget after one good check: %d validations, %d failures", b.Validations(), b.Failures())
			}
			// Case of the owner and RR order do not matter (canonical form).
			swapped := dnstest.MustRRs(t, "WWW.Example. 300 IN A 192.0.2.2", "www.example. 300 IN A 192.0.2.1")
			if res := VerifyRRset(swapped, []*dns.RRSIG{sig}, keys, "example.", testNow, nil); res.Status != security.Secure {
				t.Fatalf("reordered, upper-case RRset: %+v", res)
			}
			tampered := dnstest.MustRRs(t, "www.example. 300 IN A 192.0.2.1", "www.example. 300 IN A 192.0.2.3")
			res = VerifyRRset(tampered, []*dns.RRSIG{sig}, keys, "example.", testNow, nil)
			if res.Status != security.Bogus || res.EDE != EDEDNSSECBogus {
				t.Fatalf("tampered RRset: %+v", res)
			}
		})
	}
}

func TestVerifyRRsetFailures(t *testing.T) {
	k := newTestKey(t, "example.", dns.ECDSAP256SHA256, dns.ZONE)
	other := newTestKey(t, "example.", dns.ECDSAP256SHA256, dns.ZONE)
	set := dnstest.MustRRs(t, "www.example. 300 IN A 192.0.2.1")
	good := k.sign(t, set)
	badSig := *good
	badSig.Signature = other.sign(t, set).Signature
	expired := k.signWindow(t, set, testNow.Add(-48*time.Hour), testNow.Add(-time.Hour))
	future := k.signWindow(t, set, testNow.Add(time.Hour), testNow.Add(48*time.Hour))
	otherType := k.sign(t, dnstest.MustRRs(t, "www.example. 300 IN AAAA 2001:db8::1"))
	unknownAlg := newTestKey(t, "example.", dns.ED25519, dns.ZONE)
	unknownAlg.dnskey.Algorithm = 200 // keep the key material, claim an unknown algorithm

	tests := []struct {
		name   string
		sigs   []*dns.RRSIG
		keys   []*dns.DNSKEY
		signer string
		status security.Status
		ede    uint16
	}{
		{"good", []*dns.RRSIG{good}, []*dns.DNSKEY{k.dnskey}, "example.", security.Secure, EDENone},
		{"bad signature", []*dns.RRSIG{&badSig}, []*dns.DNSKEY{k.dnskey}, "example.", security.Bogus, EDEDNSSECBogus},
		{"expired", []*dns.RRSIG{expired}, []*dns.DNSKEY{k.dnskey}, "example.", security.Bogus, EDESignatureExpired},
		{"not yet valid", []*dns.RRSIG{future}, []*dns.DNSKEY{k.dnskey}, "example.", security.Bogus, EDESignatureNotYetValid},
		{"no RRSIG", nil, []*dns.DNSKEY{k.dnskey}, "example.", security.Bogus, EDERRSIGsMissing},
		{"RRSIG for another type", []*dns.RRSIG{otherType}, []*dns.DNSKEY{k.dnskey}, "example.", security.Bogus, EDERRSIGsMissing},
		{"signer is another zone", []*dns.RRSIG{good}, []*dns.DNSKEY{k.dnskey}, "other.", security.Bogus, EDERRSIGsMissing},
		{"no key with the tag", []*dns.RRSIG{good}, []*dns.DNSKEY{other.dnskey}, "example.", security.Bogus, EDEDNSKEYMissing},
		{"no keys at all", []*dns.RRSIG{good}, nil, "example.", security.Bogus, EDEDNSKEYMissing},
		{"only unsupported keys", []*dns.RRSIG{good}, []*dns.DNSKEY{unknownAlg.dnskey}, "example.", security.Insecure, EDEUnsupportedDNSKEYAlg},
		{"expired then good", []*dns.RRSIG{expired, good}, []*dns.DNSKEY{k.dnskey}, "example.", security.Secure, EDENone},
		{"bad then good", []*dns.RRSIG{&badSig, good}, []*dns.DNSKEY{k.dnskey}, "example.", security.Secure, EDENone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := VerifyRRset(set, tc.sigs, tc.keys, tc.signer, testNow, NewBudget(DefaultLimits()))
			if res.Status != tc.status || res.EDE != tc.ede {
				t.Fatalf("got %v EDE %d (%s), want %v EDE %d", res.Status, res.EDE, res.Reason, tc.status, tc.ede)
			}
			if res.Status != security.Secure && res.Reason == "" {
				t.Fatal("failure without a reason")
			}
		})
	}
}

func TestVerifyRRsetTTLCap(t *testing.T) {
	k := newTestKey(t, "example.", dns.ED25519, dns.ZONE)
	tests := []struct {
		name    string
		rrTTL   uint32
		origTTL uint32
		expires time.Duration
		want    uint32
	}{
		{"RRset TTL smallest", 300, 3600, 24 * time.Hour, 300},
		{"original TTL caps a raised TTL", 86400, 3600, 24 * time.Hour, 3600},
		{"expiration caps", 3600, 3600, 100 * time.Second, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			signedSet := dnstest.MustRRs(t, "www.example. 3600 IN A 192.0.2.1")
			signedSet[0].Header().Ttl = tc.origTTL
			sig := k.signWindow(t, signedSet, testNow.Add(-time.Hour), testNow.Add(tc.expires))
			served := dnstest.MustRRs(t, "www.example. 3600 IN A 192.0.2.1")
			served[0].Header().Ttl = tc.rrTTL
			res := VerifyRRset(served, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.dnskey}, "example.", testNow, nil)
			if res.Status != security.Secure || res.TTL != tc.want {
				t.Fatalf("got %+v, want secure TTL %d", res, tc.want)
			}
		})
	}
}

// The RRSIG times are serial numbers (RFC 4034 3.1.5): a window spanning
// the 2106 wrap of the 32-bit counter must still validate.
func TestVerifyRRsetSerialArithmetic(t *testing.T) {
	k := newTestKey(t, "example.", dns.ED25519, dns.ZONE)
	set := dnstest.MustRRs(t, "www.example. 300 IN A 192.0.2.1")
	wrap := time.Unix(1<<32, 0)
	sig := k.signWindow(t, set, wrap.Add(-time.Hour), wrap.Add(time.Hour))
	for _, tc := range []struct {
		now  time.Time
		want security.Status
		ede  uint16
	}{
		{wrap.Add(-time.Minute), security.Secure, EDENone},
		{wrap.Add(time.Minute), security.Secure, EDENone},
		{wrap.Add(2 * time.Hour), security.Bogus, EDESignatureExpired},
		{wrap.Add(-2 * time.Hour), security.Bogus, EDESignatureNotYetValid},
	} {
		res := VerifyRRset(set, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.dnskey}, "example.", tc.now, nil)
		if res.Status != tc.want || res.EDE != tc.ede {
			t.Errorf("at %v: got %v EDE %d (%s)", tc.now, res.Status, res.EDE, res.Reason)
		}
	}
}

func TestVerifyRRsetWildcard(t *testing.T) {
	k := newTestKey(t, "example.", dns.ECDSAP256SHA256, dns.ZONE)
	sig := k.sign(t, dnstest.MustRRs(t, "*.example. 300 IN A 192.0.2.9"))
	for _, tc := range []struct {
		owner, want string
	}{
		{"*.example.", ""}, // the wildcard owner itself, asked literally
		{"a.example.", "*.example."},
		{"a.b.example.", "*.example."},
	} {
		set := dnstest.MustRRs(t, tc.owner+" 300 IN A 192.0.2.9")
		s := *sig
		s.Hdr.Name = tc.owner
		res := VerifyRRset(set, []*dns.RRSIG{&s}, []*dns.DNSKEY{k.dnskey}, "example.", testNow, nil)
		if res.Status != security.Secure || res.Wildcard != tc.want {
			t.Errorf("%s: got %+v, want secure wildcard %q", tc.owner, res, tc.want)
		}
	}
}

func TestVerifyRRsetRSALimits(t *testing.T) {
	k := newTestKey(t, "example.", dns.RSASHA256, dns.ZONE) // 1024 bits
	set := dnstest.MustRRs(t, "www.example. 300 IN A 192.0.2.1")
	sig := k.sign(t, set)
	lim := DefaultLimits()
	lim.MinRSABits = 2048
	res := VerifyRRset(set, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.dnskey}, "example.", testNow, NewBudget(lim))
	if res.Status != security.Insecure || res.EDE != EDEUnsupportedDNSKEYAlg {
		t.Fatalf("1024-bit key with a 2048-bit minimum: %+v", res)
	}
}

func TestParseRSAExponent(t *testing.T) {
	mod := make([]byte, 128)
	mod[0] = 0x80
	for _, tc := range []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"65537", append([]byte{3, 1, 0, 1}, mod...), true},
		{"3", append([]byte{1, 3}, mod...), true},
		{"even", append([]byte{1, 4}, mod...), false},
		{"one", append([]byte{1, 1}, mod...), false},
		{"five bytes", append([]byte{5, 1, 0, 0, 0, 1}, mod...), false},
		{"long form", append([]byte{0, 0, 3, 1, 0, 1}, mod...), true},
		{"truncated", []byte{3, 1, 0}, false},
		{"empty", nil, false},
	} {
		_, err := parseRSA(tc.key, DefaultLimits())
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestBudgetExhaustedIsDistinct(t *testing.T) {
	k := newTestKey(t, "example.", dns.ED25519, dns.ZONE)
	set := dnstest.MustRRs(t, "www.example. 300 IN A 192.0.2.1")
	sig := k.sign(t, set)
	lim := DefaultLimits()
	lim.MaxValidations = 1
	b := NewBudget(lim)
	if res := VerifyRRset(set, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.dnskey}, "example.", testNow, b); res.Status != security.Secure {
		t.Fatalf("first: %+v", res)
	}
	res := VerifyRRset(set, []*dns.RRSIG{sig}, []*dns.DNSKEY{k.dnskey}, "example.", testNow, b)
	if res.Status != security.Bogus || !errors.Is(res.Err, ErrBudgetExhausted) {
		t.Fatalf("second on a spent budget: %+v", res)
	}
}
