package resolver

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestUpstreamExchangerChecks: replies through Config.Upstream pass the
// checks a socket's do (question and ID match, 0x20 case, cookies), and a
// server that says nothing times out at the query's timeout.
func TestUpstreamExchangerChecks(t *testing.T) {
	server := netip.MustParseAddrPort(memAddr(1) + ":53")
	for _, tc := range []struct {
		name    string
		tcp     bool
		reply   func(q *dns.Msg) *dns.Msg // nil: no reply
		wantErr []error                   // nil: an answer
	}{
		{"answer", false, func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetReply(q) }, nil},
		{"answer over TCP", true, func(q *dns.Msg) *dns.Msg { return new(dns.Msg).SetReply(q) }, nil},
		{"wrong 0x20 case", false, func(q *dns.Msg) *dns.Msg {
			m := new(dns.Msg).SetReply(q)
			m.Question[0].Name = swapCase(q.Question[0].Name)
			return m
		}, []error{errTimeout, errCaseMismatch}},
		{"wrong ID", false, func(q *dns.Msg) *dns.Msg {
			m := new(dns.Msg).SetReply(q)
			m.Id++
			return m
		}, []error{errTimeout, errMalformed}},
		{"wrong ID over TCP", true, func(q *dns.Msg) *dns.Msg {
			m := new(dns.Msg).SetReply(q)
			m.Id++
			return m
		}, []error{errMalformed}},
		{"foreign client cookie", false, func(q *dns.Msg) *dns.Msg {
			m := new(dns.Msg).SetReply(q)
			m.SetEdns0(ednsUDPSize, true)
			m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708" + "1112131415161718"}}
			return m
		}, []error{errTimeout}},
		{"silent", false, func(*dns.Msg) *dns.Msg { return nil }, []error{errTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := dnstest.NewWorld()
			w.Handle(server, dns.HandlerFunc(func(rw dns.ResponseWriter, q *dns.Msg) {
				if m := tc.reply(q); m != nil {
					_ = rw.WriteMsg(m)
				}
			}))
			x := newExchanger()
			x.upstream = w
			q := outQuery{Name: "www.example.test.", Type: dns.TypeA, Class: dns.ClassINET, Server: server,
				EDNS: true, DO: true, Use0x20: true, TCP: tc.tcp, Timeout: 50 * time.Millisecond}
			start := time.Now()
			reply, rtt, err := x.exchange(ctxT(t), q)
			if tc.wantErr == nil {
				if err != nil || reply == nil || rtt <= 0 {
					t.Fatalf("reply %v, rtt %v, err %v; want the reply", reply, rtt, err)
				}
				return
			}
			for _, want := range tc.wantErr {
				if !errors.Is(err, want) {
					t.Fatalf("err %v, want %v", err, want)
				}
			}
			if reply != nil {
				t.Fatalf("reply %v with err %v", reply, err)
			}
			if tc.name == "silent" && time.Since(start) < q.Timeout {
				t.Fatalf("silent server gave up after %v, before the %v timeout", time.Since(start), q.Timeout)
			}
			if w.Queries(server) == 0 {
				t.Fatal("the world saw no query")
			}
		})
	}
}

// TestMemHierarchyUsesNoSockets: a memHierarchy's resolver asks its world,
// and nothing listens at the world's addresses (a resolver without the
// world fails there).
func TestMemHierarchyUsesNoSockets(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil {
		t.Fatalf("through the world: %v", err)
	}
	if n := h.world.Queries(netip.MustParseAddrPort(memAddr(3) + ":53")); n == 0 {
		t.Fatal("the world's example.test. server saw no query")
	}
	off := newTestResolver(t, h.hints, func(c *Config) {
		c.Limits.UpstreamTimeoutInitial = 20 * time.Millisecond
		c.Limits.MaxUpstreamQueries = 3
	})
	if res, err := off.Resolve(ctxT(t), "www.example.test.", dns.TypeA); rcodeOf(res, err) != dns.RcodeServerFailure {
		t.Fatalf("over sockets to the world's addresses: %v %v, want SERVFAIL", res, err)
	}
}
