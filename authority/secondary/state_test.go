package secondary

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRestartFromDisk: a transferred zone is saved, and a new Manager (a
// restart) serves it from disk before any primary answers.
func TestRestartFromDisk(t *testing.T) {
	dir := t.TempDir()
	p := startFakePrimary(t, "127.77.44.1:53", failZone, testZone(failZone, 7, 50))
	p.listen(t)
	zone := &Zone{Origin: failZone, Primaries: []netip.AddrPort{p.addr}}
	first := startSecondary(t, zone, sutOptions{stateDir: dir, firstRetry: time.Hour})
	first.waitSerial(t, failZone, 7, 3*time.Second)
	// The files are written just after the new version is served.
	var leftovers []string
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		_, zerr := os.Stat(filepath.Join(dir, "fail.test.zone"))
		_, rerr := os.Stat(filepath.Join(dir, "fail.test.refresh"))
		leftovers, _ = filepath.Glob(filepath.Join(dir, "*.new-*"))
		if zerr == nil && rerr == nil && len(leftovers) == 0 {
			break
		}
	}
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	// The restart: nothing answers at the primary's address now.
	down := &Zone{Origin: failZone, Primaries: []netip.AddrPort{netip.MustParseAddrPort("127.77.44.9:53")}}
	second := startSecondary(t, down, sutOptions{stateDir: dir, firstRetry: time.Hour})
	if got := second.serial(failZone); got != 7 {
		t.Fatalf("after the restart: serial %d, want 7 from disk", got)
	}
	r := second.ask("host49."+failZone, dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("host49 from disk: %v", r)
	}
	second.log.waitLog(t, time.Time{}, 3*time.Second, "secondary zone refresh failed", "127.77.44.9:53")
	if got := second.serial(failZone); got != 7 {
		t.Fatalf("after a failed refresh: serial %d, want 7", got)
	}
}

// TestSavedCopyBroken: a saved copy that does not load (a truncated file)
// is reported and the zone waits for a transfer.
func TestSavedCopyBroken(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fail.test.zone"), []byte("fail.test. 300 IN SOA ns1.fail.test. host"), 0o644); err != nil {
		t.Fatal(err)
	}
	zone := &Zone{Origin: failZone, Primaries: []netip.AddrPort{netip.MustParseAddrPort("127.77.44.9:53")}}
	sut := startSecondary(t, zone, sutOptions{stateDir: dir, firstRetry: time.Hour})
	if r := sut.ask(failZone, dns.TypeSOA); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	rec := sut.log.waitLog(t, time.Time{}, time.Second, "saved copy does not load")
	if !strings.Contains(rec.text, "fail.test.zone") {
		t.Fatalf("log %q does not name the file", rec.text)
	}
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		".":               "root",
		"example.com.":    "example.com",
		"a/b.example.":    "a%2Fb.example",
		"..\\/x.":         "%2E.%5C%2Fx",
		"xn--bcher-kva.":  "xn--bcher-kva",
		"under_score.ch.": "under_score.ch",
	} {
		if got := fileName(in); got != want {
			t.Errorf("fileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatusFile: after a refresh the state directory holds every zone's
// status, and ReadStatus returns it.
func TestStatusFile(t *testing.T) {
	dir := t.TempDir()
	p := startFakePrimary(t, "127.77.46.1:53", failZone, testZone(failZone, 9, 3))
	p.listen(t)
	sut := startSecondary(t, &Zone{Origin: failZone, Primaries: []netip.AddrPort{p.addr}}, sutOptions{stateDir: dir, firstRetry: time.Hour})
	sut.waitSerial(t, failZone, 9, 3*time.Second)
	var st []Status
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err := ReadStatus(dir); err == nil && len(got) == 1 && got[0].Serial == 9 {
			st = got
			break
		}
	}
	if len(st) != 1 {
		t.Fatal("no status with serial 9 written")
	}
	s := st[0]
	if s.Zone != failZone || !s.Loaded || s.Expired || s.LastError != "" || s.Transfers != 1 ||
		len(s.Primaries) != 1 || s.Primaries[0] != p.addr || s.LastSuccess.IsZero() || s.ExpiresAt.Sub(s.LastSuccess) != 86400*time.Second {
		t.Fatalf("status %+v", s)
	}

	p.set(func(p *fakePrimary) { p.rrs[0].(*dns.SOA).Serial = 10; p.refuseX = true })
	sut.m.Refresh(failZone)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err := ReadStatus(dir); err == nil && strings.Contains(got[0].LastError, "REFUSED the AXFR") {
			return
		}
	}
	t.Fatal("the failed refresh's error is not in the status file")
}
