package sharedcache

import (
	"bytes"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/security"
)

var testKey = bytes.Repeat([]byte{7}, MinKeyLen)

func mustRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func testAnswer(t testing.TB) *resolver.SharedAnswer {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return &resolver.SharedAnswer{
		Rcode:     dns.RcodeSuccess,
		Answer:    []dns.RR{mustRR(t, "www.example. 300 IN A 127.0.0.1"), mustRR(t, "www.example. 300 IN RRSIG A 13 2 300 20300101000000 20291201000000 1 example. AAAA")},
		Authority: []dns.RR{mustRR(t, "example. 300 IN NS ns.example.")},
		Security:  security.Secure,
		Stored:    now,
		Expires:   now.Add(300 * time.Second),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	a := testAnswer(t)
	q := dns.Question{Name: "WWW.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	key := redisKey(q)
	if key != "sextant:v1:www.example./1/1" {
		t.Fatalf("key %q", key)
	}
	buf, err := encode(testKey, key, a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(testKey, key, buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Rcode != a.Rcode || got.Security != a.Security || !got.Stored.Equal(a.Stored) || !got.Expires.Equal(a.Expires) ||
		len(got.Answer) != 2 || len(got.Authority) != 1 || got.Answer[0].String() != a.Answer[0].String() {
		t.Fatalf("decoded %+v, want %+v", got, a)
	}
}

// TestCodecRefusesForgeries: whoever can write to Redis without the fleet
// key cannot make an instance take an entry: not a changed one, not one
// signed with another key, not one moved to another question's key.
func TestCodecRefusesForgeries(t *testing.T) {
	key := "sextant:v1:www.example./1/1"
	good, err := encode(testKey, key, testAnswer(t))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := encode(bytes.Repeat([]byte{8}, MinKeyLen), key, testAnswer(t))
	flipped := bytes.Clone(good)
	flipped[headerLen+20] ^= 1
	insecure := bytes.Clone(good)
	insecure[headerLen-1] = byte(security.Insecure)
	tests := []struct {
		name string
		buf  []byte
		key  string
	}{
		{"another fleet key", otherKey, key},
		{"a changed record", flipped, key},
		{"a changed security state", insecure, key},
		{"moved to another question", good, "sextant:v1:bank.example./1/1"},
		{"truncated", good[:len(good)-1], key},
		{"empty", nil, key},
		{"not an entry", []byte("hello"), key},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a, err := decode(testKey, tc.key, tc.buf); err == nil {
				t.Fatalf("accepted: %+v", a)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	key := "sextant:v1:www.example./1/1"
	good, _ := encode(testKey, key, testAnswer(f))
	f.Add(good)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, buf []byte) {
		_, _ = decode(testKey, key, buf) // no panic, whatever the bytes
	})
}

func TestBreaker(t *testing.T) {
	now := time.Unix(0, 0)
	b := breaker{failuresToOpen: 3, openFor: 5 * time.Second, now: func() time.Time { return now }}
	for i := 0; i < 3; i++ {
		if !b.allow() {
			t.Fatalf("call %d refused while closed", i)
		}
		b.done(false)
	}
	if b.allow() {
		t.Fatal("open after 3 failures, yet allowed")
	}
	now = now.Add(5 * time.Second)
	if !b.allow() {
		t.Fatal("no probe after the open time")
	}
	if b.allow() {
		t.Fatal("a second call while the probe is out")
	}
	b.done(false) // the probe failed: open again
	if b.allow() {
		t.Fatal("allowed right after a failed probe")
	}
	now = now.Add(5 * time.Second)
	if !b.allow() {
		t.Fatal("no second probe")
	}
	b.done(true)
	if open, opened := b.state(); open || opened != 2 || !b.allow() {
		t.Fatalf("after a good probe: open %v, opened %d", open, opened)
	}
}
