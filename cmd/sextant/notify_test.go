package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The NOTIFY-on---listen tests use 127.88.0.0/16.

// fakePrimary serves notify.test over UDP and TCP: SOA queries and whole
// zone transfers (IXFR answered AXFR-style) of the current serial.
type fakePrimary struct {
	serial atomic.Uint32
}

func (p *fakePrimary) zone() []dns.RR {
	s := p.serial.Load()
	var rrs []dns.RR
	for _, text := range []string{
		fmt.Sprintf("notify.test. 300 IN SOA ns1.notify.test. hostmaster.notify.test. %d 3600 600 86400 300", s),
		"notify.test. 300 IN NS ns1.notify.test.",
		"ns1.notify.test. 300 IN A 192.0.2.1",
		fmt.Sprintf("www.notify.test. 300 IN A 192.0.2.%d", s),
	} {
		rr, err := dns.NewRR(text)
		if err != nil {
			panic(err)
		}
		rrs = append(rrs, rr)
	}
	return rrs
}

func (p *fakePrimary) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	zone := p.zone()
	if len(q.Question) == 1 && (q.Question[0].Qtype == dns.TypeAXFR || q.Question[0].Qtype == dns.TypeIXFR) {
		ch := make(chan *dns.Envelope, 1)
		ch <- &dns.Envelope{RR: append(zone, zone[0])}
		close(ch)
		_ = new(dns.Transfer).Out(w, q, ch)
		_ = w.Close()
		return
	}
	r := new(dns.Msg).SetReply(q)
	r.Authoritative = true
	r.Answer = zone[:1]
	_ = w.WriteMsg(r)
}

func startFakePrimary(t *testing.T, addr string) *fakePrimary {
	t.Helper()
	p := &fakePrimary{}
	p.serial.Store(1)
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: p}, {Listener: ln, Handler: p}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return p
}

// exchangeFrom sends q from src to dst over network and returns the answer.
func exchangeFrom(t *testing.T, network, src, dst string, q *dns.Msg) *dns.Msg {
	t.Helper()
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
	if network == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: local}}
	r, _, err := c.Exchange(q, dst)
	if err != nil {
		t.Fatalf("%s exchange from %s: %v", network, src, err)
	}
	return r
}

// TestServeNotifyOnListen: a NOTIFY from the primary sent to --listen
// (UDP or TCP, no --notify-listen) is acknowledged and brings the new
// serial; NOTIFYs for other zones or from other addresses are REFUSED,
// and other opcodes (UPDATE) are still NOTIMP.
func TestServeNotifyOnListen(t *testing.T) {
	const primary, listen = "127.88.0.1:5353", "127.88.0.2:5300"
	p := startFakePrimary(t, primary)
	dir := t.TempDir()
	hints := filepath.Join(dir, "root.hints")
	if err := os.WriteFile(hints, []byte(". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.88.0.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := startServe(t, listen, "--root-hints", hints, "--no-dnssec", "--log-level", "debug",
		"--state-dir", filepath.Join(dir, "state"), "--secondary", "zone=notify.test primary="+primary)

	waitFor := func(serial int) {
		t.Helper()
		want := fmt.Sprintf("192.0.2.%d", serial)
		q := new(dns.Msg).SetQuestion("www.notify.test.", dns.TypeA)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(q, listen)
			if err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == want {
				return
			}
		}
		t.Fatalf("www.notify.test is not %s\n%s", want, log.String())
	}
	waitFor(1)

	notify := func(zone string) *dns.Msg { return new(dns.Msg).SetNotify(zone) }
	for i, network := range []string{"udp", "tcp"} {
		serial := 2 + i
		p.serial.Store(uint32(serial))
		r := exchangeFrom(t, network, "127.88.0.1", listen, notify("notify.test."))
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.Opcode != dns.OpcodeNotify {
			t.Fatalf("%s NOTIFY from the primary: %v", network, r)
		}
		waitFor(serial) // the SOA refresh is an hour away: only the NOTIFY brings it
	}

	cases := []struct {
		name      string
		src       string
		q         *dns.Msg
		wantRcode int
	}{
		{"NOTIFY for a zone not kept here", "127.88.0.1", notify("other.test."), dns.RcodeRefused},
		{"NOTIFY from a stranger", "127.88.0.3", notify("notify.test."), dns.RcodeRefused},
		{"UPDATE", "127.88.0.1", func() *dns.Msg {
			m := new(dns.Msg).SetUpdate("notify.test.")
			rr, err := dns.NewRR("x.notify.test. 300 IN A 192.0.2.99")
			if err != nil {
				t.Fatal(err)
			}
			m.Insert([]dns.RR{rr})
			return m
		}(), dns.RcodeNotImplemented},
	}
	for _, tc := range cases {
		for _, network := range []string{"udp", "tcp"} {
			if r := exchangeFrom(t, network, tc.src, listen, tc.q); r.Rcode != tc.wantRcode {
				t.Errorf("%s over %s: %s, want %s", tc.name, network, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
			}
		}
	}
}
