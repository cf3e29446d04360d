package resolver

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/transport"
)

// TestHandlerBehindDo53 serves the resolver with the real Do53 front end
// and queries it as a stub would.
func TestHandlerBehindDo53(t *testing.T) {
	h := basicHierarchy(t, 90)
	r := newTestResolver(t, h.hints, nil)
	srv, err := transport.NewDo53(transport.Do53Config{ListenerConfig: transport.ListenerConfig{Addrs: []string{"127.30.90.100:0"}, Handler: NewHandler(r, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	addr := srv.Addrs()[0].String()
	for _, proto := range []string{"udp", "tcp", "udp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		q := query("WWW.example.test.", dns.TypeA, true)
		m, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || !m.RecursionAvailable || m.Question[0].Name != "WWW.example.test." {
			t.Fatalf("%s: response %v", proto, m)
		}
	}
	if h.zone.count() != 1 {
		t.Fatalf("zone got %d queries for three identical client queries, want 1", h.zone.count())
	}
}
