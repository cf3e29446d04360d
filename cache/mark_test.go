package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// TestMark: Mark swaps in a marked copy of the entry the caller holds, and
// only while that entry is still the live one under the key.
func TestMark(t *testing.T) {
	const name, qtype, qclass = "www.example.", dns.TypeA, dns.ClassINET
	for _, tc := range []struct {
		name    string
		prior   security.Status // the stored entry's state
		replace bool            // another Put replaces the entry first
		expire  bool            // the entry expires first
		verdict Verdict
		want    bool
		wantTTL uint32 // TTL left after a mark that succeeded
	}{
		{"secure, capped by the signatures", security.Indeterminate, false, false, Verdict{Security: security.Secure, TTL: 100}, true, 100},
		{"no cap keeps the TTL left", security.Indeterminate, false, false, Verdict{Security: security.Insecure}, true, 300},
		{"bogus, capped by the bogus TTL", security.Indeterminate, false, false, Verdict{Security: security.Bogus, EDE: 6, EDEText: "bad"}, true, 60},
		{"replaced meanwhile", security.Indeterminate, true, false, Verdict{Security: security.Secure}, false, 0},
		{"expired meanwhile", security.Indeterminate, false, true, Verdict{Security: security.Secure}, false, 0},
		{"a live secure entry is not made bogus", security.Secure, false, false, Verdict{Security: security.Bogus}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newTestCache(t, Config{})
			e := positive(t, RankAnswerAuth, "192.0.2.1")
			e.Security = tc.prior
			if !c.Put(name, qtype, qclass, e, 300) {
				t.Fatal("Put refused")
			}
			old, _ := c.Get(name, qtype, qclass)
			if tc.replace {
				if !c.Put(name, qtype, qclass, positive(t, RankAnswerAuth, "192.0.2.2"), 300) {
					t.Fatal("second Put refused")
				}
			}
			if tc.expire {
				clk.Advance(301 * time.Second)
			}
			if got := c.Mark(name, qtype, qclass, old, tc.verdict); got != tc.want {
				t.Fatalf("Mark = %v, want %v", got, tc.want)
			}
			cur, ok := c.Get(name, qtype, qclass)
			switch {
			case tc.want:
				if !ok || cur == old || cur.Security != tc.verdict.Security || c.Remaining(cur) != tc.wantTTL {
					t.Fatalf("after Mark: %+v (TTL %d), want %v TTL %d", cur, c.Remaining(cur), tc.verdict.Security, tc.wantTTL)
				}
				if tc.verdict.EDE != 0 && (cur.EDE != tc.verdict.EDE || cur.EDEText != tc.verdict.EDEText) {
					t.Fatalf("EDE %d %q, want %d %q", cur.EDE, cur.EDEText, tc.verdict.EDE, tc.verdict.EDEText)
				}
				if old.Security != tc.prior {
					t.Fatal("Mark modified the stored entry instead of copying it")
				}
			case ok && cur.Security == tc.verdict.Security && tc.verdict.Security != tc.prior:
				t.Fatalf("refused Mark changed the entry: %+v", cur)
			}
		})
	}
}
