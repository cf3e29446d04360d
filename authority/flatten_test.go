package authority

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
)

// fakeFlattener answers from a table and counts what it is asked.
type fakeFlattener struct {
	mu    sync.Mutex
	asked map[string]int
	data  map[string][]dns.RR // "name/type"
	ttl   uint32
	fail  *FlattenError
}

func (f *fakeFlattener) Flatten(_ context.Context, name string, qtype uint16) ([]dns.RR, uint32, error) {
	key := name + "/" + dns.TypeToString[qtype]
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.asked == nil {
		f.asked = make(map[string]int)
	}
	f.asked[key]++
	if f.fail != nil {
		return nil, 0, f.fail
	}
	return f.data[key], f.ttl, nil
}

func (f *fakeFlattener) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[key]
}

const flatZoneText = zoneHead + `@ 600 CNAME cdn.target.test.
@ MX 10 ns1
www 7200 CNAME cdn.target.test.
local CNAME ns1
`

// flatServer serves flatZoneText (origin example.) flattened in mode.
func flatServer(t *testing.T, mode FlattenMode, f Flattener, clk clock.Clock) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "zone.db")
	if err := os.WriteFile(path, []byte(flatZoneText), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewServer()
	s.SetFlatten("example.", mode)
	if err := s.LoadFile(path, ""); err != nil {
		t.Fatal(err)
	}
	s.SetFlattener(f, clk)
	return s
}

func flatQuery(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg).SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	return q
}

func TestApexCNAMERejectedWithoutFlattening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zone.db")
	if err := os.WriteFile(path, []byte(flatZoneText), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadZoneFile(path, "")
	if err == nil || !strings.Contains(err.Error(), "zone.db:6: CNAME beside other data") || !strings.Contains(err.Error(), "--flatten example.") {
		t.Fatalf("err = %v, want zone.db:6 CNAME beside other data, naming --flatten", err)
	}
	s := NewServer()
	s.SetFlatten("example.", FlattenApex)
	if _, err := s.ParseFile(path, ""); err != nil {
		t.Fatalf("with flattening: %v", err)
	}
}

func TestFlattenZoneChecks(t *testing.T) {
	cases := []struct{ name, extra, want string }{
		{"A beside the apex CNAME", "@ A 192.0.2.7\n", "zone.db:6: A beside the flattened CNAME at the apex"},
		{"HTTPS beside the apex CNAME", "@ HTTPS 1 .\n", "HTTPS beside the flattened CNAME"},
		{"CNAME beside data below the apex", "x CNAME ns1\nx TXT \"t\"\n", "CNAME beside other data (TXT) at x.example."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := zoneHead + "@ CNAME cdn.target.test.\n" + c.extra
			path := filepath.Join(t.TempDir(), "zone.db")
			_ = os.WriteFile(path, []byte(text), 0o600)
			s := NewServer()
			s.SetFlatten("example.", FlattenAll)
			_, err := s.ParseFile(path, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestFlattenedAnswers(t *testing.T) {
	f := &fakeFlattener{ttl: 300, data: map[string][]dns.RR{
		"cdn.target.test./A":    {mustRR(t, "cdn.target.test. 300 A 198.51.100.7"), mustRR(t, "cdn.target.test. 300 A 198.51.100.8")},
		"cdn.target.test./AAAA": {mustRR(t, "cdn.target.test. 300 AAAA 2001:db8::7")},
	}}
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := flatServer(t, FlattenApex, f, clk)

	m, volatile := s.AnswerVolatile(flatQuery("Example.", dns.TypeA))
	if !volatile || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 2 {
		t.Fatalf("apex A: volatile %v\n%v", volatile, m)
	}
	for _, rr := range m.Answer {
		if rr.Header().Name != "Example." || rr.Header().Rrtype != dns.TypeA || rr.Header().Ttl != 300 {
			t.Errorf("apex A record %v: want owner Example., type A, TTL 300 (min of CNAME 600 and target 300)", rr)
		}
	}
	if m, _ := s.AnswerVolatile(flatQuery("example.", dns.TypeAAAA)); len(m.Answer) != 1 || m.Answer[0].(*dns.AAAA).AAAA.String() != "2001:db8::7" {
		t.Errorf("apex AAAA:\n%v", m)
	}
	// Types the apex has are its own; the CNAME is never sent.
	for _, qt := range []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeMX} {
		m, volatile := s.AnswerVolatile(flatQuery("example.", qt))
		if volatile || len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != qt {
			t.Errorf("apex %s: volatile %v\n%v", dns.TypeToString[qt], volatile, m)
		}
	}
	for _, qt := range []uint16{dns.TypeCNAME, dns.TypeTXT} {
		m := s.Answer(flatQuery("example.", qt))
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
			t.Errorf("apex %s: want NODATA\n%v", dns.TypeToString[qt], m)
		}
	}
	// In apex mode other CNAMEs are CNAMEs.
	if m := s.Answer(flatQuery("www.example.", dns.TypeA)); len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("www A in apex mode:\n%v", m)
	}

	// Cached: asked once, TTL counting down on the DNS clock.
	clk.Advance(100 * time.Second)
	m = s.Answer(flatQuery("example.", dns.TypeA))
	if got := f.count("cdn.target.test./A"); got != 1 {
		t.Errorf("target asked %d times, want 1 (cached)", got)
	}
	if m.Answer[0].Header().Ttl != 200 {
		t.Errorf("TTL after 100 s = %d, want 200", m.Answer[0].Header().Ttl)
	}
	// Past three quarters of the TTL: refreshed in the background.
	clk.Advance(150 * time.Second)
	_ = s.Answer(flatQuery("example.", dns.TypeA))
	for deadline := time.Now().Add(5 * time.Second); f.count("cdn.target.test./A") < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh near expiry")
		}
	}
}

