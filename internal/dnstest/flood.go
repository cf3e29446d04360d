package dnstest

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FloodResult counts what a flooding UDP source got back.
type FloodResult struct {
	// Sent queries, and Responses of any kind that parsed.
	Sent, Responses int
	// Of the responses: BADCOOKIE; truncated without an answer (a rate
	// limiter's slip); with an answer record.
	BadCookie, Truncated, Answered int
}

// FloodUDP sends n queries from src (ADDR:PORT, port 0 for any) to dst over
// d, evenly spaced (query(i) is the i-th), and counts the responses that
// arrive until 300 ms after the last. For the rate-limit tests of
// transport and cmd/sextant.
func FloodUDP(t testing.TB, src, dst string, n int, d time.Duration, query func(i int) *dns.Msg) FloodResult {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var res FloodResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:k]) != nil {
				continue
			}
			res.Responses++
			switch {
			case r.Rcode == dns.RcodeBadCookie:
				res.BadCookie++
			case r.Truncated && len(r.Answer) == 0:
				res.Truncated++
			case len(r.Answer) > 0:
				res.Answered++
			}
		}
	}()
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(d * time.Duration(i) / time.Duration(n))); wait > 0 {
			time.Sleep(wait)
		}
		wire, err := query(i).Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(wire); err != nil {
			t.Fatal(err)
		}
		res.Sent++
	}
	<-done
	return res
}
