package resolver

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
)

// aggressiveLabBase is the block of the RFC 8198 synthesis tests and
// benchmark.
var aggressiveLabBase = netip.MustParseAddr("127.74.0.0")

// startAggressiveLab starts a lab on this file's block, dated by labClock.
func startAggressiveLab(t testing.TB, labClock clock.Clock) *lab.Lab {
	t.Helper()
	l := labtest.Start(t, lab.Config{AddrBase: aggressiveLabBase, Clock: labClock, BulkHosts: -1, SlowDelay: 50 * time.Millisecond})
	return l
}

// floodNames gives the names of a random-subdomain flood: one fresh
// random label under zone per call, spread over the whole name space so
// that every NSEC/NSEC3 range of the zone is hit.
type floodNames struct{ rng *rand.Rand }

func newFloodNames(seed uint64) *floodNames {
	return &floodNames{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (f *floodNames) next(zone string) string {
	return fmt.Sprintf("%012x.%s", f.rng.Uint64()&0xffffffffffff, zone)
}

// BenchmarkAggressiveFlood: CPU per query of a random-subdomain flood
// (every name fresh, NXDOMAIN) through a validating resolver on a warm
// cache: at a signed NSEC zone and a signed NSEC3 zone (answered from the
// kept validated ranges, RFC 8198) and at an unsigned zone (every name
// goes upstream). upstream/op counts the queries the lab servers got;
// cpu-ns/op is the process's CPU time (user and system) per query, less
// disturbed than ns/op on a shared machine, the lab servers' share
// included (for the unsigned zone, answering the upstream query).
func BenchmarkAggressiveFlood(b *testing.B) {
	l := startAggressiveLab(b, clock.System{})
	for _, z := range []struct{ name, zone string }{
		{"nsec", lab.SecureAlg13},
		{"nsec3", lab.NSEC3Zone},
		{"unsigned", lab.Insecure},
	} {
		b.Run(z.name, func(b *testing.B) {
			r, _ := newValidatingResolver(b, l, clock.System{})
			names := newFloodNames(1)
			// Warm: the zone's keys and, for the signed zones, the
			// denial ranges a few hundred random names fall in.
			for range 256 {
				if m, _ := ask(b, r, names.next(z.zone), dns.TypeA, true, false, false); m.Rcode != dns.RcodeNameError {
					b.Fatalf("warming %s: %s", z.zone, dns.RcodeToString[m.Rcode])
				}
			}
			before, cpu := labQueryCount(l), cpuTime()
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n++
				if m, _ := ask(b, r, names.next(z.zone), dns.TypeA, true, false, false); m.Rcode != dns.RcodeNameError {
					b.Fatalf("%s: %s", z.zone, dns.RcodeToString[m.Rcode])
				}
			}
			b.ReportMetric(float64(labQueryCount(l)-before)/float64(n), "upstream/op")
			b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/op")
		})
	}
}