func TestFlattenAllAndLocalTargets(t *testing.T) {
	f := &fakeFlattener{ttl: 9000, data: map[string][]dns.RR{
		"cdn.target.test./A": {mustRR(t, "cdn.target.test. 9000 A 198.51.100.7")},
	}}
	s := flatServer(t, FlattenAll, f, nil)
	m := s.Answer(flatQuery("www.example.", dns.TypeA))
	if len(m.Answer) != 1 || m.Answer[0].Header().Name != "www.example." || m.Answer[0].Header().Ttl != 7200 {
		t.Errorf("www A flattened: want one A at www.example. TTL 7200 (the CNAME's)\n%v", m)
	}
	// A target inside the local zones is answered from them.
	m = s.Answer(flatQuery("local.example.", dns.TypeA))
	if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" || m.Answer[0].Header().Name != "local.example." {
		t.Errorf("local A flattened to ns1's address:\n%v", m)
	}
	// Other types at a flattened name below the apex get the CNAME.
	if m := s.Answer(flatQuery("www.example.", dns.TypeTXT)); len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("www TXT:\n%v", m)
	}
	// The target with no such data: NODATA, not an error.
	if m := s.Answer(flatQuery("www.example.", dns.TypeAAAA)); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("www AAAA (target has none): want NODATA\n%v", m)
	}
}

func TestFlattenFailureIsServfailWithEDE(t *testing.T) {
	f := &fakeFlattener{fail: &FlattenError{EDE: dns.ExtendedErrorCodeNoReachableAuthority, Text: "all servers timed out"}}
	s := flatServer(t, FlattenApex, f, nil)
	m, volatile := s.AnswerVolatile(flatQuery("example.", dns.TypeA))
	if !volatile || m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
		t.Fatalf("want SERVFAIL without records, volatile\n%v", m)
	}
	var ede *dns.EDNS0_EDE
	for _, o := range m.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			ede = e
		}
	}
	if ede == nil || ede.InfoCode != dns.ExtendedErrorCodeNoReachableAuthority || !strings.Contains(ede.ExtraText, "cdn.target.test.") {
		t.Errorf("EDE = %v, want 22 naming the target", ede)
	}
}

