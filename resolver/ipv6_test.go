package resolver

import (
	"net"
	"strconv"
	"testing"

	"github.com/miekg/dns"
)

// TestIPv6Servers puts the TLD on [::1] (AAAA glue only). All servers share
// one free port, set as UpstreamPort, since ::1 is a single address.
func TestIPv6Servers(t *testing.T) {
	probe, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	port := strconv.Itoa(probe.LocalAddr().(*net.UDPAddr).Port)
	probe.Close()
	start := func(addr string, z *testZone) *testServer {
		s, err := listenServerPort(addr, port, z)
		if err != nil {
			t.Skipf("port %s not free everywhere: %v", port, err)
		}
		t.Cleanup(s.stop)
		return s
	}
	p := "127.30.120."
	start(p+"1", zone(t, ".",
		". SOA a.root.test. h.root.test. 1 3600 600 86400 3600", ". NS a.root.test.",
		"test. NS ns6.nic.test.", "ns6.nic.test. AAAA ::1"))
	tld := start("::1", zone(t, "test.",
		"test. SOA ns6.nic.test. h.nic.test. 1 3600 600 86400 600", "test. NS ns6.nic.test.", "ns6.nic.test. AAAA ::1",
		"example.test. NS ns1.example.test.", "ns1.example.test. A "+p+"3"))
	start(p+"3", zone(t, "example.test.",
		"example.test. SOA ns1.example.test. h.example.test. 1 3600 600 86400 60", "example.test. NS ns1.example.test.",
		"www.example.test. A 192.0.2.80"))
	pn, _ := strconv.Atoi(port)
	for _, v6 := range []bool{true, false} {
		r := newTestResolver(t, hintsFor(p+"1"), func(c *Config) {
			c.DisableUpstreamIPv6 = !v6
			c.UpstreamPort = uint16(pn)
		})
		tld.reset()
		res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
		if v6 {
			if err != nil || len(answerAddrs(res)) != 1 || tld.count() == 0 {
				t.Fatalf("IPv6 on: %v %v, tld queries %d", res.Answer, err, tld.count())
			}
			continue
		}
		if err == nil || tld.count() != 0 {
			t.Fatalf("IPv6 off: rcode %d, tld queries %d: an IPv6 server was queried", res.Rcode, tld.count())
		}
	}
}
