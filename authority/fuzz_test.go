package authority

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds mutated wire-format queries to a Server holding signed
// NSEC and NSEC3 (opt-out) zones. Answer must never panic, must answer
// every parsable query, and its response must pack.
func FuzzAnswer(f *testing.F) {
	s := NewServer(
		makeTestZone(f, testOrigin, testZoneText, nsec3OptOutZone).zone,
		makeTestZone(f, "sub.example.", childText, nsecZone).zone,
	)
	for _, tc := range answerCases {
		for _, do := range []bool{false, true} {
			raw, err := query(tc.qname, tc.qtype, do).Pack()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		q := new(dns.Msg)
		if err := q.Unpack(raw); err != nil {
			return
		}
		m := s.Answer(q)
		if m == nil {
			t.Fatalf("no response to %v", q)
		}
		if m.Id != q.Id || !m.Response {
			t.Fatalf("response header does not match the query")
		}
		if _, err := m.Pack(); err != nil {
			t.Fatalf("response does not pack: %v\nquery: %v\nresponse: %v", err, q, m)
		}
	})
}