// A chain that loops through flattened names ends in an error, not a
// hang: local targets are followed without flattening again.
func TestFlattenLocalLoopEnds(t *testing.T) {
	text := zoneHead + "@ CNAME www\nwww CNAME example.\n"
	path := filepath.Join(t.TempDir(), "zone.db")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	s := NewServer()
	s.SetFlatten("example.", FlattenAll)
	if err := s.LoadFile(path, ""); err != nil {
		t.Fatal(err)
	}
	s.SetFlattener(&fakeFlattener{}, nil)
	m := s.Answer(flatQuery("example.", dns.TypeA))
	if m.Rcode != dns.RcodeServerFailure {
		t.Errorf("looping chain: want SERVFAIL\n%v", m)
	}
}

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// TestFlattenSignedZone: in a zone signed online, the flattened RRset
// carries an RRSIG by the zone's key that verifies over the apex owner,
// and the apex's NSEC leaves the CNAME out, so that its NODATA proofs hold.
func TestFlattenSignedZone(t *testing.T) {
	for _, nsec3 := range []bool{false, true} {
		t.Run(map[bool]string{false: "NSEC", true: "NSEC3"}[nsec3], func(t *testing.T) {
			key, err := GenerateKey("example.", dns.ECDSAP256SHA256, 257)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			opts := SignOptions{Keys: []*Key{key}, Inception: now.Add(-time.Hour), Expiration: now.Add(24 * time.Hour)}
			if nsec3 {
				opts.NSEC3 = &NSEC3Options{}
			}
			signed, err := Sign("example.", mustZoneRRs(t, flatZoneText), opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewZoneWith("example.", signed, ZoneOptions{Flatten: FlattenApex}); err == nil || !strings.Contains(err.Error(), "pre-signed") {
				t.Fatalf("signed zone without keys: err %v, want pre-signed refused", err)
			}
			if _, err := NewZoneWith("example.", signed, ZoneOptions{Flatten: FlattenAll, FlattenKeys: []*Key{key}}); err == nil {
				t.Fatal("signed zone flattening all CNAMEs accepted")
			}
			z, err := NewZoneWith("example.", signed, ZoneOptions{Flatten: FlattenApex, FlattenKeys: []*Key{key}})
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(z)
			s.SetFlattener(&fakeFlattener{ttl: 300, data: map[string][]dns.RR{
				"cdn.target.test./A": {mustRR(t, "cdn.target.test. 300 A 198.51.100.7")},
			}}, nil)
			q := new(dns.Msg).SetQuestion("eXample.", dns.TypeA)
			q.SetEdns0(1232, true)
			m := s.Answer(q)
			var rrset []dns.RR
			var sig *dns.RRSIG
			for _, rr := range m.Answer {
				if s, ok := rr.(*dns.RRSIG); ok {
					sig = s
				} else {
					rrset = append(rrset, rr)
				}
			}
			if len(rrset) != 1 || sig == nil || sig.KeyTag != key.Tag() || sig.SignerName != "example." || sig.OrigTtl != 300 {
				t.Fatalf("want one A and its RRSIG by key %d, orig TTL 300:\n%v", key.Tag(), m)
			}
			if err := VerifySignature(sig, key.DNSKEY, rrset); err != nil {
				t.Errorf("flattened RRSIG does not verify: %v", err)
			}
			// Asked again: the same signature, kept with the data.
			if m2 := s.Answer(q); m2.Answer[len(m2.Answer)-1].(*dns.RRSIG).Signature != sig.Signature {
				t.Error("flattened RRset signed again for the same data")
			}
			// NODATA at the apex: the proof's bitmap has no CNAME.
			q = new(dns.Msg).SetQuestion("example.", dns.TypeAAAA)
			q.SetEdns0(1232, true)
			m = s.Answer(q)
			proofs := 0
			for _, rr := range m.Ns {
				bitmap, ok := denialBitmap(rr)
				if !ok {
					continue
				}
				proofs++
				for _, t2 := range bitmap {
					if t2 == dns.TypeCNAME || t2 == dns.TypeAAAA {
						t.Errorf("apex denial names %s: %v", dns.TypeToString[t2], rr)
					}
				}
				var sig *dns.RRSIG
				for _, s2 := range m.Ns {
					if s2, ok := s2.(*dns.RRSIG); ok && s2.TypeCovered == rr.Header().Rrtype {
						sig = s2
					}
				}
				if sig == nil || VerifySignature(sig, key.DNSKEY, []dns.RR{rr}) != nil {
					t.Errorf("apex denial %v: signature %v does not verify", rr, sig)
				}
			}
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || proofs == 0 {
				t.Errorf("apex AAAA (target has none): want NODATA with a proof\n%v", m)
			}
			// The zone's own apex denial names the flattened types, so
			// that no resolver denies them from it (RFC 8198).
			q = new(dns.Msg).SetQuestion("example.", dns.TypeTXT)
			q.SetEdns0(1232, true)
			txt := s.Answer(q)
			if len(txt.Ns) < 3 {
				t.Errorf("apex TXT NODATA: want SOA and a signed proof\n%v", txt)
			}
			for _, rr := range txt.Ns {
				bitmap, ok := denialBitmap(rr)
				if !ok {
					continue
				}
				if !slices.Contains(bitmap, dns.TypeA) || !slices.Contains(bitmap, dns.TypeAAAA) || slices.Contains(bitmap, dns.TypeCNAME) {
					t.Errorf("apex denial for TXT: bitmap %v, want A and AAAA, no CNAME", bitmap)
				}
			}
		})
	}
}

func mustZoneRRs(t *testing.T, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), "example.", "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return rrs
}

