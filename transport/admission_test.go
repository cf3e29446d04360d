package transport

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// testAdmission is an admission on a clock the test moves.
func testAdmission(t *testing.T, max int, l ConnLimits, idle time.Duration) (*admission, *time.Duration) {
	t.Helper()
	a, err := newAdmission("test", max, l, idle, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := new(time.Duration)
	a.now = func() time.Duration { return *clock }
	return a, clock
}

// fakeConn is an admitted connection whose closing is recorded.
type fakeConn struct {
	name   string
	slot   *connSlot
	closed bool
}

func admitFake(a *admission, name, client string) *fakeConn {
	c := &fakeConn{name: name}
	c.slot = a.admit(netip.MustParseAddr(client), func() { c.closed = true })
	return c
}

// TestConnLimitsDefaults: the defaults leave an ordinary client far from
// any limit, yet keep one client, and one network, well below the cap,
// and the reserve and high-water mark inside it.
func TestConnLimitsDefaults(t *testing.T) {
	const max = 1024
	l, err := ConnLimits{}.resolve(max)
	if err != nil {
		t.Fatal(err)
	}
	want := ConnLimits{PerClient: 64, PerPrefix: 256, HighWater: 768, PressureIdle: 2 * time.Second,
		EvictMinIdle: 500 * time.Millisecond, Reserve: 64}
	if l != want {
		t.Fatalf("defaults for %d connections: %+v, want %+v", max, l, want)
	}
	switch {
	case l.PerClient < 16:
		t.Errorf("PerClient %d: a NAT of a few stubs would hit it", l.PerClient)
	case l.PerPrefix <= l.PerClient || l.PerPrefix > max/2:
		t.Errorf("PerPrefix %d: want above PerClient and at most half the cap", l.PerPrefix)
	case l.HighWater >= max || l.HighWater < max/2:
		t.Errorf("HighWater %d of %d", l.HighWater, max)
	case l.Reserve < 1 || l.Reserve > max/8:
		t.Errorf("Reserve %d of %d", l.Reserve, max)
	case l.EvictMinIdle > l.PressureIdle:
		t.Errorf("EvictMinIdle %v above PressureIdle %v", l.EvictMinIdle, l.PressureIdle)
	}
	// Each front end takes the defaults when its config leaves them out.
	s, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: answerA(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if s.tcp.adm.limits != want || s.tcp.adm.max != max {
		t.Errorf("do53 tcp: %d %+v", s.tcp.adm.max, s.tcp.adm.limits)
	}
	// Small caps shrink the shares with them.
	small, err := ConnLimits{}.resolve(2)
	if err != nil || small.PerClient != 2 || small.PerPrefix != 2 || small.Reserve != 0 {
		t.Errorf("defaults for 2 connections: %+v %v", small, err)
	}
	for _, bad := range []ConnLimits{{PerClient: -1}, {Reserve: 2}, {PressureIdle: -time.Second}} {
		if _, err := bad.resolve(2); err == nil {
			t.Errorf("%+v accepted for a cap of 2", bad)
		}
	}
}

// TestAdmissionShares: one client is held to PerClient, one /24 or /56 to
// PerPrefix, whatever room is left under the cap; other networks still
// get in.
func TestAdmissionShares(t *testing.T) {
	a, _ := testAdmission(t, 100, ConnLimits{PerClient: 3, PerPrefix: 5, EvictMinIdle: time.Hour, PressureIdle: time.Hour}, 0)
	cases := []struct {
		client string
		admit  bool
	}{
		{"192.0.2.1", true}, {"192.0.2.1", true}, {"192.0.2.1", true},
		{"192.0.2.1", false}, // per client
		{"192.0.2.2", true}, {"192.0.2.3", true},
		{"192.0.2.4", false},        // per /24
		{"192.0.3.4", true},         // next /24
		{"::ffff:192.0.2.9", false}, // mapped IPv4 counts as IPv4
		{"2001:db8:0:1::1", true}, {"2001:db8:0:2::1", true}, {"2001:db8:0:ff::1", true},
		{"2001:db8:0:fe::2", true}, {"2001:db8:0:fd::3", true},
		{"2001:db8:0:fc::4", false}, // per /56
		{"2001:db8:0:100::1", true}, // next /56
	}
	for i, tc := range cases {
		c := admitFake(a, fmt.Sprint(i), tc.client)
		if got := c.slot != nil; got != tc.admit {
			t.Errorf("connection %d from %s: admitted %v, want %v", i, tc.client, got, tc.admit)
		}
	}
	st := a.stats()
	if st.RefusedClient != 1 || st.RefusedPrefix != 3 || st.RefusedTotal != 0 || st.Open != 12 {
		t.Errorf("stats %+v", st)
	}
}

// TestAdmissionEvictsLongestIdle: at the cap a new client's connection
// closes the connection idle the longest; one with a query in flight is
// never closed, whatever its age, and a recent query resets the clock.
// (Every client here has a network of its own.)
func TestAdmissionEvictsLongestIdle(t *testing.T) {
	a, clock := testAdmission(t, 4, ConnLimits{PerClient: 4, PerPrefix: 4, HighWater: 4, Reserve: 1,
		EvictMinIdle: time.Second, PressureIdle: time.Hour}, 0)
	busy := admitFake(a, "busy", "10.0.1.1") // oldest, but has a query in flight
	*clock += time.Second
	old := admitFake(a, "old", "10.0.2.1")
	*clock += time.Second
	refreshed := admitFake(a, "refreshed", "10.0.3.1")
	*clock += time.Second
	if !busy.slot.begin() {
		t.Fatal("begin on an open connection failed")
	}
	*clock += time.Second
	refreshed.slot.begin() // a query now: its idle clock restarts
	refreshed.slot.end()
	*clock += 2 * time.Second
	// Three open and a newcomer takes the reserved slot: nothing closed.
	first := admitFake(a, "first", "10.0.4.1")
	if first.slot == nil || old.closed || refreshed.closed {
		t.Fatal("a newcomer did not get the reserved slot, or closed a connection for it")
	}
	// Full: another newcomer closes the longest idle, "old" (5s), not
	// "refreshed" (2s) nor "first" (0s), and never "busy".
	newcomer := admitFake(a, "newcomer", "10.0.5.1")
	if newcomer.slot == nil || !old.closed || refreshed.closed || first.closed || busy.closed {
		t.Fatalf("newcomer admitted %v; closed old %v refreshed %v first %v busy %v",
			newcomer.slot != nil, old.closed, refreshed.closed, first.closed, busy.closed)
	}
	// The next closes "refreshed" (2s); then only connections idle for
	// less than EvictMinIdle are left, and a newcomer is refused.
	if c := admitFake(a, "", "10.0.6.1"); c.slot == nil || !refreshed.closed || first.closed || newcomer.closed {
		t.Fatalf("admitted %v; closed refreshed %v first %v newcomer %v", c.slot != nil, refreshed.closed, first.closed, newcomer.closed)
	}
	if c := admitFake(a, "", "10.0.7.1"); c.slot != nil || first.closed || newcomer.closed || busy.closed {
		t.Fatalf("admitted %v with no connection idle for EvictMinIdle", c.slot != nil)
	}
	// A client already connected trades in its own idle connection.
	*clock += time.Millisecond
	if c := admitFake(a, "", "10.0.4.1"); c.slot == nil || !first.closed || newcomer.closed || busy.closed {
		t.Fatalf("a client's second connection: admitted %v, its first closed %v", c.slot != nil, first.closed)
	}
	st := a.stats()
	if st.Evicted != 3 || st.RefusedTotal != 1 || st.Open != 4 {
		t.Errorf("stats %+v", st)
	}
	// A query cannot start on a connection chosen for closing.
	if old.slot.begin() {
		t.Error("begin succeeded on an evicted connection")
	}
}

// TestAdmissionPressureIdle: above HighWater, a new connection closes one
// idle for PressureIdle even though the cap is not reached.
func TestAdmissionPressureIdle(t *testing.T) {
	a, clock := testAdmission(t, 10, ConnLimits{HighWater: 2, PressureIdle: 3 * time.Second}, 0)
	first := admitFake(a, "first", "192.0.2.1")
	admitFake(a, "second", "192.0.2.2")
	*clock += 2 * time.Second
	admitFake(a, "third", "192.0.2.3")
	if first.closed {
		t.Fatal("closed after 2s idle; PressureIdle is 3s")
	}
	*clock += 2 * time.Second
	admitFake(a, "fourth", "192.0.2.4")
	if !first.closed {
		t.Fatal("not closed after 4s idle above the high-water mark")
	}
	if st := a.stats(); st.Open != 3 || st.Evicted != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestAdmissionReserve: clients with connections stop at cap - Reserve
// (past it a client can only trade in one of its own idle connections);
// the rest is for clients with none.
func TestAdmissionReserve(t *testing.T) {
	a, _ := testAdmission(t, 6, ConnLimits{PerClient: 6, PerPrefix: 6, Reserve: 2, EvictMinIdle: time.Hour, PressureIdle: time.Hour}, 0)
	var first []*fakeConn
	for i := range 4 {
		c := admitFake(a, "", "192.0.2.1")
		if c.slot == nil {
			t.Fatalf("connection %d refused", i)
		}
		first = append(first, c)
	}
	if c := admitFake(a, "", "192.0.2.1"); c.slot == nil || !first[0].closed || a.stats().Open != 4 {
		t.Fatalf("a client at cap - Reserve: admitted %v, its longest-idle closed %v, %d open; want a trade",
			c.slot != nil, first[0].closed, a.stats().Open)
	}
	for _, client := range []string{"192.0.2.2", "192.0.2.3"} {
		if c := admitFake(a, "", client); c.slot == nil {
			t.Fatalf("first connection of %s refused", client)
		}
	}
	if st := a.stats(); st.Open != 6 || st.Evicted != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestAdmissionIdleTimer: with an idle timeout, a connection with no
// query for that long is closed, whatever else keeps its transport alive;
// queries keep it open.
func TestAdmissionIdleTimer(t *testing.T) {
	a, err := newAdmission("test", 10, ConnLimits{}, 150*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan string, 2)
	quiet := a.admit(netip.MustParseAddr("192.0.2.1"), func() { closed <- "quiet" })
	active := a.admit(netip.MustParseAddr("192.0.2.2"), func() { closed <- "active" })
	defer active.release()
	stop := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(stop) {
		active.begin()
		active.end()
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case who := <-closed:
		if who != "quiet" {
			t.Fatalf("%s closed", who)
		}
	default:
		t.Fatal("the quiet connection was not closed after 500ms")
	}
	if len(closed) != 0 {
		t.Fatal("the active connection was closed too")
	}
	if st := a.stats(); st.IdleClosed != 1 || st.Open != 1 {
		t.Errorf("stats %+v", st)
	}
	quiet.release() // a second release is harmless
}

// TestAdmissionFairShare: at the cap, with every connection too recently
// used to close by age, a client from a network holding fewer
// connections closes an idle one of the biggest network; a client of the
// biggest network is refused rather than closing a smaller network's,
// even one idle for EvictMinIdle.
func TestAdmissionFairShare(t *testing.T) {
	a, clock := testAdmission(t, 4, ConnLimits{PerClient: 4, PerPrefix: 4, Reserve: 1, EvictMinIdle: time.Minute, PressureIdle: time.Hour}, 0)
	var big []*fakeConn
	for i := range 3 {
		big = append(big, admitFake(a, "", fmt.Sprintf("192.0.2.%d", i+1)))
		*clock += time.Second
	}
	small := admitFake(a, "small", "198.51.100.1")
	*clock += 2 * time.Hour / 3 // below PressureIdle, above EvictMinIdle
	if c := admitFake(a, "", "203.0.113.1"); c.slot == nil || !big[0].closed || small.closed {
		t.Fatalf("a newcomer's network: admitted %v; closed the biggest network's oldest %v, the small one %v",
			c.slot != nil, big[0].closed, small.closed)
	}
	if c := admitFake(a, "", "192.0.2.200"); c.slot != nil || small.closed {
		t.Fatalf("the biggest network's newcomer: admitted %v, closed a smaller network's %v", c.slot != nil, small.closed)
	}
	if st := a.stats(); st.Evicted != 1 || st.RefusedTotal != 1 || st.Open != 4 {
		t.Errorf("stats %+v", st)
	}
}

// TestAdmissionLogsRarely: refusals are counted each, but logged at most
// once per limitLogEvery, with the reason.
func TestAdmissionLogsRarely(t *testing.T) {
	var buf bytes.Buffer
	a, err := newAdmission("test", 1, ConnLimits{}, 0, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := new(time.Duration)
	a.now = func() time.Duration { return *clock }
	admitFake(a, "", "192.0.2.1")
	for range 100 {
		admitFake(a, "", "192.0.2.1")
	}
	*clock += limitLogEvery
	admitFake(a, "", "192.0.2.1")
	if n := strings.Count(buf.String(), "connection limit reached"); n != 2 {
		t.Errorf("%d log lines for 101 refusals over %v, want 2:\n%s", n, limitLogEvery, buf.String())
	}
	if !strings.Contains(buf.String(), `why="per-client limit"`) {
		t.Errorf("log lacks the reason:\n%s", buf.String())
	}
	if st := a.stats(); st.RefusedClient != 101 {
		t.Errorf("stats %+v", st)
	}
}
