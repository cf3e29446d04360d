package metrics

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/authority/xfrout"
)

// Loopback addresses of this test (ARCHITECTURE.md, 127.99.0.0/16): the
// primary on 127.99.253.1, the secondary's source 127.99.253.2.
var (
	primaryAddr   = netip.MustParseAddrPort("127.99.253.1:53")
	secondarySrc  = netip.MustParseAddr("127.99.253.2")
	primaryZone   = "$ORIGIN metrics.test.\n$TTL 300\n@ SOA ns1 hostmaster 42 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\n"
	primaryOrigin = "metrics.test."
)

// TestSecondaryZoneMetrics transfers a zone from a primary on loopback and
// reads its status through the collector: loaded, serial 42, one
// transfer, refresh not failing.
func TestSecondaryZoneMetrics(t *testing.T) {
	z, err := authority.ParseZone(strings.NewReader(primaryZone), primaryOrigin, "primary")
	if err != nil {
		t.Fatal(err)
	}
	out, err := xfrout.New([]*xfrout.Zone{{Origin: primaryOrigin, Allow: []netip.Prefix{netip.PrefixFrom(secondarySrc, 32)}}},
		xfrout.Options{Zones: authority.NewServer(z)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := out.Listen(primaryAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ln.Close)
	m, err := secondary.New([]*secondary.Zone{{Origin: primaryOrigin, Primaries: []netip.AddrPort{primaryAddr}, Source: secondarySrc}},
		secondary.Options{Server: authority.NewServer()})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCollector(Sources{Secondary: m})
	before := `
# HELP sextant_secondary_zone_loaded 1 when a version of the secondary zone is held.
# TYPE sextant_secondary_zone_loaded gauge
sextant_secondary_zone_loaded{zone="metrics.test."} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(before), "sextant_secondary_zone_loaded", "sextant_secondary_zone_serial"); err != nil {
		t.Errorf("before the transfer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); m.Wait() })
	m.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for !m.Status()[0].Loaded {
		if time.Now().After(deadline) {
			t.Fatalf("zone not transferred: %+v", m.Status()[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := `
# HELP sextant_secondary_zone_loaded 1 when a version of the secondary zone is held.
# TYPE sextant_secondary_zone_loaded gauge
sextant_secondary_zone_loaded{zone="metrics.test."} 1
# HELP sextant_secondary_zone_serial SOA serial of the version held.
# TYPE sextant_secondary_zone_serial gauge
sextant_secondary_zone_serial{zone="metrics.test."} 42
# HELP sextant_secondary_zone_transfers_total New versions of the secondary zone transferred in.
# TYPE sextant_secondary_zone_transfers_total counter
sextant_secondary_zone_transfers_total{zone="metrics.test."} 1
# HELP sextant_secondary_zone_refresh_failing 1 when the secondary zone's last refresh failed.
# TYPE sextant_secondary_zone_refresh_failing gauge
sextant_secondary_zone_refresh_failing{zone="metrics.test."} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(after), "sextant_secondary_zone_loaded", "sextant_secondary_zone_serial",
		"sextant_secondary_zone_transfers_total", "sextant_secondary_zone_refresh_failing"); err != nil {
		t.Errorf("after the transfer: %v", err)
	}
	if n := testutil.CollectAndCount(c, "sextant_secondary_zone_last_success_timestamp_seconds"); n != 1 {
		t.Errorf("%d last-success series, want 1", n)
	}
}
