package transport

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestBINDForwarderCookies: BIND 9 as a resolver forwarding to Sextant
// sends client cookies (its default), learns Sextant's server cookie and
// returns it on later queries, which Sextant finds valid. BIND listens on
// 127.0.0.1 with a free port (it binds only interface addresses).
func TestBINDForwarderCookies(t *testing.T) {
	dnstest.RequireTool(t, "named")
	ck := NewServerCookies(RandomCookieSecret(), nil)
	udp, _, _ := startDo53(t, "127.83.0.8:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), Cookies: ck}})
	host, port, _ := net.SplitHostPort(udp)
	dir := t.TempDir()
	bindPort := dnstest.FreeLoopbackPort(t)
	dnstest.StartBIND(t, dnstest.BIND{Dir: dir, Port: bindPort, Recursion: true, Options: []string{
		"allow-recursion { any; };",
		"forward only;",
		fmt.Sprintf("forwarders { %s port %s; };", host, port),
		"send-cookie yes;",
	}})
	bind := fmt.Sprintf("127.0.0.1:%d", bindPort)
	c := &dns.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		r, _, err := c.Exchange(dnstest.Query(fmt.Sprintf("n%d.cookie.example.", i), dns.TypeA), bind)
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			if s := ck.Stats(); s.ClientOnly >= 1 && s.Valid >= 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIND never returned our server cookie: stats %+v, last %v %v", ck.Stats(), err, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := ck.Stats(); s.Invalid != 0 {
		t.Errorf("BIND sent %d invalid server cookies: %+v", s.Invalid, s)
	}
}
