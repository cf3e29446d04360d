package secondary

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
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

// TestAnswerNotify: the per-message entry point checks TSIG on the raw
// bytes as the NotifyListener does: a NOTIFY signed with the zone's key is
// taken and answered signed, an unsigned one is REFUSED, one signed with
// another secret or an unknown key is NOTAUTH, and a stranger is REFUSED.
func TestAnswerNotify(t *testing.T) {
	key := &Key{Name: "xfr-key.", Algorithm: dns.HmacSHA512, Secret: testSecret}
	wrong := &Key{Name: key.Name, Algorithm: key.Algorithm, Secret: "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0zMg=="}
	unknown := &Key{Name: "other-key.", Algorithm: key.Algorithm, Secret: testSecret}
	primary := netip.MustParseAddrPort("127.88.1.1:53")
	m, err := New([]*Zone{{Origin: failZone, Primaries: []netip.AddrPort{primary}, Key: key}},
		Options{Server: authority.NewServer()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		src        string
		sign       *Key
		wantRcode  int
		wantSigned bool
	}{
		{"signed by the primary", "127.88.1.1", key, dns.RcodeSuccess, true},
		{"unsigned", "127.88.1.1", nil, dns.RcodeRefused, false},
		{"another secret", "127.88.1.1", wrong, dns.RcodeNotAuth, false},
		{"unknown key", "127.88.1.1", unknown, dns.RcodeNotAuth, false},
		{"signed by a stranger", "127.88.1.9", key, dns.RcodeRefused, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := new(dns.Msg)
			q.SetNotify(failZone)
			var raw []byte
			var err error
			if tc.sign != nil {
				q.SetTsig(tc.sign.Name, tc.sign.Algorithm, 300, time.Now().Unix())
				raw, _, err = dns.TsigGenerate(q, tc.sign.Secret, "", false)
			} else {
				raw, err = q.Pack()
			}
			if err != nil {
				t.Fatal(err)
			}
			parsed := new(dns.Msg)
			if err := parsed.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			out, err := m.AnswerNotify(parsed, raw, netip.MustParseAddr(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(out); err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.wantRcode || r.Id != q.Id || !r.Response {
				t.Fatalf("answer %v, want rcode %s", r, dns.RcodeToString[tc.wantRcode])
			}
			if (r.IsTsig() != nil) != tc.wantSigned {
				t.Fatalf("answer signed %v, want %v", r.IsTsig() != nil, tc.wantSigned)
			}
			if tc.wantSigned {
				if err := dns.TsigVerify(out, key.Secret, parsed.IsTsig().MAC, false); err != nil {
					t.Fatalf("signed answer does not verify: %v", err)
				}
			}
		})
	}
}
