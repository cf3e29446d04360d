package transport

import (
	"testing"

	"github.com/miekg/dns"
)

// TestPackReplyCompresses: responses are sent with name compression even
// when the handler's message does not ask for it (local-zone and resolver
// answers did not: 58 bytes where other servers send 46), and the
// handler's message, which a cache may share, is left as it was.
func TestPackReplyCompresses(t *testing.T) {
	q := new(dns.Msg).SetQuestion("www.example.com.", dns.TypeA)
	m := new(dns.Msg).SetReply(q)
	for _, a := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		rr, err := dns.NewRR("www.example.com. 300 IN A " + a)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	plain, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, maxMsgLen+2)
	got, err := packReply(m, &Request{Msg: q, MaxSize: 512}, 1232, buf)
	if err != nil {
		t.Fatal(err)
	}
	want := m.Copy()
	want.Compress = true
	compressed, _ := want.Pack()
	if len(got) != len(compressed) || len(got) >= len(plain) {
		t.Fatalf("packed %d bytes, want %d compressed (uncompressed %d)", len(got), len(compressed), len(plain))
	}
	if m.Compress {
		t.Fatal("packReply changed the handler's message")
	}
	back := new(dns.Msg)
	if err := back.Unpack(got); err != nil || len(back.Answer) != 3 {
		t.Fatalf("unpack: %v, %d answers", err, len(back.Answer))
	}
}
