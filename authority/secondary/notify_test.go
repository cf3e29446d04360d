package secondary

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// sendNotify sends a NOTIFY for zone from src to dst, signed with key when
// given, and returns the answer.
func sendNotify(t *testing.T, src, dst, zone string, key *Key) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetNotify(zone)
	c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	if key != nil {
		q.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{key.Name: key.Secret}
	}
	r, _, err := c.Exchange(q, dst)
	if err != nil {
		t.Fatalf("NOTIFY from %s: %v", src, err)
	}
	return r
}

// TestNotify: NOTIFYs from the primary are acknowledged and a burst of
// them makes one transfer; NOTIFYs from anyone else, or for zones not
// kept here, are refused and counted.
func TestNotify(t *testing.T) {
	p := startFakePrimary(t, "127.77.42.1:53", failZone, testZone(failZone, 1, 3))
	p.set(func(p *fakePrimary) { p.noIXFR = false }) // IXFR answered AXFR-style: one exchange per transfer
	p.listen(t)
	dst := "127.77.42.2:5300"
	sut := startSecondary(t, &Zone{Origin: failZone, Primaries: []netip.AddrPort{p.addr}}, sutOptions{notifyAddr: dst, firstRetry: time.Hour})
	sut.waitSerial(t, failZone, 1, 3*time.Second)
	base := p.transfers()

	if r := sendNotify(t, "127.77.42.3", dst, failZone, nil); r.Rcode != dns.RcodeRefused {
		t.Fatalf("NOTIFY from a stranger: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if r := sendNotify(t, "127.77.42.1", dst, "other.test.", nil); r.Rcode != dns.RcodeRefused {
		t.Fatalf("NOTIFY for a zone not kept here: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	if n := sut.m.Status()[0].NotifiesRefused; n != 1 {
		t.Fatalf("refused NOTIFYs counted: %d, want 1", n)
	}

	p.setZone(t, testZone(failZone, 2, 3))
	start := time.Now()
	for i := 0; i < 20; i++ {
		r := sendNotify(t, "127.77.42.1", dst, failZone, nil)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.Opcode != dns.OpcodeNotify {
			t.Fatalf("NOTIFY from the primary: %v", r)
		}
	}
	served := sut.waitSerial(t, failZone, 2, time.Second)
	t.Logf("20 NOTIFYs to new answer: %v", served.Sub(start).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond) // let any extra refresh run
	if n := p.transfers() - base; n != 1 {
		t.Fatalf("a burst of 20 NOTIFYs made %d transfers, want 1", n)
	}
}

// TestNotifyTSIG: with a key, only a NOTIFY signed with it is taken (and
// answered signed); unsigned or wrongly signed ones are refused.
func TestNotifyTSIG(t *testing.T) {
	key := &Key{Name: "xfr-key.", Algorithm: dns.HmacSHA512, Secret: testSecret}
	p := startFakePrimary(t, "127.77.43.1:53", failZone, testZone(failZone, 1, 3))
	p.useKey(key.Name, key.Secret)
	p.listen(t)
	dst := "127.77.43.2:5300"
	sut := startSecondary(t, &Zone{Origin: failZone, Primaries: []netip.AddrPort{p.addr}, Key: key}, sutOptions{notifyAddr: dst, firstRetry: time.Hour})
	sut.waitSerial(t, failZone, 1, 3*time.Second)

	if r := sendNotify(t, "127.77.43.1", dst, failZone, nil); r.Rcode != dns.RcodeRefused {
		t.Fatalf("unsigned NOTIFY: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	wrong := &Key{Name: key.Name, Algorithm: key.Algorithm, Secret: "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0zMg=="}
	q := new(dns.Msg)
	q.SetNotify(failZone)
	q.SetTsig(wrong.Name, wrong.Algorithm, 300, time.Now().Unix())
	c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.77.43.1")}},
		TsigSecret: map[string]string{wrong.Name: wrong.Secret}}
	r, _, _ := c.Exchange(q, dst) // its answer does not verify with the wrong secret either
	if r == nil || r.Rcode != dns.RcodeNotAuth {
		t.Fatalf("NOTIFY signed with another secret: %v, want NOTAUTH", r)
	}
	if n := sut.m.Status()[0].NotifiesRefused; n != 2 {
		t.Fatalf("refused NOTIFYs counted: %d, want 2", n)
	}
	p.setZone(t, testZone(failZone, 2, 3))
	if r := sendNotify(t, "127.77.43.1", dst, failZone, key); r.Rcode != dns.RcodeSuccess || r.IsTsig() == nil {
		t.Fatalf("signed NOTIFY: %v", r)
	}
	sut.waitSerial(t, failZone, 2, time.Second)
}
