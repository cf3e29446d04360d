package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go/http3"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func startDoH(t testing.TB, addr string, cfg DoHConfig) (tcp, udp string, s *DoH) {
	t.Helper()
	cfg.Addrs = []string{addr}
	s, err := NewDoH(cfg)
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp = serveForTest(t, s)
	return tcp, udp, s
}

// dohClients are HTTP clients that each speak one HTTP version only.
func dohClients(t testing.TB, ctls *tls.Config) map[string]*http.Client {
	h1 := &http.Transport{TLSClientConfig: ctls.Clone(), Protocols: new(http.Protocols)}
	h1.Protocols.SetHTTP1(true)
	h2 := &http.Transport{TLSClientConfig: ctls.Clone(), Protocols: new(http.Protocols)}
	h2.Protocols.SetHTTP2(true)
	h3 := &http3.Transport{TLSClientConfig: ctls.Clone()}
	t.Cleanup(func() {
		h1.CloseIdleConnections()
		h2.CloseIdleConnections()
		h3.Close()
	})
	return map[string]*http.Client{
		"HTTP/1.1": {Transport: h1, Timeout: 5 * time.Second},
		"HTTP/2.0": {Transport: h2, Timeout: 5 * time.Second},
		"HTTP/3.0": {Transport: h3, Timeout: 5 * time.Second},
	}
}

// ttlHandler answers with two records of different TTLs, so Cache-Control
// must carry the smaller.
func ttlHandler() Handler {
	return HandlerFunc(func(_ context.Context, w ResponseWriter, r *Request) {
		w.WriteMsg(ttlAnswer(r.Msg))
	})
}

func ttlAnswer(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	name := q.Question[0].Name
	m.Answer = []dns.RR{
		&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1).To4()},
		&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 2).To4()},
	}
	return m
}

// readyTTLHandler is ttlHandler with the ReadyAnswerer fast path too: the
// same answer, made from the raw query, for the queries the contract lets
// it answer; ready counts them.
type readyTTLHandler struct {
	Handler
	ready *atomic.Int64
}

func newReadyTTLHandler() readyTTLHandler {
	return readyTTLHandler{Handler: ttlHandler(), ready: new(atomic.Int64)}
}

func (h readyTTLHandler) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	q := new(dns.Msg)
	if q.Unpack(query) != nil || q.Response || q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		return dst, false
	}
	a := ttlAnswer(q)
	if opt := q.IsEdns0(); opt != nil {
		if len(opt.Option) > 0 {
			return dst, false // the contract: front ends send none
		}
		a.SetEdns0(1232, opt.Do())
	}
	b, err := a.Pack()
	if err != nil || len(b) > maxSize {
		return dst, false
	}
	h.ready.Add(1)
	return append(dst, b...), true
}

func TestDoHRequests(t *testing.T) {
	// Every case runs against a Handler without and with the ready-answer
	// fast path (doh_h2.go takes it over HTTP/2): same answers.
	handlers := []struct {
		name string
		h    Handler
	}{{"full", ttlHandler()}, {"ready", newReadyTTLHandler()}}
	for _, hc := range handlers {
		for _, addr := range loopbacks {
			testDoHRequests(t, hc.name+"/"+addr, addr, hc.h)
		}
	}
	if n := handlers[1].h.(readyTTLHandler).ready.Load(); n == 0 {
		t.Error("the ready-answer path never answered")
	}
}

