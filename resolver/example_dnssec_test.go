package resolver_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
)

// The README's embedding example with DNSSEC on, against the lab (a signed
// simulated internet on loopback, here on 127.85.0.0/16) instead of the
// real root: the answer is validated from the lab's root anchor, and the A
// records are read without a type switch.
func ExampleResult_Records() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	world, err := lab.Start(ctx, lab.Config{AddrBase: netip.MustParseAddr("127.85.0.0"), BulkHosts: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer world.Close()
	var hints strings.Builder
	for _, rr := range world.RootHints() {
		hints.WriteString(rr.String() + "\n")
	}

	cfg := resolver.DefaultConfig()
	if cfg.Hints, err = roothints.ParseHints(strings.NewReader(hints.String()), "lab"); err != nil {
		log.Fatal(err)
	}
	cfg.DisableUpstreamIPv6 = true                                     // the lab is IPv4
	cfg.DNSSEC = &resolver.DNSSECConfig{Anchors: world.TrustAnchors()} // nil Anchors: the IANA root's
	r, err := resolver.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close() // ends the background work (re-priming, RFC 5011 refreshes)
	res, err := r.Resolve(ctx, "www.secure13.test.", dns.TypeA)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Security)
	for _, rr := range res.Records(dns.TypeA) {
		fmt.Println(rr.(*dns.A).A)
	}
	fmt.Println(len(res.Signatures()) > 0)
	// Output:
	// secure
	// 127.0.2.13
	// true
}
