package transport

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestDo53WildcardAnswersFromQueriedAddress binds a wildcard address and
// queries it on 127.0.0.2: the answer must come from 127.0.0.2 (a
// connected client socket drops anything else) and the handler must see
// 127.0.0.2 as Local.
func TestDo53WildcardAnswersFromQueriedAddress(t *testing.T) {
	if !pktinfoSupported {
		t.Skip("no IP_PKTINFO on this platform")
	}
	cases := []struct {
		bind   string
		target string // host queried
	}{
		{"0.0.0.0:0", "127.0.0.2"},
		{"0.0.0.0:0", "127.0.0.1"},
		{"[::]:0", "127.0.0.2"},
		{"[::]:0", "::1"},
	}
	for _, tc := range cases {
		t.Run(tc.bind+"->"+tc.target, func(t *testing.T) {
			var mu sync.Mutex
			var local netip.AddrPort
			inner := answerA(1)
			h := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
				mu.Lock()
				local = r.Local
				mu.Unlock()
				inner.ServeDNS(ctx, w, r)
			})
			s, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Addrs: []string{tc.bind}, Handler: h}, UDPSockets: 2})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Skipf("cannot bind %s here: %v", tc.bind, err)
			}
			defer s.Shutdown(context.Background())
			port := s.Addrs()[0].(*net.UDPAddr).Port
			target := net.JoinHostPort(tc.target, strconv.Itoa(port))
			for _, proto := range []string{"udp", "tcp"} {
				c := &dns.Client{Net: proto, Timeout: time.Second}
				r, _, err := c.Exchange(dnstest.Query("example.", dns.TypeA), target)
				if err != nil || r.Rcode != dns.RcodeSuccess {
					t.Fatalf("%s: %v %v", proto, r, err)
				}
				mu.Lock()
				got := local
				mu.Unlock()
				if got.Addr().Unmap() != netip.MustParseAddr(tc.target) || got.Port() != uint16(port) {
					t.Errorf("%s: handler saw Local %s, want %s", proto, got, target)
				}
			}
		})
	}
}
