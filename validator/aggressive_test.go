package validator

import (
	"testing"

	"github.com/miekg/dns"
)

func TestAggressiveDenial(t *testing.T) {
	nsec := nsecChain("example.", denialNames)
	nsec3 := nsec3Chain("example.", denialNames, 0, "", false)
	optOut := nsec3Chain("example.", denialNames, 0, "", true, "insec.example.")
	high := nsec3Chain("example.", denialNames, 51, "", false)
	tests := []struct {
		name  string
		chain []dns.RR
		qname string
		qtype uint16
		want  Denial
	}{
		{"NSEC NXDOMAIN", nsec, "nx.example.", dns.TypeA, DenialNXDOMAIN},
		{"NSEC NODATA", nsec, "a.example.", dns.TypeAAAA, DenialNODATA},
		{"NSEC existing data", nsec, "a.example.", dns.TypeA, DenialNone},
		{"NSEC empty non-terminal", nsec, "c.example.", dns.TypeA, DenialNODATA},
		{"NSEC wildcard NODATA", nsec, "x.w.example.", dns.TypeMX, DenialNODATA},
		{"NSEC wildcard data exists", nsec, "x.w.example.", dns.TypeTXT, DenialNone},
		{"NSEC below delegation", nsec, "www.insec.example.", dns.TypeA, DenialNone},
		{"NSEC outside zone", nsec, "www.other.", dns.TypeA, DenialNone},
		{"NSEC3 NXDOMAIN", nsec3, "nx.example.", dns.TypeA, DenialNXDOMAIN},
		{"NSEC3 NODATA", nsec3, "a.example.", dns.TypeAAAA, DenialNODATA},
		{"NSEC3 existing data", nsec3, "a.example.", dns.TypeA, DenialNone},
		{"NSEC3 wildcard NODATA", nsec3, "x.w.example.", dns.TypeMX, DenialNODATA},
		{"NSEC3 opt-out proves nothing", optOut, "nx.example.", dns.TypeA, DenialNone},
		{"NSEC3 above iteration limit", high, "nx.example.", dns.TypeA, DenialNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBudget(DefaultLimits())
			got, err := AggressiveDenial(tc.qname, tc.qtype, "example.", tc.chain, b)
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