func testDoHRequests(t *testing.T, label, addr string, h Handler) {
	{
		certs, ctls := testCerts(t)
		tcp, udp, _ := startDoH(t, addr, DoHConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
		base := "https://" + tcp + "/dns-query"
		q := dnstest.Query("example.", dns.TypeA)
		q.Id = 0 // as browsers send it
		wire := mustPack(t, q)
		b64 := base64.RawURLEncoding.EncodeToString(wire)
		notify := dnstest.Query("example.", dns.TypeSOA)
		notify.Opcode = dns.OpcodeNotify
		good := mustPack(t, dnstest.Query("example.", dns.TypeA))
		_, udpPort, _ := net.SplitHostPort(udp)

		cases := []struct {
			name       string
			method     string
			url        string
			ctype      string
			body       []byte
			wantStatus int
			wantRcode  int // checked when the status is 200 and the answer is wire format
			wantJSON   bool
		}{
			{name: "GET dns", method: "GET", url: base + "?dns=" + b64, wantStatus: 200, wantRcode: dns.RcodeSuccess},
			{name: "GET dns padded base64", method: "GET", url: base + "?dns=" + base64.URLEncoding.EncodeToString(wire), wantStatus: 200, wantRcode: dns.RcodeSuccess},
			{name: "POST", method: "POST", url: base, ctype: mimeDNSMessage, body: wire, wantStatus: 200, wantRcode: dns.RcodeSuccess},
			{name: "POST NOTIFY gets NOTIMP", method: "POST", url: base, ctype: mimeDNSMessage, body: mustPack(t, notify), wantStatus: 200, wantRcode: dns.RcodeNotImplemented},
			{name: "GET bad base64", method: "GET", url: base + "?dns=%21%21%21", wantStatus: 400},
			{name: "GET empty dns", method: "GET", url: base + "?dns=", wantStatus: 400},
			{name: "GET no parameter", method: "GET", url: base, wantStatus: 400},
			{name: "GET malformed message", method: "GET", url: base + "?dns=" + base64.RawURLEncoding.EncodeToString(append(good[:12:12], 0x3f, 'a')), wantStatus: 400},
			{name: "GET runt message", method: "GET", url: base + "?dns=AAAA", wantStatus: 400},
			{name: "POST wrong content type", method: "POST", url: base, ctype: "text/plain", body: wire, wantStatus: 415},
			{name: "POST no content type", method: "POST", url: base, body: wire, wantStatus: 415},
			{name: "POST too large", method: "POST", url: base, ctype: mimeDNSMessage, body: make([]byte, 70000), wantStatus: 413},
			{name: "PUT", method: "PUT", url: base, ctype: mimeDNSMessage, body: wire, wantStatus: 405},
			{name: "DELETE", method: "DELETE", url: base, wantStatus: 405},
			{name: "other path", method: "GET", url: "https://" + tcp + "/other?dns=" + b64, wantStatus: 404},
			{name: "JSON", method: "GET", url: base + "?name=example.org&type=A", wantStatus: 200, wantJSON: true},
			{name: "JSON numeric type and flags", method: "GET", url: base + "?name=example.org&type=28&do=1&cd=1", wantStatus: 200, wantJSON: true},
			{name: "JSON bad type", method: "GET", url: base + "?name=example.org&type=NOPE", wantStatus: 400},
			{name: "JSON bad name", method: "GET", url: base + "?name=" + strings.Repeat("a", 300), wantStatus: 400},
		}
		for proto, client := range dohClients(t, ctls) {
			// A well-behaved client keeps querying beside the bad ones.
			stop := make(chan struct{})
			goodErr := make(chan error, 1)
			go func() {
				for {
					select {
					case <-stop:
						goodErr <- nil
						return
					default:
					}
					resp, err := client.Get(base + "?dns=" + b64)
					if err != nil {
						goodErr <- err
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						goodErr <- fmt.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			}()
			for _, tc := range cases {
				t.Run(label+"/"+proto+"/"+tc.name, func(t *testing.T) {
					req, err := http.NewRequest(tc.method, tc.url, bytes.NewReader(tc.body))
					if err != nil {
						t.Fatal(err)
					}
					if tc.ctype != "" {
						req.Header.Set("Content-Type", tc.ctype)
					}
					if tc.wantJSON {
						req.Header.Set("Accept", mimeDNSJSON)
					}
					resp, err := client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					if resp.Proto != proto {
						t.Errorf("spoke %s, want %s", resp.Proto, proto)
					}
					if resp.StatusCode != tc.wantStatus {
						t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.wantStatus)
					}
					if tc.wantStatus == 405 && resp.Header.Get("Allow") != "GET, POST" {
						t.Errorf("Allow %q", resp.Header.Get("Allow"))
					}
					if proto != "HTTP/3.0" && resp.Header.Get("Alt-Svc") != fmt.Sprintf(`h3=":%s"; ma=86400`, udpPort) {
						t.Errorf("Alt-Svc %q, want h3 on port %s", resp.Header.Get("Alt-Svc"), udpPort)
					}
					if resp.StatusCode != 200 {
						return
					}
					if tc.wantJSON {
						checkJSONAnswer(t, resp, body)
						return
					}
					if ct := resp.Header.Get("Content-Type"); ct != mimeDNSMessage {
						t.Errorf("Content-Type %q", ct)
					}
					m := new(dns.Msg)
					if err := m.Unpack(body); err != nil {
						t.Fatal(err)
					}
					if m.Rcode != tc.wantRcode {
						t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.wantRcode])
					}
					if m.Rcode == dns.RcodeSuccess {
						if cc := resp.Header.Get("Cache-Control"); cc != "max-age=60" {
							t.Errorf("Cache-Control %q, want max-age=60", cc)
						}
						if m.Id != 0 {
							t.Errorf("id %d, want the query's 0", m.Id)
						}
					}
				})
			}
			close(stop)
			if err := <-goodErr; err != nil {
				t.Errorf("%s: well-behaved client failed beside the bad requests: %v", proto, err)
			}
		}
	}
}

