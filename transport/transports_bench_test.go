package transport

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// These benchmarks measure queries/s per transport with the canned-answer
// handler, client and server on the same (2-core) machine; each parallel
// client runs queries one after another.

func reportQPS(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

func BenchmarkDo53TCP(b *testing.B) {
	_, tcp, _ := startDo53(b, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: newCannedHandler(b)}})
	b.ReportAllocs()
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := (&dns.Client{Net: "tcp"}).Dial(tcp)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		q := dnstest.Query("bench.example.", dns.TypeA)
		for pb.Next() {
			if err := c.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.ReadMsgHeader(nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportQPS(b, start)
}

func BenchmarkDoT(b *testing.B) {
	certs, ctls := testCerts(b)
	target, _ := startDoT(b, "127.0.0.1:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: newCannedHandler(b), Certs: certs}})
	b.ReportAllocs()
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := (&dns.Client{Net: "tcp-tls", TLSConfig: ctls}).Dial(target)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		q := dnstest.Query("bench.example.", dns.TypeA)
		for pb.Next() {
			if err := c.WriteMsg(q); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.ReadMsgHeader(nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportQPS(b, start)
}

func benchDoH(b *testing.B, proto string) {
	certs, ctls := testCerts(b)
	tcp, _, _ := startDoH(b, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: newCannedHandler(b), Certs: certs}})
	client := dohClients(b, ctls)[proto]
	wire := mustPack(b, dnstest.Query("bench.example.", dns.TypeA))
	url := "https://" + tcp + "/dns-query"
	b.ReportAllocs()
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, mimeDNSMessage, bytes.NewReader(wire))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	reportQPS(b, start)
}

func BenchmarkDoHHTTP2(b *testing.B) { benchDoH(b, "HTTP/2.0") }
func BenchmarkDoHHTTP3(b *testing.B) { benchDoH(b, "HTTP/3.0") }

func BenchmarkDoQ(b *testing.B) {
	certs, ctls := testCerts(b)
	target := startDoQ(b, "127.0.0.1:0", DoQConfig{ListenerConfig: ListenerConfig{Handler: newCannedHandler(b), Certs: certs}})
	c := dialDoQ(b, target, ctls)
	framed := frame(doqQueryBytes(b, "bench.example.", 0))
	b.ReportAllocs()
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := doqExchange(c, framed); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportQPS(b, start)
}
