package resolver

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/do53test"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// KeyTrap (CVE-2023-50387) through the whole resolver: a signed root on
// 127.36.1.1 delegates good. and evil. (both on 127.36.1.2, with DS). The
// evil zone publishes 100 DNSKEYs sharing its real key's tag and 100 junk
// signatures beside each real one; unbounded, one answer would cost 10 000
// signature checks.

const (
	keytrapRoot = "127.36.1.1"
	keytrapZone = "127.36.1.2"
	keytrapKeys = 100
	keytrapSigs = 100
)

// keytrapHierarchy serves the hierarchy and returns the root hints and the
// root's DS as trust anchor.
func keytrapHierarchy(t testing.TB) (*roothints.Hints, []dns.RR) {
	t.Helper()
	now := time.Now()
	opts := func(keys ...*authority.Key) authority.SignOptions {
		return authority.SignOptions{Keys: keys, Inception: now.Add(-time.Hour), Expiration: now.Add(24 * time.Hour)}
	}
	gen := func(origin string, alg uint8) *authority.Key {
		k, err := authority.GenerateKey(origin, alg, dns.ZONE|dns.SEP)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, goodKey, evilKey := gen(".", dns.ECDSAP256SHA256), gen("good.", dns.ECDSAP256SHA256), gen("evil.", dns.ED25519)

	sign := func(origin string, key *authority.Key, lines ...string) []dns.RR {
		signed, err := authority.Sign(origin, dnstest.MustRRs(t, lines...), opts(key))
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	root := sign(".", rootKey,
		". 3600 IN SOA ns.root. h.root. 1 3600 600 86400 300",
		". 3600 IN NS ns.root.",
		"ns.root. 3600 IN A "+keytrapRoot,
		"good. 3600 IN NS ns.good.", "ns.good. 3600 IN A "+keytrapZone,
		"evil. 3600 IN NS ns.evil.", "ns.evil. 3600 IN A "+keytrapZone,
		goodKey.DS(dns.SHA256).String(), evilKey.DS(dns.SHA256).String())
	good := sign("good.", goodKey,
		"good. 3600 IN SOA ns.good. h.good. 1 3600 600 86400 300",
		"good. 3600 IN NS ns.good.", "ns.good. 3600 IN A "+keytrapZone,
		"www.good. 300 IN A 192.0.2.1")
	lines := []string{
		"evil. 3600 IN SOA ns.evil. h.evil. 1 3600 600 86400 300",
		"evil. 3600 IN NS ns.evil.", "ns.evil. 3600 IN A " + keytrapZone,
	}
	for i := range 8 {
		lines = append(lines, fmt.Sprintf("w%d.evil. 300 IN A 192.0.2.%d", i, i+1))
	}
	evil := sign("evil.", evilKey, lines...)
	evil = append(evil, keytrapFlood(t, evilKey.DNSKEY, evil)...)

	serve := func(addr string, zones ...[]dns.RR) {
		srv := authority.NewServer()
		for _, rrs := range zones {
			origin := rrs[0].Header().Name
			for _, rr := range rrs {
				if rr.Header().Rrtype == dns.TypeSOA {
					origin = rr.Header().Name
				}
			}
			z, err := authority.NewZone(origin, rrs)
			if err != nil {
				t.Fatal(err)
			}
			srv.Set(z)
		}
		do53test.Start(t, net.JoinHostPort(addr, "53"), srv)
	}
	serve(keytrapRoot, root)
	serve(keytrapZone, good, evil)
	ns, _ := dns.NewRR(". 3600 IN NS ns.root.")
	h := &roothints.Hints{NS: []*dns.NS{ns.(*dns.NS)}, Addrs: map[string][]netip.Addr{"ns.root.": {netip.MustParseAddr(keytrapRoot)}}}
	return h, []dns.RR{rootKey.DS(dns.SHA256)}
}

// keytrapFlood returns DNSKEYs with real's key tag (random ED25519-shaped
// keys whose last word is solved for the tag) and junk copies of every
// RRSIG made by real.
func keytrapFlood(t testing.TB, real *dns.DNSKEY, signed []dns.RR) []dns.RR {
	t.Helper()
	tag := real.KeyTag()
	var out []dns.RR
	for len(out) < keytrapKeys {
		pub := make([]byte, 32)
		rand.Read(pub)
		k := &dns.DNSKEY{Hdr: real.Hdr, Flags: dns.ZONE, Protocol: 3, Algorithm: dns.ED25519}
		pub[30], pub[31] = 0, 0
		k.PublicKey = base64.StdEncoding.EncodeToString(pub)
		partial := uint32(k.KeyTag()) // the tag with the last word zero
		// Adding w to the last word adds w to the folded sum (mod 2^16
		// with end-around carry): solve for the real tag.
		w := (uint32(tag) + 0x10000 - partial) & 0xffff
		pub[30], pub[31] = byte(w>>8), byte(w)
		k.PublicKey = base64.StdEncoding.EncodeToString(pub)
		if k.KeyTag() == tag {
			out = append(out, k)
		}
	}
	for _, rr := range signed {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || sig.KeyTag != tag || sig.TypeCovered == dns.TypeNSEC {
			continue
		}
		for range keytrapSigs {
			junk := make([]byte, 64)
			rand.Read(junk)
			s := *sig
			s.Signature = base64.StdEncoding.EncodeToString(junk)
			out = append(out, &s)
		}
	}
	return out
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func newKeytrapResolver(t testing.TB, h *roothints.Hints, anchors []dns.RR) *Resolver {
	t.Helper()
	return newTestResolver(t, h, func(c *Config) {
		c.DNSSEC = &DNSSECConfig{Anchors: anchors}
		c.Clock = clock.System{} // the signatures are dated now
	})
}

// TestDNSSECKeyTrap: the evil answers end in SERVFAIL after a handful of
// signature checks, while another client's questions keep being answered
// (secure) at the same time.
func TestDNSSECKeyTrap(t *testing.T) {
	h, anchors := keytrapHierarchy(t)
	r := newKeytrapResolver(t, h, anchors)

	b := newBudget(&r.limits, time.Now())
	wall, cpu := time.Now(), cpuTime()
	res := r.runWith(ctxT(t), dns.Question{Name: "w0.evil.", Qtype: dns.TypeA, Qclass: dns.ClassINET}, false, b)
	st := b.dnssec.Load()
	if st == nil {
		t.Fatal("no validation budget spent")
	}
	vb := st.budget
	t.Logf("KeyTrap resolution: %s %v in %v wall, %v CPU; %d signature checks, %d failed, %d upstream queries; %v",
		dns.RcodeToString[res.Rcode], res.Security, time.Since(wall), cpuTime()-cpu, vb.Validations(), vb.Failures(), b.Queries(), res.ExtendedError())
	if res.Rcode != dns.RcodeServerFailure || res.Security != security.Bogus {
		t.Fatalf("evil: %s %v, want SERVFAIL bogus", dns.RcodeToString[res.Rcode], res.Security)
	}
	if vb.Validations() > validator.DefaultLimits().MaxValidations {
		t.Fatalf("%d signature checks, over the cap", vb.Validations())
	}

	// Evil questions from one client (fresh resolvers so that nothing is
	// cached) beside good questions from another.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			er := newKeytrapResolver(t, h, anchors)
			m, _ := ask(t, er, fmt.Sprintf("w%d.evil.", i%8), dns.TypeA, true, false, false)
			if m.Rcode != dns.RcodeServerFailure {
				t.Errorf("evil w%d: %s", i%8, dns.RcodeToString[m.Rcode])
			}
		}
	})
	good := newKeytrapResolver(t, h, anchors)
	wall = time.Now()
	for range 50 {
		m, res := ask(t, good, "www.good.", dns.TypeA, true, false, false)
		if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData {
			t.Fatalf("good client: %s AD=%v: %v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.ExtendedError())
		}
		good.Cache().Purge() // every answer validated afresh
	}
	t.Logf("50 good resolutions under attack: %v", time.Since(wall))
	close(stop)
	wg.Wait()
}

// BenchmarkDNSSECKeyTrap measures one cold evil resolution.
func BenchmarkDNSSECKeyTrap(b *testing.B) {
	h, anchors := keytrapHierarchy(b)
	for b.Loop() {
		r := newKeytrapResolver(b, h, anchors)
		if m, _ := ask(b, r, "w0.evil.", dns.TypeA, true, false, false); m.Rcode != dns.RcodeServerFailure {
			b.Fatalf("evil: %s", dns.RcodeToString[m.Rcode])
		}
	}
}
