package xfrout

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

// The tests use 127.77.70.0/24 to 127.77.75.0/24 (BIND itself on
// 127.0.0.1 with a free port: it binds only interface addresses).

const testSecret = "c2V4dGFudC1zZWNvbmRhcnktdGVzdC1rZXktMzItYnl0ZXM="

func zoneText(origin string, serial uint32, hosts int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n", origin, serial)
	fmt.Fprintf(&b, "www A 192.0.2.%d\n", serial%250+1)
	for i := 0; i < hosts; i++ {
		fmt.Fprintf(&b, "host%d A 198.51.%d.%d\n", i, i/250%250, i%250+1)
	}
	return b.String()
}

func mustZone(t *testing.T, origin string, serial uint32, hosts int) *authority.Zone {
	t.Helper()
	z, err := authority.ParseZone(strings.NewReader(zoneText(origin, serial, hosts)), origin, "")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// logBuffer keeps the log text (written while the test reads it).
type logBuffer = dnstest.Buffer

func startPrimary(t *testing.T, zones *authority.Server, z *Zone, listen string) (*Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s, err := New([]*Zone{z}, Options{Zones: zones, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		NotifyInterval: 200 * time.Millisecond, RefusedLogInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Listen(listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); s.Wait() })
	return s, logs
}

// axfr runs an AXFR from src and returns the records or the rcode error.
func axfr(t *testing.T, src, dst, zone string, key *secondary.Key) ([]dns.RR, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	nc, err := d.Dial("tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	tr := &dns.Transfer{Conn: &dns.Conn{Conn: nc}}
	q := new(dns.Msg)
	q.SetAxfr(zone)
	if key != nil {
		tr.TsigSecret = map[string]string{key.Name: key.Secret}
		q.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
	}
	ch, err := tr.In(q, dst)
	if err != nil {
		return nil, err
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			return nil, env.Error
		}
		rrs = append(rrs, env.RR...)
	}
	return rrs, nil
}

// TestTransferOutACL: allowed addresses (and, with a key, signed requests)
// get the whole zone framed by its SOA over several messages; everyone
// else is REFUSED.
func TestTransferOutACL(t *testing.T) {
	zones := authority.NewServer(mustZone(t, "out.test.", 5, 3000))
	key := &secondary.Key{Name: "xfr-key.", Algorithm: dns.HmacSHA256, Secret: testSecret}
	z := &Zone{Origin: "out.test.", Allow: []netip.Prefix{netip.MustParsePrefix("127.77.70.2/32")}, Key: key}
	_, logs := startPrimary(t, zones, z, "127.77.70.1:5353")

	rrs, err := axfr(t, "127.77.70.2", "127.77.70.1:5353", "out.test.", key)
	if err != nil {
		t.Fatalf("allowed, signed AXFR: %v", err)
	}
	if n := len(rrs); n != 3000+4+1 || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[n-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("AXFR: %d records, first %v, last %v", n, rrs[0], rrs[n-1])
	}
	for _, tc := range []struct {
		name, src string
		key       *secondary.Key
		want      string
	}{
		{"other address", "127.77.70.3", key, "127.77.70.3 is not in allow="},
		{"unsigned", "127.77.70.2", nil, "not TSIG-signed"},
		{"wrong secret", "127.77.70.2", &secondary.Key{Name: key.Name, Algorithm: key.Algorithm, Secret: "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0zMg=="}, "TSIG check failed"},
	} {
		_, err := axfr(t, tc.src, "127.77.70.1:5353", "out.test.", tc.key)
		if err == nil {
			t.Errorf("%s: transfer allowed", tc.name)
			continue
		}
		if !strings.Contains(logs.String(), tc.want) {
			t.Errorf("%s: log lacks %q:\n%s", tc.name, tc.want, logs.String())
		}
	}
	if _, err := axfr(t, "127.77.70.2", "127.77.70.1:5353", "other.test.", key); err == nil {
		t.Error("a zone not offered was transferred")
	}
}

// serialAt is the SOA serial a server answers for zone, or -1.
func serialAt(addr, zone string) int64 {
	q := new(dns.Msg).SetQuestion(zone, dns.TypeSOA)
	r, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(q, addr)
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return -1
	}
	if soa, ok := r.Answer[0].(*dns.SOA); ok {
		return int64(soa.Serial)
	}
	return -1
}

