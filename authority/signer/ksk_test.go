package signer

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

// cdsTags are the key tags the zone's CDS records name.
func cdsTags(z *authority.Zone) map[uint16]bool {
	out := map[uint16]bool{}
	for _, rr := range z.Records() {
		if c, ok := rr.(*dns.CDS); ok {
			out[c.KeyTag] = true
		}
	}
	return out
}

// dnskeySigner is the tag of the SEP key whose RRSIG covers the DNSKEY
// RRset.
func dnskeySigner(z *authority.Zone) uint16 {
	for _, rr := range z.Records() {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeDNSKEY {
			return sig.KeyTag
		}
	}
	return 0
}

// TestKSKDoubleDSRollover: after ksk-lifetime a successor KSK's DS is
// offered (CDS for both KSKs) while the old KSK keeps signing the DNSKEY
// RRset; the successor replaces it only once the parent is seen with its
// DS and the parent's DS TTL (plus safety) has passed; without ksk-wait
// the rollover waits for the parent as long as it takes.
func TestKSKDoubleDSRollover(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewManual(t0)
	parent := &fakeParent{}
	p, err := ParsePolicy("zone=signed.test ksk-lifetime=2d")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(p, Options{KeyDir: t.TempDir(), Clock: clk, ParentDS: parent.lookup})
	if err != nil {
		t.Fatal(err)
	}
	oldDS := s.DS()
	for _, d := range oldDS {
		d.Hdr.Ttl = 3600
	}
	parent.set(oldDS, nil)
	oldKSK := oldDS[0].KeyTag
	srv := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srv.SetPublishHook(testZone, s.Publish)
	step := func(d time.Duration) *authority.Zone {
		clk.Advance(d)
		s.lastParentCheck = time.Time{}
		if s.unsignDue() {
			s.checkParent(context.Background())
		}
		s.resignIfDue(srv)
		z := srv.Zone(testZone)
		verifyZone(t, z, clk.Now())
		return z
	}
	z := step(time.Hour)
	if tags := cdsTags(z); len(tags) != 1 || !tags[oldKSK] {
		t.Fatalf("before the rollover: CDS %v", tags)
	}
	z = step(2 * 24 * time.Hour)
	tags := cdsTags(z)
	if len(tags) != 2 || !tags[oldKSK] || dnskeySigner(z) != oldKSK {
		t.Fatalf("successor made: CDS %v, DNSKEY signed by %d; want both KSKs' CDS, signed by the old %d", tags, dnskeySigner(z), oldKSK)
	}
	if dnskeys, _ := keysOf(z); len(dnskeys) != 2 {
		t.Errorf("the successor joined the DNSKEY RRset before its DS: %v", dnskeys)
	}
	ds := s.DS()
	if len(ds) != 2 {
		t.Fatalf("status DS %v, want both", ds)
	}
	// The parent takes its time: nothing moves.
	for range 3 {
		if z = step(10 * 24 * time.Hour); dnskeySigner(z) != oldKSK {
			t.Fatal("swapped before the parent had the new DS")
		}
	}
	for _, d := range ds {
		d.Hdr.Ttl = 3600
	}
	parent.set(ds, nil)
	step(time.Minute) // seen
	if z = step(time.Hour + 50*time.Minute); dnskeySigner(z) != oldKSK {
		t.Fatal("swapped before the parent's DS TTL + safety passed")
	}
	z = step(20 * time.Minute)
	newKSK := dnskeySigner(z)
	if newKSK == oldKSK || newKSK == 0 {
		t.Fatalf("not swapped after the DS TTL: DNSKEY signed by %d", newKSK)
	}
	if tags := cdsTags(z); len(tags) != 1 || !tags[newKSK] {
		t.Errorf("after the swap: CDS %v, want only the new KSK %d", tags, newKSK)
	}
	if dnskeys, _ := keysOf(z); len(dnskeys) != 2 {
		t.Errorf("after the swap the DNSKEY RRset holds %v, want the new KSK and the ZSK", dnskeys)
	}
	if got := s.DS(); len(got) != 1 || got[0].KeyTag != newKSK {
		t.Errorf("DS for the registrar after the swap: %v", got)
	}
}

// TestKSKRolloverNeedsAParentCheckOrAWait: without a way to see the
// parent's DS, ksk-lifetime needs ksk-wait, and with it the swap happens
// once the wait (and the default DS TTL) has passed.
func TestKSKRolloverNeedsAParentCheckOrAWait(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	p, _ := ParsePolicy("zone=signed.test ksk-lifetime=2d")
	if _, err := New(p, Options{KeyDir: t.TempDir(), Clock: clk}); err == nil {
		t.Fatal("ksk-lifetime without a parent check nor ksk-wait accepted")
	}
	p, _ = ParsePolicy("zone=signed.test ksk-lifetime=2d ksk-wait=3d")
	s, err := New(p, Options{KeyDir: t.TempDir(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srv.SetPublishHook(testZone, s.Publish)
	oldKSK := dnskeySigner(srv.Zone(testZone))
	for _, d := range []time.Duration{2 * 24 * time.Hour, 3*24*time.Hour - time.Minute} {
		clk.Advance(d)
		s.resignIfDue(srv)
		if dnskeySigner(srv.Zone(testZone)) != oldKSK {
			t.Fatal("swapped before ksk-wait")
		}
	}
	clk.Advance(2 * time.Minute)
	s.resignIfDue(srv) // ksk-wait passed: the DS counts as seen
	clk.Advance(25*time.Hour + time.Minute)
	s.resignIfDue(srv) // the default DS TTL (1 day) + 1 h later
	if z := srv.Zone(testZone); dnskeySigner(z) == oldKSK {
		t.Fatal("not swapped after ksk-wait and the default DS TTL")
	} else {
		verifyZone(t, z, clk.Now())
	}
}
