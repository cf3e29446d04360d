package authority

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/do53test"
)

// TestServeOverDo53 serves a signed zone with the real Do53 server on
// 127.0.0.1 ephemeral ports and queries it over UDP and TCP: a large answer
// is truncated over UDP and whole over TCP.
func TestServeOverDo53(t *testing.T) {
	tz := makeTestZone(t, testOrigin, testZoneText, nsecZone)
	srv := do53test.Start(t, "127.0.0.1:0", NewServer(tz.zone))
	var udpAddr, tcpAddr string
	for _, a := range srv.Addrs() {
		switch a.(type) {
		case *net.UDPAddr:
			udpAddr = a.String()
		case *net.TCPAddr:
			tcpAddr = a.String()
		}
	}
	exchange := func(network, addr string, q *dns.Msg) *dns.Msg {
		t.Helper()
		c := &dns.Client{Net: network, Timeout: 3 * time.Second, UDPSize: 65535}
		m, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s exchange: %v", network, err)
		}
		if m.Id != q.Id {
			t.Fatalf("id mismatch")
		}
		return m
	}

	// Small answers over both transports, with and without EDNS.
	for _, network := range []string{"udp", "tcp"} {
		addr := udpAddr
		if network == "tcp" {
			addr = tcpAddr
		}
		for _, do := range []bool{false, true} {
			m := exchange(network, addr, query("www.example.", dns.TypeA, do))
			if m.Rcode != dns.RcodeSuccess || !m.Authoritative || m.Truncated || findType(m.Answer, dns.TypeA) == nil {
				t.Errorf("%s do=%v: %v", network, do, m)
			}
			if do {
				verifySignatures(t, tz, m)
			}
		}
		m := exchange(network, addr, query("nope.example.", dns.TypeA, true))
		if m.Rcode != dns.RcodeNameError {
			t.Errorf("%s NXDOMAIN: %v", network, m)
		}
		verifySignatures(t, tz, m)
		checkProof(t, tz, "nope.example.", m, expect{kind: "nxdomain"})
	}

	// The large TXT RRset (about 1.7 KB, more with its RRSIG) does not fit
	// 512 octets (no EDNS) nor 1232 (EDNS): TC over UDP...
	for _, do := range []bool{false, true} {
		q := query("big.example.", dns.TypeTXT, do)
		m := exchange("udp", udpAddr, q)
		if !m.Truncated {
			t.Errorf("UDP do=%v: large answer not truncated (%d answers)", do, len(m.Answer))
		}
		if do && m.IsEdns0() == nil {
			t.Errorf("truncated EDNS answer lost its OPT")
		}
	}
	// ...and whole over TCP.
	m := exchange("tcp", tcpAddr, query("big.example.", dns.TypeTXT, true))
	if m.Truncated || countType(m.Answer, dns.TypeTXT) != 4 || countType(m.Answer, dns.TypeRRSIG) != 1 {
		t.Fatalf("TCP large answer: %v", m)
	}
	verifySignatures(t, tz, m)
}

func countType(rrs []dns.RR, t uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			n++
		}
	}
	return n
}
