package authority

import (
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkAnswer measures Answer alone (no packing, no I/O) on the paths a
// co-located resolver hits most.
func BenchmarkAnswer(b *testing.B) {
	nsec := NewServer(makeTestZone(b, testOrigin, testZoneText, nsecZone).zone)
	nsec3 := NewServer(makeTestZone(b, testOrigin, testZoneText, nsec3Zone).zone)
	cases := []struct {
		name  string
		s     *Server
		qname string
		qtype uint16
		do    bool
	}{
		{"exact", nsec, "www.example.", dns.TypeA, false},
		{"exact-do", nsec, "www.example.", dns.TypeA, true},
		{"nxdomain-nsec-do", nsec, "nope.example.", dns.TypeA, true},
		{"nxdomain-nsec3-do", nsec3, "nope.example.", dns.TypeA, true},
		{"wildcard-nsec3-do", nsec3, "x.wild.example.", dns.TypeA, true},
		{"referral-do", nsec, "www.secure.example.", dns.TypeA, true},
		{"refused", nsec, "www.example.org.", dns.TypeA, false},
	}
	for _, tc := range cases {
		q := query(tc.qname, tc.qtype, tc.do)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.s.Answer(q)
			}
		})
	}
}
