package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
)

// labAddrBase is this package's block for its lab (ARCHITECTURE.md).
var labAddrBase = netip.MustParseAddr("127.34.0.0")

// startLab starts the simulated internet and a resolver on its root.
func startLab(t testing.TB) (*lab.Lab, *Resolver) {
	t.Helper()
	l := labtest.Start(t, lab.Config{AddrBase: labAddrBase, Clock: clock.System{}, BulkHosts: -1, SlowDelay: 100 * time.Millisecond})
	return l, newLabResolver(t, l, nil)
}

// newLabResolver makes a resolver (default configuration, IPv4) on the
// lab's root hints.
func newLabResolver(t testing.TB, l *lab.Lab, mod func(*Config)) *Resolver {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Hints = l.Hints()
	cfg.DisableUpstreamIPv6 = true
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLab(t *testing.T) {
	l, r := startLab(t)
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		addr  string // expected final A, if any
		ede   int    // expected EDE on SERVFAIL, -1 for any
	}{
		{"www.secure13.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.13", 0},
		{"www.secure8.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.8", 0},
		{"www.glueless.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.22", 0},
		{"www.deadns.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.23", 0},
		{"www.refused.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.24", 0},
		{"www.slow.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.25", 0},
		{"chain.secure13.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.3", 0},
		{"www.dname.secure13.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.15", 0},
		{"host.deep.ent.secure13.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.131", 0},
		{"a.b.ent.nsec3.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.33", 0},
		{"x.wild.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.20", 0},
		{"nope.secure13.test.", dns.TypeA, dns.RcodeNameError, "", 0},
		{"www.secure13.test.", dns.TypeMX, dns.RcodeSuccess, "", 0},
		{"big.secure13.test.", dns.TypeTXT, dns.RcodeSuccess, "", 0},
		{"www.insecure.test.", dns.TypeA, dns.RcodeSuccess, "127.0.2.5", 0},
		{"www.lame.test.", dns.TypeA, dns.RcodeServerFailure, "", int(dns.ExtendedErrorCodeNoReachableAuthority)},
		{"loop.secure13.test.", dns.TypeA, dns.RcodeServerFailure, "", -1},
	} {
		t.Run(tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
			start := time.Now()
			res, err := r.Resolve(ctxT(t), tc.name, tc.qtype)
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("took %v", d)
			}
			if rc := rcodeOf(res, err); rc != tc.rcode {
				t.Fatalf("rcode %s err %v, want %s", dns.RcodeToString[rc], err, dns.RcodeToString[tc.rcode])
			}
			if tc.addr != "" {
				got := answerAddrs(res)
				if len(got) == 0 || got[len(got)-1] != tc.addr {
					t.Fatalf("answer %v, want %s", res.Answer, tc.addr)
				}
			}
			if tc.rcode == dns.RcodeServerFailure {
				var re *Error
				if !errors.As(err, &re) || (tc.ede >= 0 && int(re.EDE) != tc.ede) {
					t.Fatalf("err %v, want EDE %d", err, tc.ede)
				}
			}
			if tc.qtype == dns.TypeTXT && len(filterDNSSEC(res.Answer, false, 0)) != lab.BigTXTCount {
				t.Fatalf("%d TXT records, want %d", len(res.Answer), lab.BigTXTCount)
			}
		})
	}
	// A wildcard answer keeps its NSEC proof for the validator, fresh and
	// from the cache.
	for i := 0; i < 2; i++ {
		res, err := r.Resolve(ctxT(t), "y.wild.test.", dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		nsec := 0
		for _, rr := range res.Authority {
			if rr.Header().Rrtype == dns.TypeNSEC {
				nsec++
			}
		}
		if nsec == 0 {
			t.Fatalf("wildcard answer (pass %d) without its NSEC proof: %v", i, res.Authority)
		}
	}
	if n := l.Server(lab.HostDead).Queries(); n > 1 {
		t.Errorf("dead server got %d queries, want at most 1", n)
	}
}

// TestLabConcurrent resolves a mix of names from many goroutines at once
// (run with -race): shared caches, selection state and flights must hold.
func TestLabConcurrent(t *testing.T) {
	_, r := startLab(t)
	names := []struct{ name, addr string }{
		{"www.secure13.test.", "127.0.2.13"}, {"www.secure8.test.", "127.0.2.8"},
		{"www.glueless.test.", "127.0.2.22"}, {"www.deadns.test.", "127.0.2.23"},
		{"www.refused.test.", "127.0.2.24"}, {"chain.secure13.test.", "127.0.2.3"},
		{"www.dname.secure13.test.", "127.0.2.15"}, {"x.wild.test.", "127.0.2.20"},
		{"www.nsec3.test.", "127.0.2.3"}, {"www.insecure.test.", "127.0.2.5"},
	}
	const workers, rounds = 16, 10
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				n := names[(w+i)%len(names)]
				res, err := r.Resolve(ctxT(t), n.name, dns.TypeA)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", n.name, err)
					continue
				}
				if got := answerAddrs(res); len(got) == 0 || got[len(got)-1] != n.addr {
					errs <- fmt.Errorf("%s: answer %v", n.name, res.Answer)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkLabColdResolution resolves a name with an empty cache each
// time, through the lab's root, TLD and zone servers, and reports the
// upstream queries per resolution.
func BenchmarkLabColdResolution(b *testing.B) {
	for _, qmin := range []bool{false, true} {
		b.Run(fmt.Sprintf("qmin=%v", qmin), func(b *testing.B) {
			l, _ := startLab(b)
			var total uint64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r := newLabResolver(b, l, func(c *Config) { c.QNameMinimisation = qmin })
				before := labQueries(l)
				b.StartTimer()
				if _, err := r.Resolve(context.Background(), "host.deep.ent.secure13.test.", dns.TypeA); err != nil {
					b.Fatal(err)
				}
				total += labQueries(l) - before
			}
			b.ReportMetric(float64(total)/float64(b.N), "queries/op")
		})
	}
}

func labQueries(l *lab.Lab) uint64 {
	var n uint64
	for _, s := range l.Servers() {
		n += s.Queries()
	}
	return n
}
