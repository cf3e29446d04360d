package transport

import (
	"testing"

	"github.com/miekg/dns"
)

// FuzzScreen feeds arbitrary bytes through screening and the error reply:
// nothing may panic, and every reply must parse and echo the ID.
func FuzzScreen(f *testing.F) {
	q := query("example.", dns.TypeA)
	q.SetEdns0(1232, true)
	b, _ := q.Pack()
	f.Add(b)
	f.Add(b[:12])
	f.Add([]byte{0, 1, 0x78, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, allowed := range []bool{true, false} {
			sc := screen(raw, allowed)
			if sc.verdict != reject {
				continue
			}
			out, err := appendErrorReply(make([]byte, maxMsgLen), raw, sc.msg, sc.rcode, 1232)
			if err != nil {
				continue // an OPT miekg will not pack back; the query is not answered
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("error reply does not parse: %v", err)
			}
			if m.Id != uint16(raw[0])<<8|uint16(raw[1]) || !m.Response {
				t.Fatalf("error reply id %d response %v", m.Id, m.Response)
			}
		}
	})
}

func TestMaxUDPResponse(t *testing.T) {
	cases := []struct {
		edns, advertised, want int
	}{
		{0, 1232, 512},
		{100, 1232, 512},
		{512, 1232, 512},
		{1000, 1232, 1000},
		{4096, 1232, 1232},
		{65535, 4096, 4096},
	}
	for _, tc := range cases {
		q := query("example.", dns.TypeA)
		if tc.edns != 0 {
			q.SetEdns0(uint16(tc.edns), false)
		}
		if got := maxUDPResponse(q, tc.advertised); got != tc.want {
			t.Errorf("EDNS %d advertised %d: %d, want %d", tc.edns, tc.advertised, got, tc.want)
		}
	}
}
