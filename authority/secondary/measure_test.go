package secondary

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestMeasureTransfers measures, against a Knot DNS primary, the AXFR of a
// 100 000-record zone, the IXFR of a 10-record change to it, the time from
// NOTIFY to the new answer, and the memory a served record costs. It runs
// only with SEXTANT_MEASURE=1 (it takes seconds and the figures are for the
// README):
//
//	SEXTANT_MEASURE=1 go test ./authority/secondary/ -run TestMeasureTransfers -v
func TestMeasureTransfers(t *testing.T) {
	if os.Getenv("SEXTANT_MEASURE") != "1" {
		t.Skip("set SEXTANT_MEASURE=1")
	}
	const records = 100_000
	dir := t.TempDir()
	s := primarySetup{
		dir: dir, zone: "big.test.", zoneFile: filepath.Join(dir, "big.test.zone"),
		addr: netip.MustParseAddr("127.77.50.1"), port: 53, secondary: netip.MustParseAddr("127.77.50.2"),
	}
	// testZone has 5 records besides the hosts.
	s.writeZone(t, 1, records-5)
	p := &knotPrimary{primarySetup: s}
	p.start(t)
	waitAnswers(t, "127.77.50.1:53", s.zone, 30*time.Second)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	zone := &Zone{Origin: s.zone, Primaries: []netip.AddrPort{netip.AddrPortFrom(s.addr, 53)}, Source: s.secondary}
	start := time.Now()
	sut := startSecondary(t, zone, sutOptions{notifyAddr: netip.AddrPortFrom(s.secondary, notifyPort).String()})
	served := sut.waitSerial(t, s.zone, 1, 60*time.Second)
	rec := sut.log.waitLog(t, start, time.Second, "secondary zone transferred", "serial=1")
	axfr := served.Sub(start)
	t.Logf("AXFR of %d records, start to served: %v (%.0f records/s); %s", records, axfr.Round(time.Millisecond),
		float64(records)/axfr.Seconds(), rec.text)

	time.Sleep(200 * time.Millisecond) // let the state writes (none here) and the refresh settle
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perRecord := float64(after.HeapAlloc-before.HeapAlloc) / records
	t.Logf("memory: %.0f bytes of heap per served record (heap %d MB -> %d MB)", perRecord, before.HeapAlloc>>20, after.HeapAlloc>>20)

	// A 10-record change: www's address changes (one record out, one in)
	// and 8 hosts are added; the IXFR also carries the two SOAs.
	since := time.Now()
	s.writeZone(t, 2, records-5+8)
	p.reload(t)
	notified := sut.log.waitLog(t, since, 10*time.Second, "NOTIFY taken").at
	served = sut.waitSerial(t, s.zone, 2, 10*time.Second)
	rec = sut.log.waitLog(t, since, time.Second, "secondary zone transferred", "serial=2")
	t.Logf("IXFR of a 10-record change: NOTIFY to new answer %v; %s", served.Sub(notified).Round(time.Millisecond), rec.text)
}