func checkJSONAnswer(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != mimeDNSJSON {
		t.Errorf("Content-Type %q", ct)
	}
	var a struct {
		Status             int
		TC, RD, RA, AD, CD bool
		Question           []struct {
			Name string `json:"name"`
			Type int    `json:"type"`
		}
		Answer []struct {
			Name string `json:"name"`
			Type int    `json:"type"`
			TTL  int    `json:"TTL"`
			Data string `json:"data"`
		}
	}
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if a.Status != 0 || !a.RD || !a.RA || len(a.Question) != 1 || a.Question[0].Name != "example.org." {
		t.Fatalf("answer %s", body)
	}
	if len(a.Answer) != 2 || a.Answer[0].Data != "192.0.2.1" || a.Answer[1].TTL != 60 || a.Answer[0].Type != 1 {
		t.Fatalf("answer records %s", body)
	}
}

// TestDoHManyStreams sends many queries at once over one HTTP/2 and one
// HTTP/3 connection; the handler finishes them in reverse order.
func TestDoHManyStreams(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: delayByID(40), Certs: certs}})
	for _, proto := range []string{"HTTP/2.0", "HTTP/3.0"} {
		t.Run(proto, func(t *testing.T) {
			client := dohClients(t, ctls)[proto]
			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for id := uint16(1); id <= 40; id++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					q := dnstest.Query("example.", dns.TypeA)
					q.Id = id
					resp, err := client.Post("https://"+tcp+"/dns-query", mimeDNSMessage, bytes.NewReader(mustPack(t, q)))
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					m := new(dns.Msg)
					if err := m.Unpack(body); err != nil || m.Id != id {
						errs <- fmt.Errorf("id %d: %v %v", id, m.Id, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestDoHAccessControl(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: ttlHandler(), Certs: certs, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}})
	for proto, client := range dohClients(t, ctls) {
		resp, err := client.Post("https://"+tcp+"/dns-query", mimeDNSMessage, bytes.NewReader(mustPack(t, dnstest.Query("example.", dns.TypeA))))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := new(dns.Msg)
		if err := m.Unpack(body); err != nil || m.Rcode != dns.RcodeRefused {
			t.Errorf("%s: %v rcode %d, want REFUSED", proto, err, m.Rcode)
		}
	}
}

// TestDoHSlowloris: a client that trickles its headers is cut off at
// HeaderTimeout while another client is served.
func TestDoHSlowloris(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: ttlHandler(), Certs: certs}, HeaderTimeout: 500 * time.Millisecond})
	conf := ctls.Clone()
	conf.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", tcp, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte("GET /dns-query?dns=AAAB HTTP/1.1\r\nHost: x\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 { // one header line every 200ms, never the blank line
			time.Sleep(200 * time.Millisecond)
			if _, err := c.Write([]byte("X-Slow: 1\r\n")); err != nil {
				return
			}
		}
	}()
	io.Copy(io.Discard, c)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("slow client kept its connection for %v", d)
	}
	resp, err := dohClients(t, ctls)["HTTP/2.0"].Get("https://" + tcp + "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(mustPack(t, dnstest.Query("example.", dns.TypeA))))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("other client: %v %v", resp, err)
	}
	resp.Body.Close()
	<-done
}
