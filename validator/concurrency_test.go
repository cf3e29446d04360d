package validator

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/clock"

	"github.com/sextant-dns/sextant/security"
)

// One Budget shared by the goroutines of one client query never lets more
// than the cap through.
func TestBudgetConcurrent(t *testing.T) {
	lim := DefaultLimits()
	b := NewBudget(lim)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if b.spendValidation() == nil {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != lim.MaxValidations || !b.Exhausted() {
		t.Fatalf("%d validations allowed, want %d; exhausted %v", allowed, lim.MaxValidations, b.Exhausted())
	}
}

// Many queries walking the same chains at once share the key cache.
func TestValidatorConcurrent(t *testing.T) {
	w := testWorld(t)
	v, _ := newTestValidator(t, w)
	cases := responseCases(t, w)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range cases {
				tc := cases[(i+j)%len(cases)]
				res := v.ValidateResponse(context.Background(), tc.qname, tc.qtype, tc.resp, NewBudget(DefaultLimits()))
				if res.Status != tc.status {
					t.Errorf("%s: %v, want %v (%s)", tc.name, res.Status, tc.status, res.Reason)
				}
			}
		}()
	}
	wg.Wait()
	if _, st, _ := v.Keys(context.Background(), "a.b.example.", nil); st != security.Secure {
		t.Fatalf("after concurrent use: %v", st)
	}
}

// slowSource delays every answer so that concurrent walks overlap.
type slowSource struct{ KeySource }

func (s slowSource) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	time.Sleep(20 * time.Millisecond)
	return s.KeySource.Query(ctx, name, qtype)
}

// Concurrent cold walks share each fetch: eight clients, six queries.
func TestConcurrentWalksShareFetches(t *testing.T) {
	w := testWorld(t)
	v, err := New(rootAnchor(w), slowSource{w}, clock.NewManual(testNow), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, st, res := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits())); st != security.Secure {
				t.Errorf("concurrent walk: %+v", res)
			}
		}()
	}
	wg.Wait()
	if q := w.queries.Load(); q != 6 {
		t.Fatalf("%d queries for eight concurrent cold walks, want 6", q)
	}
}
