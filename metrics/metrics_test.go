package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/server"
	"github.com/sextant-dns/sextant/transport"
)

// testSources are sources with every part that needs no network.
func testSources(t *testing.T) Sources {
	t.Helper()
	r, err := resolver.New(resolver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	rl, err := transport.NewRateLimiter(transport.RateLimitConfig{Rate: 10})
	if err != nil {
		t.Fatal(err)
	}
	rrl, err := transport.NewResponseRateLimiter(transport.RRLConfig{Rate: 20})
	if err != nil {
		t.Fatal(err)
	}
	lat := server.NewLatency()
	lat.Miss.Observe(3 * time.Millisecond)
	lat.Miss.Observe(time.Minute) // past every bound: only in +Inf
	return Sources{
		Responses: transport.NewResponseCounters(),
		Latency:   lat,
		Resolver:  r,
		Answers:   cache.NewAnswers(cache.Config{}),
		RateLimit: rl,
		RRL:       rrl,
		Conns: func() []ConnStats {
			return []ConnStats{{FrontEnd: "tcp", Stats: transport.ConnStats{Open: 2, RefusedClient: 1}}}
		},
	}
}

// TestCollectorLint: every metric passes the Prometheus linter (names,
// units, _total on counters, help text).
func TestCollectorLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(NewCollector(testSources(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestCollectorValues checks a few series as the text format shows them.
func TestCollectorValues(t *testing.T) {
	c := NewCollector(testSources(t))
	want := `
# HELP sextant_connections_refused_total Connections refused, by front end and reason: "total" (at the cap), "client" or "network" (over a share).
# TYPE sextant_connections_refused_total counter
sextant_connections_refused_total{frontend="tcp",reason="client"} 1
sextant_connections_refused_total{frontend="tcp",reason="network"} 0
sextant_connections_refused_total{frontend="tcp",reason="total"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "sextant_connections_refused_total"); err != nil {
		t.Error(err)
	}
	h, err := Handler(testSources(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`sextant_answer_duration_seconds_bucket{cache="miss",le="0.005"} 1`,
		`sextant_answer_duration_seconds_bucket{cache="miss",le="+Inf"} 2`,
		`sextant_answer_duration_seconds_count{cache="hit"} 0`,
		`sextant_cache_entries{cache="answers"} 0`,
		`sextant_ratelimit_responses_total{verdict="dropped"} 0`,
		`sextant_rrl_responses_total{verdict="slipped"} 0`,
		`sextant_budget_exhausted_total{budget="resolution"} 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(rec.Body.String(), line) {
			t.Errorf("no %q in\n%s", line, rec.Body.String())
		}
	}
	if strings.Contains(rec.Body.String(), "sextant_queries_total{") {
		t.Error("series for responses never sent")
	}
}

func TestRcodeName(t *testing.T) {
	for rcode, want := range map[int]string{0: "NOERROR", 3: "NXDOMAIN", 23: "BADCOOKIE", transport.RcodeOther: "OTHER", 12: "12"} {
		if got := rcodeName(rcode); got != want {
			t.Errorf("rcodeName(%d) = %q, want %q", rcode, got, want)
		}
	}
}
