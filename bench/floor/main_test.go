package main

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRespond checks the fixed answer echoes ID, RD and question, and that
// malformed or non-query packets get no answer.
func TestRespond(t *testing.T) {
	q := new(dns.Msg).SetQuestion("h7.bulk.test.", dns.TypeA)
	q.Id = 0xbeef
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, maxQuery)
	n := respond(wire, out)
	var r dns.Msg
	if err := r.Unpack(out[:n]); err != nil {
		t.Fatalf("unpack %x: %v", out[:n], err)
	}
	if r.Id != q.Id || !r.Response || !r.RecursionDesired || r.Question[0] != q.Question[0] || len(r.Answer) != 1 {
		t.Fatalf("answer %v", &r)
	}
	if a, ok := r.Answer[0].(*dns.A); !ok || a.Hdr.Name != "h7.bulk.test." || a.A.String() != "127.0.2.1" {
		t.Fatalf("record %v", r.Answer[0])
	}
	resp := append([]byte(nil), wire...)
	resp[2] |= 0x80
	for name, bad := range map[string][]byte{
		"short":     wire[:headerLen+3],
		"response":  resp,
		"truncated": wire[:len(wire)-2],
		"pointer":   append(append([]byte(nil), wire[:headerLen]...), 0xc0, 0x0c, 0, 1, 0, 1),
	} {
		if n := respond(bad, out); n != 0 {
			t.Errorf("%s: answered %d bytes", name, n)
		}
	}
}

// TestServe is the smoke test: a reuseport socket answers over UDP.
func TestServe(t *testing.T) {
	conns, err := listen("127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	go serve(conns[0])
	defer conns[0].Close()
	c := &dns.Client{Timeout: time.Second}
	q := new(dns.Msg).SetQuestion("x.test.", dns.TypeA)
	r, _, err := c.Exchange(q, conns[0].LocalAddr().(*net.UDPAddr).String())
	if err != nil || len(r.Answer) != 1 || r.Id != q.Id {
		t.Fatalf("exchange: %v %v", r, err)
	}
}
