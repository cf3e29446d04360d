package validator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/security"
)

// recordingSource answers from a recording of another KeySource, so that
// the fuzz target does no signing and no test-helper calls of its own.
type recordingSource struct {
	src  KeySource
	mu   sync.Mutex
	seen map[string]*dns.Msg
	live bool
}

func (r *recordingSource) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	key := dnsname.Canonical(name) + "/" + dns.TypeToString[qtype]
	r.mu.Lock()
	m, ok := r.seen[key]
	r.mu.Unlock()
	if ok {
		return m.Copy(), nil
	}
	if !r.live {
		return nil, errors.New("not recorded")
	}
	m, err := r.src.Query(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.seen[key] = m.Copy()
	r.mu.Unlock()
	return m, nil
}

// FuzzValidateResponse feeds mutated signed responses to ValidateResponse:
// it must never panic and always return one of the four states.
func FuzzValidateResponse(f *testing.F) {
	w := testWorld(f)
	rec := &recordingSource{src: w, seen: map[string]*dns.Msg{}, live: true}
	v, err := New(rootAnchor(w), rec, clock.NewManual(testNow), DefaultLimits())
	if err != nil {
		f.Fatal(err)
	}
	for _, tc := range append(responseCases(f, w), dnameCases(f, w)...) {
		tc.resp.SetQuestion(tc.qname, tc.qtype)
		tc.resp.Response = true
		// Record the chain the seed needs, then pack it as a seed.
		v.ValidateResponse(context.Background(), tc.qname, tc.qtype, tc.resp, nil)
		wire, err := tc.resp.Pack()
		if err != nil {
			f.Fatalf("%s: pack: %v", tc.name, err)
		}
		f.Add(wire)
	}
	rec.live = false
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil || len(m.Question) != 1 {
			return
		}
		q := m.Question[0]
		start := time.Now()
		res := v.ValidateResponse(context.Background(), q.Name, q.Qtype, m, NewBudget(DefaultLimits()))
		if d := time.Since(start); d > time.Second {
			t.Fatalf("validation took %v", d)
		}
		switch res.Status {
		case security.Secure, security.Insecure, security.Bogus, security.Indeterminate:
		default:
			t.Fatalf("status %d out of range", res.Status)
		}
		if res.Status == security.Bogus && res.EDE == EDENone {
			t.Fatalf("bogus without EDE: %+v", res)
		}
	})
}