func waitSerial(t *testing.T, addr, zone string, want uint32, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if serialAt(addr, zone) == int64(want) {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: serial %d of %s not served within %v (serving %d)", addr, want, zone, within, serialAt(addr, zone))
	return time.Time{}
}

// TestSecondariesOfSextant: BIND 9 and Knot DNS as secondaries of Sextant,
// with TSIG: their first transfer, then a new version on Sextant whose
// NOTIFY makes each serve it within 2 s.
func TestSecondariesOfSextant(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("Knot listens on port 53: run as root")
	}
	key := &secondary.Key{Name: "xfr-key.", Algorithm: dns.HmacSHA256, Secret: testSecret}
	for _, tc := range []struct {
		name  string
		net   int
		start func(t *testing.T, dir, primary string) (addr string, notify netip.AddrPort)
	}{
		{"bind", 72, startBINDSecondary},
		{"knot", 73, startKnotSecondary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			origin := "out.test."
			primary := fmt.Sprintf("127.77.%d.1", tc.net)
			zones := authority.NewServer(mustZone(t, origin, 1, 100))
			addr, notify := tc.start(t, dir, primary)
			z := &Zone{Origin: origin, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Key: key,
				Notify: []netip.AddrPort{notify}, Source: netip.MustParseAddr(primary)}
			s, logs := startPrimary(t, zones, z, primary+":5353")
			waitSerial(t, addr, origin, 1, 10*time.Second)

			zones.Set(mustZone(t, origin, 2, 110))
			start := time.Now()
			s.Check(context.Background())
			served := waitSerial(t, addr, origin, 2, 2*time.Second)
			if !strings.Contains(logs.String(), "NOTIFY sent") {
				t.Fatalf("no NOTIFY logged:\n%s", logs.String())
			}
			if !strings.Contains(logs.String(), "serial=2 kind=IXFR style=incremental") {
				t.Fatalf("the new version did not go by incremental IXFR:\n%s", logs.String())
			}
			t.Logf("%s: new version on Sextant to answered by the secondary: %v", tc.name, served.Sub(start).Round(time.Millisecond))
		})
	}
}

func startBINDSecondary(t *testing.T, dir, primary string) (string, netip.AddrPort) {
	port := dnstest.FreeLoopbackPort(t)
	dnstest.StartBIND(t, dnstest.BIND{Dir: dir, Port: port, Options: []string{"notify no;"}, Conf: fmt.Sprintf(`key "xfr-key" { algorithm hmac-sha256; secret "%[2]s"; };
zone "out.test" { type secondary; primaries { %[3]s port 5353 key xfr-key; }; file "%[1]s/out.test.db"; };
`, dir, testSecret, primary)})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return addr, netip.MustParseAddrPort(addr)
}

func startKnotSecondary(t *testing.T, dir, primary string) (string, netip.AddrPort) {
	listen := strings.TrimSuffix(primary, ".1") + ".2"
	dnstest.StartKnot(t, dnstest.Knot{Dir: dir, Listen: listen + "@53", Conf: fmt.Sprintf(`key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: %[2]s
remote:
  - id: sextant
    address: %[3]s@5353
    key: xfr-key
acl:
  - id: notify
    address: %[3]s
    action: notify
    key: xfr-key
zone:
  - domain: out.test
    storage: "%[1]s"
    master: sextant
    acl: notify
`, dir, testSecret, primary)})
	addr := listen + ":53"
	return addr, netip.MustParseAddrPort(addr)
}

