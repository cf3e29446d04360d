// Command quicload is the bench's load client for the two QUIC front ends,
// DNS over QUIC (RFC 9250) and DNS over HTTPS on HTTP/3 (RFC 8484, RFC 9114),
// which neither dnsperf nor Debian's h2load can drive (issue 16). It opens
// -conns connections with -streams queries in flight on each, asks the
// questions of a dnsperf-style file (or one -qname) round-robin for
// -duration, and prints one line: answers per second, latency percentiles
// and errors.
//
// Certificate verification is on unless -insecure is given; bench/run.sh
// passes it because the servers it starts use self-signed certificates.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// config is what one load run does.
type config struct {
	mode     string // "doq" or "doh3"
	addr     string // host:port
	path     string // DoH URL path
	method   string // DoH "post" or "get"
	conns    int
	streams  int // queries in flight per connection
	duration time.Duration
	timeout  time.Duration // per query
	queries  [][]byte      // packed queries, ID 0 (RFC 9250 4.2.1, RFC 8484 4.1)
	tls      *tls.Config
}

func main() {
	var cfg config
	var names, qname string
	var insecure bool
	flag.StringVar(&cfg.mode, "mode", "doq", "doq (DNS over QUIC) or doh3 (DNS over HTTPS on HTTP/3)")
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:853", "server host:port")
	flag.StringVar(&cfg.path, "path", "/dns-query", "DoH URL path")
	flag.StringVar(&cfg.method, "method", "post", "DoH method: post or get")
	flag.IntVar(&cfg.conns, "conns", 4, "QUIC connections")
	flag.IntVar(&cfg.streams, "streams", 16, "queries in flight per connection")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long to send")
	flag.DurationVar(&cfg.timeout, "timeout", 5*time.Second, "per-query timeout")
	flag.StringVar(&names, "d", "", "query file, one \"NAME TYPE\" per line (dnsperf format)")
	flag.StringVar(&qname, "qname", "", "ask only this name (type A) instead of -d")
	flag.BoolVar(&insecure, "insecure", false, "skip certificate verification (self-signed bench servers only)")
	flag.Parse()
	if err := setup(&cfg, names, qname, insecure); err != nil {
		fmt.Fprintln(os.Stderr, "quicload:", err)
		os.Exit(2)
	}
	res, err := run(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quicload:", err)
		os.Exit(1)
	}
	fmt.Println(res.line(cfg))
	if res.answers == 0 {
		os.Exit(1)
	}
}

// setup validates the flags and packs the queries.
func setup(cfg *config, names, qname string, insecure bool) error {
	switch {
	case cfg.mode != "doq" && cfg.mode != "doh3":
		return fmt.Errorf("-mode %q: want doq or doh3", cfg.mode)
	case cfg.method != "post" && cfg.method != "get":
		return fmt.Errorf("-method %q: want post or get", cfg.method)
	case cfg.conns < 1 || cfg.streams < 1:
		return fmt.Errorf("-conns and -streams must be at least 1")
	case (names == "") == (qname == ""):
		return fmt.Errorf("give one of -d FILE and -qname NAME")
	}
	var err error
	if qname != "" {
		cfg.queries, err = parseQueries(strings.NewReader(qname + " A"))
	} else {
		var f *os.File
		if f, err = os.Open(names); err != nil {
			return err
		}
		defer f.Close()
		cfg.queries, err = parseQueries(f)
	}
	if err != nil {
		return err
	}
	cfg.tls = &tls.Config{InsecureSkipVerify: insecure}
	return nil
}

// maxQueries bounds the query file, as dnsperf's own input is bounded by memory.
const maxQueries = 1 << 20

// parseQueries packs "NAME [TYPE]" lines (dnsperf's format; TYPE defaults
// to A; blank lines and ;comments skipped) as queries with ID 0 and RD set.
func parseQueries(r io.Reader) ([][]byte, error) {
	var out [][]byte
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], ";") {
			continue
		}
		qtype := dns.TypeA
		if len(f) > 1 {
			t, ok := dns.StringToType[strings.ToUpper(f[1])]
			if !ok {
				return nil, fmt.Errorf("line %d: unknown type %q", line, f[1])
			}
			qtype = t
		}
		if _, ok := dns.IsDomainName(f[0]); !ok {
			return nil, fmt.Errorf("line %d: bad name %q", line, f[0])
		}
		q := new(dns.Msg).SetQuestion(dns.Fqdn(f[0]), qtype)
		q.Id = 0
		wire, err := q.Pack()
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if out = append(out, wire); len(out) > maxQueries {
			return nil, fmt.Errorf("more than %d queries", maxQueries)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no queries")
	}
	return out, nil
}
