package signer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

// fakeParent is the parent's DS as the co-located resolver would see it.
type fakeParent struct {
	mu  sync.Mutex
	ds  []*dns.DS
	err error
}

func (f *fakeParent) lookup(context.Context, string) ([]*dns.DS, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ds, f.err
}

func (f *fakeParent) set(ds []*dns.DS, err error) {
	f.mu.Lock()
	f.ds, f.err = ds, err
	f.mu.Unlock()
}

func cdsDelete(z *authority.Zone) bool {
	for _, rr := range z.Records() {
		if c, ok := rr.(*dns.CDS); ok && c.Algorithm == 0 && c.DigestType == 0 && c.Digest == "00" {
			return true
		}
	}
	return false
}

// TestUnsignWaitsForTheParent: with unsign=yes the zone stays signed with
// the delete CDS/CDNSKEY while the parent has a DS (or cannot be asked),
// and is served unsigned only once the DS is gone and its TTL (plus
// safety) has passed; a DS that comes back restarts the wait; new
// versions are then served unsigned; turning signing back on signs again.
func TestUnsignWaitsForTheParent(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewManual(t0)
	keyDir := t.TempDir()
	p, _ := ParsePolicy("zone=signed.test")
	s, err := New(p, Options{KeyDir: keyDir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ds := s.DS()
	for _, d := range ds {
		d.Hdr.Ttl = 3600
	}
	parent := &fakeParent{ds: ds}
	p, _ = ParsePolicy("zone=signed.test unsign=yes")
	if _, err := New(p, Options{KeyDir: keyDir, Clock: clk}); err == nil {
		t.Error("unsign=yes without a parent check nor unsign-wait accepted")
	}
	s, err = New(p, Options{KeyDir: keyDir, Clock: clk, ParentDS: parent.lookup})
	if err != nil {
		t.Fatal(err)
	}
	srv := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srv.SetPublishHook(testZone, s.Publish)
	step := func(d time.Duration) *authority.Zone {
		clk.Advance(d)
		s.lastParentCheck = time.Time{}
		if s.unsignDue() {
			s.checkParent(context.Background())
		}
		s.resignIfDue(srv)
		return srv.Zone(testZone)
	}
	z := srv.Zone(testZone)
	if !z.Signed() || !cdsDelete(z) {
		t.Fatal("turning off: want the zone signed with the delete CDS")
	}
	verifyZone(t, z, clk.Now())
	if z = step(48 * time.Hour); !z.Signed() {
		t.Fatal("served unsigned while the parent has a DS")
	}
	parent.set(nil, errors.New("SERVFAIL"))
	if z = step(48 * time.Hour); !z.Signed() {
		t.Fatal("served unsigned when the parent could not be asked")
	}
	parent.set(nil, nil)
	if z = step(time.Minute); !z.Signed() {
		t.Fatal("served unsigned as soon as the DS was gone, before its TTL passed")
	}
	parent.set(ds, nil) // back: the wait starts again
	step(time.Minute)
	parent.set(nil, nil)
	step(time.Minute)
	if z = step(time.Hour + 50*time.Minute); !z.Signed() {
		t.Fatal("served unsigned before the DS TTL + safety after its last removal")
	}
	if z = step(20 * time.Minute); z.Signed() {
		t.Fatal("still signed after the DS left caches")
	}
	if st := s.Status(); !st.Unsigned {
		t.Error("status does not say unsigned")
	}
	srv.Set(mustZone(t, zoneText(2, "192.0.2.2", "")))
	if srv.Zone(testZone).Signed() {
		t.Error("a new version was signed after signing was turned off")
	}
	// A restart keeps it off.
	s2, err := New(p, Options{KeyDir: keyDir, Clock: clk, ParentDS: parent.lookup})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := authority.NewServer(mustZone(t, zoneText(2, "192.0.2.2", "")))
	srv2.SetPublishHook(testZone, s2.Publish)
	if srv2.Zone(testZone).Signed() {
		t.Error("signed again after a restart with unsign=yes")
	}
	// Signing back on.
	p, _ = ParsePolicy("zone=signed.test")
	s3, err := New(p, Options{KeyDir: keyDir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv3 := authority.NewServer(mustZone(t, zoneText(2, "192.0.2.2", "")))
	srv3.SetPublishHook(testZone, s3.Publish)
	if z := srv3.Zone(testZone); !z.Signed() || cdsDelete(z) {
		t.Error("signing turned back on: want signed with the keys' CDS")
	}
}

// TestUnsignWaitAlone: with unsign-wait and no parent check the zone is
// served unsigned once the wait has passed.
func TestUnsignWaitAlone(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	p, err := ParsePolicy("zone=signed.test unsign=yes unsign-wait=2d")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(p, Options{KeyDir: t.TempDir(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srv.SetPublishHook(testZone, s.Publish)
	clk.Advance(47 * time.Hour)
	s.resignIfDue(srv)
	if !srv.Zone(testZone).Signed() {
		t.Fatal("unsigned before unsign-wait")
	}
	clk.Advance(time.Hour)
	s.resignIfDue(srv)
	if srv.Zone(testZone).Signed() {
		t.Fatal("still signed after unsign-wait")
	}
}
