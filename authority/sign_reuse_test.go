package authority

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSignReusesUnchangedSignatures: signing a changed zone again with the
// cache signs only the changed RRsets and their NSEC neighbours (and the
// SOA), the output still validates, and signatures nearing their refresh
// point or made by another key are not reused.
func TestSignReusesUnchangedSignatures(t *testing.T) {
	const origin = "z.test."
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ksk, zsk := signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsKSK), signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsZSK)
	cache := &SignatureCache{}
	unsigned := map[signSetKey]bool{
		{"secure.z.test.", dns.TypeNS}: true, {"insecure.z.test.", dns.TypeNS}: true,
		{"ns.secure.z.test.", dns.TypeA}: true, {"ns.insecure.z.test.", dns.TypeA}: true,
		{"x.d.z.test.", dns.TypeA}: true,
	}
	opts := func(at time.Time, keys ...*Key) SignOptions {
		return SignOptions{Keys: keys, Inception: at.Add(-time.Hour), Expiration: at.Add(14 * 24 * time.Hour),
			Cache: cache, ReuseUntil: at.Add(5 * 24 * time.Hour)}
	}
	first, err := Sign(origin, parseRecords(t, origin, signTestZone), opts(now, ksk, zsk))
	if err != nil {
		t.Fatal(err)
	}
	total := cache.Stats().Signed
	if cache.Stats().Reused != 0 || total == 0 {
		t.Fatalf("first signing: %+v", cache.Stats())
	}
	signCheckSignatures(t, origin, first, unsigned, now)

	// One new name and a changed SOA serial, an hour later.
	changed := signTestZone + "new TXT \"added\"\n"
	changed = replaceSerial(changed, "1", "2")
	later := now.Add(time.Hour)
	out, err := Sign(origin, parseRecords(t, origin, changed), opts(later, ksk, zsk))
	if err != nil {
		t.Fatal(err)
	}
	st := cache.Stats()
	// new/TXT, new/NSEC, the NSEC before it (its next name changed),
	// SOA; two RRsets more than before.
	if st.Signed != 4 || st.Reused != total+2-4 {
		t.Errorf("after a one-name change: %+v, want 4 signed and %d reused", st, total-2)
	}
	signCheckSignatures(t, origin, out, unsigned, later)

	// Past the refresh point everything is signed again.
	refresh := now.Add(10 * 24 * time.Hour)
	if _, err := Sign(origin, parseRecords(t, origin, changed), opts(refresh, ksk, zsk)); err != nil {
		t.Fatal(err)
	}
	if st := cache.Stats(); st.Reused != 0 {
		t.Errorf("past the refresh point: %+v, want nothing reused", st)
	}
	// Another ZSK signs everything (but the DNSKEY RRset changes too).
	zsk2 := signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsZSK)
	out, err = Sign(origin, parseRecords(t, origin, changed), opts(refresh, ksk, zsk2))
	if err != nil {
		t.Fatal(err)
	}
	if st := cache.Stats(); st.Reused != 0 {
		t.Errorf("with a new ZSK: %+v, want nothing reused", st)
	}
	signCheckSignatures(t, origin, out, unsigned, refresh)
}

func replaceSerial(zone, from, to string) string {
	const soa = "@        7200 SOA ns1 hostmaster "
	return replaceOnce(zone, soa+from+" ", soa+to+" ")
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}
