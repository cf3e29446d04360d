package cache

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// TestKindsDoNotMeetTypes: NXDOMAIN and zone-failure entries have keys of
// their own; RRsets of the types that used to stand in for them (65535 and
// 0, reserved but sendable) neither see them nor displace them.
func TestKindsDoNotMeetTypes(t *testing.T) {
	const name, class = "gone.example.", dns.ClassINET
	c, _ := newTestCache(t, Config{})
	nx := &Entry{Rcode: dns.RcodeNameError, Rank: RankAuthorityAuth}
	fail := &Entry{Rcode: dns.RcodeServerFailure, EDE: 22, EDEText: "no reachable authority"}
	if !c.PutNXDomain(name, class, nx, 300) || !c.PutZoneFailure(name, class, fail, 5) {
		t.Fatal("Put refused")
	}
	for _, qtype := range []uint16{65535, 0} {
		if e, ok := c.Get(name, qtype, class); ok {
			t.Fatalf("type %d sees %+v", qtype, e)
		}
		rrset := &Entry{RRs: []dns.RR{&dns.RFC3597{Hdr: dns.RR_Header{Name: name, Rrtype: qtype, Class: class, Ttl: 300}, Rdata: "00"}}, Rank: RankAnswerAuth}
		if !c.Put(name, qtype, class, rrset, 300) {
			t.Fatalf("type %d RRset refused", qtype)
		}
	}
	if e, ok := c.GetNXDomain(name, class); !ok || e != nx {
		t.Fatalf("NXDOMAIN entry after RRsets of type 65535: %+v", e)
	}
	if e, ok := c.GetZoneFailure(name, class); !ok || e != fail {
		t.Fatalf("zone failure after RRsets of type 0: %+v", e)
	}
	c.DeleteZoneFailure(name, class)
	if _, ok := c.GetZoneFailure(name, class); ok {
		t.Fatal("DeleteZoneFailure left the failure")
	}
	if e, ok := c.Get(name, 0, class); !ok || len(e.RRs) != 1 {
		t.Fatal("DeleteZoneFailure removed the RRset of type 0")
	}
	if !c.MarkNXDomain(name, class, nx, Verdict{Security: security.Secure}) {
		t.Fatal("MarkNXDomain refused")
	}
	if e, _ := c.GetNXDomain(name, class); e.Security != security.Secure {
		t.Fatalf("marked NXDOMAIN: %v", e.Security)
	}
	if e, _ := c.Get(name, 65535, class); e.Security != security.Indeterminate {
		t.Fatal("MarkNXDomain reached the RRset of type 65535")
	}
}
