package signer

import (
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

// keysOf returns the tags in z's DNSKEY RRset and those of the keys whose
// signatures z holds (for other RRsets than DNSKEY, CDS and CDNSKEY,
// which the KSK signs).
func keysOf(z *authority.Zone) (dnskeys, signers []uint16) {
	for _, rr := range z.Records() {
		switch r := rr.(type) {
		case *dns.DNSKEY:
			dnskeys = append(dnskeys, r.KeyTag())
		case *dns.RRSIG:
			keySet := r.TypeCovered == dns.TypeDNSKEY || r.TypeCovered == dns.TypeCDS || r.TypeCovered == dns.TypeCDNSKEY
			if !keySet && !slices.Contains(signers, r.KeyTag) {
				signers = append(signers, r.KeyTag)
			}
		}
	}
	slices.Sort(dnskeys)
	slices.Sort(signers)
	return dnskeys, signers
}

// TestZSKPrePublishRollover moves the DNS clock through a ZSK's lifetime
// in half-hour steps and checks RFC 6781 4.1.1.1 at every version served:
// a key signs only once it has been in the DNSKEY RRset for Ipub, a key
// leaves the DNSKEY RRset only Iret after it last signed, and every
// version validates. At the end a new ZSK signs alone, and a restart in
// the middle of a rollover carries on.
func TestZSKPrePublishRollover(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewManual(t0)
	p, err := ParsePolicy("zone=signed.test zsk-lifetime=10d validity=14d refresh=5d")
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	s, err := New(p, Options{KeyDir: keyDir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srv.SetPublishHook(testZone, s.Publish)
	_, firstSigners := keysOf(srv.Zone(testZone))

	ipub := 300*time.Second + publishSafety // DNSKEY TTL (the SOA TTL) + safety
	iret := 300*time.Second + retireSafety  // largest TTL + safety
	// inSetSince: when each key joined the DNSKEY RRset; lastSigned: the
	// last time each key's signatures were served (until the version
	// without them replaced the one with them).
	inSetSince := map[uint16]time.Time{}
	lastSigned := map[uint16]time.Time{}
	var prevSigners []uint16
	record := func(z *authority.Zone, at time.Time) {
		dnskeys, signers := keysOf(z)
		for _, k := range prevSigners {
			lastSigned[k] = at
		}
		prevSigners = signers
		for _, k := range dnskeys {
			if _, ok := inSetSince[k]; !ok {
				inSetSince[k] = at
			}
		}
		for k := range inSetSince {
			if !slices.Contains(dnskeys, k) {
				if at.Sub(lastSigned[k]) < iret {
					t.Errorf("%v: key %d left the DNSKEY RRset %v after its last signature, want at least %v", at, k, at.Sub(lastSigned[k]), iret)
				}
				delete(inSetSince, k)
			}
		}
		for _, k := range signers {
			since, ok := inSetSince[k]
			if !ok {
				t.Errorf("%v: key %d signs but is not in the DNSKEY RRset", at, k)
			} else if at.Sub(since) < ipub && since != t0 {
				t.Errorf("%v: key %d signs %v after its publication, want at least %v", at, k, at.Sub(since), ipub)
			}
			lastSigned[k] = at
		}
	}
	record(srv.Zone(testZone), t0)
	versions, restarted := 0, false
	for step := time.Duration(0); step < 11*24*time.Hour; step += 30 * time.Minute {
		clk.Set(t0.Add(step))
		before := srv.Zone(testZone)
		s.resignIfDue(srv)
		z := srv.Zone(testZone)
		if z == before {
			continue
		}
		versions++
		verifyZone(t, z, clk.Now())
		record(z, clk.Now())
		// A restart while the successor is published but not yet signing.
		if st := s.Status(); !restarted && len(st.Keys) == 3 && st.Keys[2].State == StatePublished {
			restarted = true
			s, err = New(p, Options{KeyDir: keyDir, Clock: clk})
			if err != nil {
				t.Fatalf("restart during the rollover: %v", err)
			}
			srv = authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
			srv.SetPublishHook(testZone, s.Publish)
			if dnskeys, _ := keysOf(srv.Zone(testZone)); len(dnskeys) != 3 {
				t.Fatalf("after a restart the DNSKEY RRset has %d keys, want 3", len(dnskeys))
			}
		}
	}
	if !restarted {
		t.Fatal("the rollover never published a successor")
	}
	dnskeys, signers := keysOf(srv.Zone(testZone))
	if len(dnskeys) != 2 || len(signers) != 1 || signers[0] == firstSigners[0] {
		t.Errorf("after the rollover: DNSKEYs %v signed by %v (first ZSK %v)", dnskeys, signers, firstSigners)
	}
	// Publication, activation, removal, and re-signings: not every step.
	if versions < 3 || versions > 12 {
		t.Errorf("%d versions served in 11 days", versions)
	}
	st := s.Status()
	if len(st.Keys) != 2 || st.Keys[1].Role != RoleZSK || st.Keys[1].state() != StateActive {
		t.Errorf("keys after the rollover: %+v", st.Keys)
	}
}
