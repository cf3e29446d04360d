package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sextant-dns/sextant/lab"
)

// Loopback block of the metrics tests: the lab on 127.99.0.0/16, serve on
// 127.99.255.1 (its only allowed client), a refused client on 127.99.255.2.
const (
	metricsLabBase = "127.99.0.0"
	metricsServe   = "127.99.255.1"
	metricsRefused = "127.99.255.2"
)

// TestMetricsCountKnownQueryMix runs serve with --metrics-listen, sends a
// known mix (UDP answers and NXDOMAINs, TCP answers, a client refused by
// the ACL), and checks that /metrics parses with the Prometheus text parser
// and that its counters match the mix exactly.
func TestMetricsCountKnownQueryMix(t *testing.T) {
	l, err := lab.Start(context.Background(), lab.Config{AddrBase: netip.MustParseAddr(metricsLabBase), BulkHosts: -1})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	dir := t.TempDir()
	if err := l.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	listen := metricsServe + ":53"
	metricsAddr := metricsServe + ":9153"
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", listen, "--allow", metricsServe + "/32",
			"--root-hints", filepath.Join(dir, lab.FileRootHints),
			"--trust-anchor", filepath.Join(dir, lab.FileRootDS),
			"--metrics-listen", metricsAddr}, &stderr, &stderr)
	}()
	defer func() { cancel(); <-exit }()

	ask := func(network, src, name string, wantRcode int) {
		t.Helper()
		c := &dns.Client{Net: network, Timeout: 5 * time.Second}
		ip := net.ParseIP(src)
		if network == "tcp" {
			c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
		} else {
			c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: ip}, Timeout: 5 * time.Second}
		}
		q := new(dns.Msg).SetQuestion(name, dns.TypeA)
		q.SetEdns0(1232, true)
		r, _, err := c.Exchange(q, listen)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", network, name, err, stderr.String())
		}
		if r.Rcode != wantRcode {
			t.Fatalf("%s %s: rcode %s, want %s", network, name, dns.RcodeToString[r.Rcode], dns.RcodeToString[wantRcode])
		}
	}
	waitForDNS(t, listen, metricsServe, &stderr)
	waitForHTTP(t, "http://"+metricsAddr+"/metrics", &stderr) // opens just after the DNS listeners
	www, nx := "www."+lab.SecureAlg13, "no-such-name."+lab.SecureAlg13
	for range 5 {
		ask("udp", metricsServe, www, dns.RcodeSuccess)
	}
	for range 2 {
		ask("udp", metricsServe, nx, dns.RcodeNameError)
	}
	for range 3 {
		ask("tcp", metricsServe, www, dns.RcodeSuccess)
	}
	ask("udp", metricsRefused, www, dns.RcodeRefused)

	fams := scrape(t, "http://"+metricsAddr+"/metrics")
	// The readiness probe (waitForDNS) got one more NXDOMAIN.
	wantQueries := map[string]float64{
		"udp/NOERROR": 5, "udp/NXDOMAIN": 2 + 1, "tcp/NOERROR": 3, "udp/REFUSED": 1,
	}
	gotQueries := map[string]float64{}
	for _, m := range family(t, fams, "sextant_queries_total").GetMetric() {
		gotQueries[label(m, "transport")+"/"+label(m, "rcode")] = m.GetCounter().GetValue()
	}
	if fmt.Sprint(gotQueries) != fmt.Sprint(wantQueries) {
		t.Errorf("sextant_queries_total %v, want %v", gotQueries, wantQueries)
	}
	// Three misses (the probe, the first www and the first NXDOMAIN) went
	// to the resolver; the eight repeats were hits, sampled.
	for _, m := range family(t, fams, "sextant_answer_duration_seconds").GetMetric() {
		n := m.GetHistogram().GetSampleCount()
		switch label(m, "cache") {
		case "miss":
			if n != 3 {
				t.Errorf("miss latency count %d, want 3", n)
			}
		case "hit":
			if n > 8 {
				t.Errorf("hit latency count %d, want at most the 8 hits", n)
			}
		}
	}
	for _, m := range family(t, fams, "sextant_cache_hits_total").GetMetric() {
		if label(m, "cache") == "answers" && m.GetCounter().GetValue() != 8 {
			t.Errorf("ready-answer cache hits %v, want 8", m.GetCounter().GetValue())
		}
	}
	var secure float64
	for _, m := range family(t, fams, "sextant_validations_total").GetMetric() {
		if label(m, "state") == "secure" {
			secure += m.GetCounter().GetValue()
		}
	}
	if secure < 2 { // priming in the background may validate the root's NS too
		t.Errorf("%v secure validations, want at least the answer and the denial", secure)
	}
	var upstream float64
	for _, m := range family(t, fams, "sextant_upstream_queries_total").GetMetric() {
		upstream += m.GetCounter().GetValue()
	}
	if upstream == 0 {
		t.Error("no upstream queries counted")
	}
	if n := len(family(t, fams, "sextant_cache_entries").GetMetric()); n != 2 {
		t.Errorf("%d cache_entries series, want rrset and answers", n)
	}
	// Only /metrics is served.
	resp, err := http.Get("http://" + metricsAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET / status %d, want 404", resp.StatusCode)
	}
}

// waitForDNS waits until serve answers on addr: one NXDOMAIN for a
// special-use name (RFC 6761), answered without the network.
func waitForDNS(t *testing.T, addr, src string, stderr *syncBuffer) {
	t.Helper()
	c := &dns.Client{Timeout: time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	q := new(dns.Msg).SetQuestion("ready.invalid.", dns.TypeA)
	for range 100 {
		if _, _, err := c.Exchange(q, addr); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serve does not answer on %s\n%s", addr, stderr.String())
}

// waitForHTTP waits until url answers.
func waitForHTTP(t *testing.T, url string, stderr *syncBuffer) {
	t.Helper()
	for range 100 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing serves %s\n%s", url, stderr.String())
}

// scrape fetches and parses a /metrics page with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

func family(t *testing.T, fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no %s in /metrics", name)
	}
	return f
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
