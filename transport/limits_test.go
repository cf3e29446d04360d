package transport

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestDo53InFlightBounds floods one UDP socket and one TCP connection with
// queries a handler holds: no more than the configured number may be in
// the handler at once, and all are answered once it lets go.
func TestDo53InFlightBounds(t *testing.T) {
	cases := []struct {
		name  string
		net   string
		limit int
	}{
		{"udp socket", "udp", 3},
		{"tcp connection", "tcp", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var now, peak atomic.Int32
			release := make(chan struct{})
			inner := answerA(1)
			h := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
				n := now.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				<-release
				now.Add(-1)
				inner.ServeDNS(ctx, w, r)
			})
			udp, tcp, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h, MaxInFlight: 2}, UDPSockets: 1, MaxUDPInFlight: 3})
			target := udp
			if tc.net == "tcp" {
				target = tcp
			}
			c, err := net.Dial(tc.net, target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const sent = 10
			for i := range sent {
				q := dnstest.Query("example.", dns.TypeA)
				q.Id = uint16(i + 1)
				if tc.net == "udp" {
					c.Write(mustPack(t, q))
				} else {
					writeFramed(c, mustPack(t, q))
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for peak.Load() < int32(tc.limit) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // room for a wrong extra one
			if p := peak.Load(); p != int32(tc.limit) {
				t.Fatalf("%d queries in the handler at once, want %d", p, tc.limit)
			}
			close(release)
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 512)
			for i := range sent {
				var err error
				if tc.net == "udp" {
					_, err = c.Read(buf)
				} else {
					_, err = readFramed(c)
				}
				if err != nil {
					t.Fatalf("answer %d of %d: %v", i+1, sent, err)
				}
			}
		})
	}
}