// BenchmarkFlattenedAnswer: a flattened apex A from the flattening cache,
// beside an ordinary answer from the zone, and signed online (DO, the
// signature kept with the data).
func BenchmarkFlattenedAnswer(b *testing.B) {
	path := filepath.Join(b.TempDir(), "zone.db")
	if err := os.WriteFile(path, []byte(flatZoneText), 0o600); err != nil {
		b.Fatal(err)
	}
	s := NewServer()
	s.SetFlatten("example.", FlattenApex)
	if err := s.LoadFile(path, ""); err != nil {
		b.Fatal(err)
	}
	target := &fakeFlattener{ttl: 3600, data: map[string][]dns.RR{"cdn.target.test./A": {
		&dns.A{Hdr: dns.RR_Header{Name: "cdn.target.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: []byte{198, 51, 100, 7}}}}}
	s.SetFlattener(target, nil)
	key, err := GenerateKey("example.", dns.ECDSAP256SHA256, 257)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	rrs, err := Sign("example.", s.Zone("example.").Records(), SignOptions{Keys: []*Key{key}, Inception: now.Add(-time.Hour), Expiration: now.Add(24 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	z, err := NewZoneWith("example.", rrs, ZoneOptions{Flatten: FlattenApex, FlattenKeys: []*Key{key}})
	if err != nil {
		b.Fatal(err)
	}
	signed := NewServer(z)
	signed.SetFlattener(target, nil)
	for _, tc := range []struct {
		name  string
		s     *Server
		qname string
		do    bool
	}{{"zone-data", s, "ns1.example.", false}, {"flattened", s, "example.", false}, {"flattened-signed-do", signed, "example.", true}} {
		q := new(dns.Msg).SetQuestion(tc.qname, dns.TypeA)
		q.SetEdns0(1232, tc.do)
		tc.s.Answer(q) // fill the cache
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.s.Answer(q)
			}
		})
	}
}

// denialBitmap is the type bitmap of an NSEC or NSEC3 record; false for
// any other record.
func denialBitmap(rr dns.RR) ([]uint16, bool) {
	switch p := rr.(type) {
	case *dns.NSEC:
		return p.TypeBitMap, true
	case *dns.NSEC3:
		return p.TypeBitMap, true
	}
	return nil, false
}
