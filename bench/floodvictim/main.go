// Command floodvictim is the second client of bench/flood.sh: while a
// random-subdomain flood runs, it asks a few names that are already cached,
// at a steady rate from its own address, and reports how many were
// answered and the latency percentiles, one JSON line on exit.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "127.76.0.2:53", "resolver `ADDR:PORT`")
	local := flag.String("local", "127.76.2.1", "source `ADDR` of the queries")
	rate := flag.Int("rate", 200, "queries per second")
	dur := flag.Duration("duration", 30*time.Second, "how long to ask")
	timeout := flag.Duration("timeout", time.Second, "how long a query may take before it counts as lost")
	flag.Parse()
	names := flag.Args()
	if len(names) == 0 {
		log.Fatal("floodvictim: give the cached names to ask as arguments")
	}
	laddr, err := net.ResolveUDPAddr("udp", *local+":0")
	if err != nil {
		log.Fatal(err)
	}
	c := &dns.Client{Net: "udp", Timeout: *timeout, Dialer: &net.Dialer{LocalAddr: laddr}}
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	end := time.Now().Add(*dur)
	var lat []time.Duration
	sent, answered := 0, 0
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(names[i%len(names)]), dns.TypeA)
		sent++
		m, rtt, err := c.Exchange(q, *server)
		if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
			continue
		}
		answered++
		lat = append(lat, rtt)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	out := map[string]any{"sent": sent, "answered": answered, "answered_pct": 100 * float64(answered) / float64(max(sent, 1)),
		"p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1)}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
