package resolver_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
)

// serveZone runs a tiny authoritative server for the given records on
// addr:53 and returns a stop function.
func serveZone(addr string, records ...string) func() {
	var rrs []dns.RR
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			log.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := dns.CanonicalName(q.Question[0].Name)
		for _, rr := range rrs {
			h := rr.Header()
			switch {
			case h.Rrtype == dns.TypeNS && dns.IsSubDomain(h.Name, name):
				m.Ns = append(m.Ns, rr) // a referral
			case h.Name == name && h.Rrtype == q.Question[0].Qtype:
				m.Authoritative = true
				m.Answer = append(m.Answer, rr)
			}
		}
		if len(m.Ns) > 0 {
			for _, rr := range rrs {
				if rr.Header().Rrtype == dns.TypeA && rr.Header().Name != name {
					m.Extra = append(m.Extra, rr) // glue
				}
			}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", addr+":53")
	if err != nil {
		log.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: handler}
	go func() { _ = srv.ActivateAndServe() }()
	return func() { _ = srv.Shutdown() }
}

func ExampleResolver_Resolve() {
	// A private root on loopback delegating example. to a second server.
	stopRoot := serveZone("127.30.200.1",
		"example. 3600 IN NS ns.example.",
		"ns.example. 3600 IN A 127.30.200.2")
	defer stopRoot()
	stopZone := serveZone("127.30.200.2",
		"www.example. 300 IN A 192.0.2.1")
	defer stopZone()

	cfg := resolver.DefaultConfig()
	cfg.Hints = &roothints.Hints{
		NS:    []*dns.NS{{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600}, Ns: "root."}},
		Addrs: map[string][]netip.Addr{"root.": {netip.MustParseAddr("127.30.200.1")}},
	}
	cfg.DisableUpstreamIPv6 = true
	r, err := resolver.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	res, err := r.Resolve(context.Background(), "www.example.", dns.TypeA)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dns.RcodeToString[res.Rcode], res.Security)
	for _, rr := range res.Answer {
		fmt.Println(rr.(*dns.A).A)
	}
	// Output:
	// NOERROR indeterminate
	// 192.0.2.1
}