// TestSextantToSextant: a Sextant secondary of a Sextant primary gets the
// first version by AXFR and the next ones by incremental IXFR, ending with
// exactly the primary's records; a secondary older than the journal gets
// the whole zone.
func TestSextantToSextant(t *testing.T) {
	origin := "chain.test."
	zones := authority.NewServer(mustZone(t, origin, 1, 50))
	notifyAt := netip.MustParseAddrPort("127.77.74.2:5300")
	z := &Zone{Origin: origin, Allow: []netip.Prefix{netip.MustParsePrefix("127.77.74.2/32")},
		Notify: []netip.AddrPort{notifyAt}, Source: netip.MustParseAddr("127.77.74.1")}
	s, logs := startPrimary(t, zones, z, "127.77.74.1:5353")

	copyZones := authority.NewServer()
	m, err := secondary.New([]*secondary.Zone{{Origin: origin, Primaries: []netip.AddrPort{netip.MustParseAddrPort("127.77.74.1:5353")},
		Source: netip.MustParseAddr("127.77.74.2")}}, secondary.Options{Server: copyZones, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.ListenNotify(notifyAt.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m.Start(ctx)
	waitCopy := func(serial uint32) {
		t.Helper()
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if c := copyZones.Zone(origin); c != nil && c.SOA() != nil && c.SOA().Serial == serial {
				return
			}
		}
		t.Fatalf("the copy did not reach serial %d:\n%s", serial, logs.String())
	}
	waitCopy(1)
	// Two steps: www changes and hosts are added, then some removed.
	zones.Set(mustZone(t, origin, 2, 60))
	s.Check(ctx)
	waitCopy(2)
	zones.Set(mustZone(t, origin, 3, 40))
	s.Check(ctx)
	waitCopy(3)
	if n := strings.Count(logs.String(), "kind=IXFR style=incremental"); n != 2 {
		t.Fatalf("%d incremental IXFRs, want 2:\n%s", n, logs.String())
	}
	want, got := texts(zones.Zone(origin).Records()), texts(copyZones.Zone(origin).Records())
	if want != got {
		t.Fatalf("the copy differs from the primary:\n%s\nwant:\n%s", got, want)
	}
	// A client at serial 1 gets the chain of both steps.
	if d := s.diffsFrom(origin, 1, 3); len(d) != 2 {
		t.Fatalf("journal from 1 to 3: %d steps, want 2", len(d))
	}
	if d := s.diffsFrom(origin, 0, 3); d != nil {
		t.Fatal("a serial the journal never saw has differences")
	}
}

func texts(rrs []dns.RR) string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestJournalBounded: the journal keeps at most maxJournalSteps steps; a
// client older than that gets no differences (so the whole zone).
func TestJournalBounded(t *testing.T) {
	origin := "j.test."
	zones := authority.NewServer(mustZone(t, origin, 1, 5))
	s, err := New([]*Zone{{Origin: origin, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}}, Options{Zones: zones})
	if err != nil {
		t.Fatal(err)
	}
	last := uint32(maxJournalSteps + 5)
	for serial := uint32(2); serial <= last; serial++ {
		zones.Set(mustZone(t, origin, serial, 5))
		s.Check(context.Background())
	}
	if n := len(s.journals[origin].diffs); n != maxJournalSteps {
		t.Fatalf("%d steps kept, want %d", n, maxJournalSteps)
	}
	if d := s.diffsFrom(origin, 1, last); d != nil {
		t.Fatal("differences from a version older than the journal")
	}
	if d := s.diffsFrom(origin, last-maxJournalSteps, last); len(d) != maxJournalSteps {
		t.Fatalf("from the oldest kept: %d steps", len(d))
	}
	if d := s.diffsFrom(origin, last-1, last); len(d) != 1 || len(d[0].del) != 1 || len(d[0].add) != 1 {
		t.Fatalf("last step: %+v (want www out and in)", d)
	}
}
