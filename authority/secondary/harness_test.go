package secondary

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

// logRecorder keeps every log record, so tests can see what was reported
// and when.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRec
	t    *testing.T
}

type logRec struct {
	at   time.Time
	msg  string
	text string // message and attributes
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, logRec{at: time.Now(), msg: r.Message, text: b.String()})
	l.mu.Unlock()
	if testing.Verbose() {
		l.t.Logf("log: %s", b.String())
	}
	return nil
}

// find returns the last record whose text holds every part, after since.
func (l *logRecorder) find(since time.Time, parts ...string) (logRec, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.recs) - 1; i >= 0; i-- {
		r := l.recs[i]
		if r.at.Before(since) {
			break
		}
		ok := true
		for _, p := range parts {
			if !strings.Contains(r.text, p) {
				ok = false
				break
			}
		}
		if ok {
			return r, true
		}
	}
	return logRec{}, false
}

// waitLog waits for a log record holding every part.
func (l *logRecorder) waitLog(t *testing.T, since time.Time, within time.Duration, parts ...string) logRec {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if r, ok := l.find(since, parts...); ok {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		t.Logf("log: %s", r.text)
	}
	t.Fatalf("no log record with %q within %v", parts, within)
	return logRec{}
}

// secondaryUnderTest is a Manager serving into its own authority.Server.
type secondaryUnderTest struct {
	srv   *authority.Server
	m     *Manager
	log   *logRecorder
	clock *clock.Manual
}

type sutOptions struct {
	stateDir   string
	notifyAddr string // "" for no NOTIFY listener
	limits     Limits
	clock      *clock.Manual
	firstRetry time.Duration
}

func startSecondary(t *testing.T, zone *Zone, o sutOptions) *secondaryUnderTest {
	t.Helper()
	rec := &logRecorder{t: t}
	s := &secondaryUnderTest{srv: authority.NewServer(), log: rec, clock: o.clock}
	var clk clock.Clock = clock.System{}
	if o.clock != nil {
		clk = o.clock
	}
	m, err := New([]*Zone{zone}, Options{
		Server: s.srv, Clock: clk, Log: slog.New(rec), StateDir: o.stateDir, Limits: o.limits,
		Timeout: 2 * time.Second, FirstRetry: o.firstRetry, MinInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.m = m
	if o.notifyAddr != "" {
		l, err := m.ListenNotify(o.notifyAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		m.Wait() // before t.TempDir's removal: the loops write the state directory
	})
	m.Start(ctx)
	return s
}

// ask answers a query from the served zones.
func (s *secondaryUnderTest) ask(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(1232, false)
	return s.srv.Answer(q)
}

// serial is the served SOA serial, or -1 when the zone does not answer.
func (s *secondaryUnderTest) serial(zone string) int64 {
	r := s.ask(zone, dns.TypeSOA)
	if r == nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return -1
	}
	if soa, ok := r.Answer[0].(*dns.SOA); ok {
		return int64(soa.Serial)
	}
	return -1
}

// waitSerial waits until the zone answers with serial want and returns when.
func (s *secondaryUnderTest) waitSerial(t *testing.T, zone string, want uint32, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if s.serial(zone) == int64(want) {
			return time.Now()
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("zone %s: serial %d not served within %v (serving %d; status %+v)", zone, want, within, s.serial(zone), s.m.Status())
	return time.Time{}
}

// testZone is a small zone's text at serial with n extra A records; its
// SOA refresh is an hour, so that only a NOTIFY makes the secondary look
// again within a test.
func testZone(origin string, serial uint32, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 300\n", origin)
	fmt.Fprintf(&b, "@ IN SOA ns1 hostmaster %d 3600 600 86400 300\n", serial)
	b.WriteString("@ IN NS ns1\n@ IN NS ns2\nns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\n")
	fmt.Fprintf(&b, "www IN A 192.0.2.%d\n", serial%250+1)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "host%d IN A 198.51.%d.%d\n", i, i/250%250, i%250+1)
	}
	return b.String()
}

// mustAddr parses an ADDR:PORT.
func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// waitAnswers waits until a DNS server at addr answers the zone's SOA.
func waitAnswers(t *testing.T, addr, zone string, within time.Duration) {
	t.Helper()
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeSOA)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if r, _, err := c.Exchange(q, addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s does not answer for %s within %v", addr, zone, within)
}

const testSecret = "c2V4dGFudC1zZWNvbmRhcnktdGVzdC1rZXktMzItYnl0ZXM=" // 32 bytes
