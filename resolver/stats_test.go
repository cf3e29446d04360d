package resolver

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// TestStats feeds the counters a known mix and reads it back: top servers
// by queries with the rest in UpstreamOther, timeouts told from other
// failures, validation outcomes by state and EDE, budget exhaustions.
func TestStats(t *testing.T) {
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := r.stats
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	for range 3 {
		s.exchanged(a, 10*time.Millisecond, nil)
	}
	s.exchanged(a, 0, fmt.Errorf("%s: %w", a, errTimeout))
	s.exchanged(b, 20*time.Millisecond, nil)
	s.exchanged(b, 0, errors.New("network unreachable"))
	s.exchanged(c, 0, errTimeout)
	r.sel.success(a, 10*time.Millisecond)

	s.validated(validator.Result{Status: security.Secure, EDE: validator.EDENone})
	s.validated(validator.Result{Status: security.Secure, EDE: validator.EDENone})
	s.validated(validator.Result{Status: security.Bogus, EDE: 6})
	s.validated(validator.Result{Status: security.Bogus, EDE: 0, Err: fmt.Errorf("x: %w", validator.ErrBudgetExhausted)})
	s.failed(budgetError("more than %d upstream queries", 1))
	s.failed(&Error{Text: "not a budget"})

	st := r.Stats(2)
	want := []UpstreamServer{
		{Addr: a, Queries: 4, Timeouts: 1, Replies: 3, RTTSum: 30 * time.Millisecond, SRTT: 10 * time.Millisecond, SRTTKnown: true},
		{Addr: b, Queries: 2, Replies: 1, RTTSum: 20 * time.Millisecond},
	}
	if len(st.Upstream) != len(want) {
		t.Fatalf("upstream %+v, want %+v", st.Upstream, want)
	}
	for i := range want {
		if st.Upstream[i] != want[i] {
			t.Errorf("upstream[%d] %+v, want %+v", i, st.Upstream[i], want[i])
		}
	}
	if o := st.UpstreamOther; o.Queries != 1 || o.Timeouts != 1 || o.Addr.IsValid() {
		t.Errorf("other %+v, want the third server's 1 query, 1 timeout", o)
	}
	if st.UpstreamRTT.Count != 4 {
		t.Errorf("%d RTTs observed, want 4 (replies only)", st.UpstreamRTT.Count)
	}
	wantOutcomes := map[ValidationOutcome]uint64{
		{security.Secure, -1}: 2, {security.Bogus, 6}: 1, {security.Bogus, 0}: 1,
	}
	if len(st.Validations) != len(wantOutcomes) {
		t.Errorf("validations %v, want %v", st.Validations, wantOutcomes)
	}
	for o, n := range wantOutcomes {
		if st.Validations[o] != n {
			t.Errorf("validations %v: %d, want %d", o, st.Validations[o], n)
		}
	}
	if st.BudgetExhausted != 1 || st.ValidationBudgetExhausted != 1 {
		t.Errorf("budget exhausted %d, validation %d; want 1 and 1", st.BudgetExhausted, st.ValidationBudgetExhausted)
	}
}

// TestStatsBounded: servers past maxCountedServers are counted together,
// so a resolver sent to many servers keeps bounded counters.
func TestStatsBounded(t *testing.T) {
	s := newStats()
	for i := range maxCountedServers + 10 {
		s.exchanged(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), time.Millisecond, nil)
	}
	if len(s.servers) != maxCountedServers || s.other.queries != 10 {
		t.Errorf("%d servers kept and %d queries in other, want %d and 10", len(s.servers), s.other.queries, maxCountedServers)
	}
}
