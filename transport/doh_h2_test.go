package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func TestWireMinTTL(t *testing.T) {
	a := func(ttl uint32) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: "www.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IPv4(192, 0, 2, 1)}
	}
	soa := func(ttl, minimum uint32) dns.RR {
		return &dns.SOA{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
			Ns: "ns.example.", Mbox: "hostmaster.example.", Serial: 1, Refresh: 2, Retry: 3, Expire: 4, Minttl: minimum}
	}
	msg := func(answer, ns []dns.RR, do bool) *dns.Msg {
		m := new(dns.Msg).SetQuestion("www.example.", dns.TypeA)
		m.Response = true
		m.Answer, m.Ns = answer, ns
		if do {
			m.SetEdns0(1232, true) // the OPT's TTL field holds the DO bit: not a TTL
		}
		return m
	}
	tests := []struct {
		name string
		m    *dns.Msg
		want int
	}{
		{"smallest answer TTL", msg([]dns.RR{a(300), a(60), a(120)}, nil, false), 60},
		{"OPT skipped", msg([]dns.RR{a(300)}, nil, true), 300},
		{"negative: SOA MINIMUM below its TTL", msg(nil, []dns.RR{soa(3600, 900)}, false), 900},
		{"negative: SOA TTL below its MINIMUM", msg(nil, []dns.RR{soa(600, 900)}, true), 600},
		{"positive: SOA MINIMUM ignored", msg([]dns.RR{a(300)}, []dns.RR{soa(3600, 10)}, false), 300},
		{"no records", msg(nil, nil, false), -1},
		{"only an OPT", msg(nil, nil, true), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.Compress = true
			b, err := tc.m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if got, parsed := wireMinTTL(b), minTTL(tc.m); got != tc.want || parsed != tc.want {
				t.Errorf("wireMinTTL %d, minTTL %d, want %d", got, parsed, tc.want)
			}
			// Cut anywhere, it must not read past the end or invent a TTL.
			for i := range b {
				if got := wireMinTTL(b[:i]); got != -1 && i < len(b) && got < tc.want {
					t.Fatalf("cut at %d: %d", i, got)
				}
			}
		})
	}
}

// TestDoHH2ReadyPath: over HTTP/2, GET and POST of a plain query take the
// ready-answer path; a padded query (it must be answered padded), a JSON
// request and a client outside the ACL take the full path.
func TestDoHH2ReadyPath(t *testing.T) {
	certs, ctls := testCerts(t)
	h := newReadyTTLHandler()
	tcp, udp, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
	client := dohClients(t, ctls)["HTTP/2.0"]
	base := "https://" + tcp + "/dns-query"
	_, udpPort, _ := net.SplitHostPort(udp)
	q := dnstest.Query("example.", dns.TypeA)
	q.Id = 4321
	wire := mustPack(t, q)
	padded := dnstest.Query("example.", dns.TypeA)
	padded.SetEdns0(1232, false)
	padded.IsEdns0().Option = append(padded.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 8)})

	get := func(t *testing.T, req *http.Request) (*http.Response, []byte) {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
			t.Fatalf("%s %d: %s", resp.Proto, resp.StatusCode, body)
		}
		return resp, body
	}
	wireReq := func(method string, m []byte) *http.Request {
		if method == http.MethodGet {
			r, _ := http.NewRequest(method, base+"?dns="+base64.RawURLEncoding.EncodeToString(m), nil)
			return r
		}
		r, _ := http.NewRequest(method, base, bytes.NewReader(m))
		r.Header.Set("Content-Type", mimeDNSMessage)
		return r
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			before := h.ready.Load()
			resp, body := get(t, wireReq(method, wire))
			if h.ready.Load() != before+1 {
				t.Error("not answered on the ready path")
			}
			m := new(dns.Msg)
			if err := m.Unpack(body); err != nil || m.Id != 4321 || len(m.Answer) != 2 {
				t.Fatalf("answer %v %v", m, err)
			}
			for k, want := range map[string]string{
				"Content-Type":   mimeDNSMessage,
				"Content-Length": strconv.Itoa(len(body)),
				"Cache-Control":  "max-age=60",
				"Alt-Svc":        `h3=":` + udpPort + `"; ma=86400`,
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}

			before = h.ready.Load()
			_, body = get(t, wireReq(method, mustPack(t, padded)))
			m = new(dns.Msg)
			if err := m.Unpack(body); err != nil || !wantsPadding(m) || len(body)%paddingBlock != 0 {
				t.Errorf("padded query: answer of %d bytes, padded %v, %v", len(body), wantsPadding(m), err)
			}
			if h.ready.Load() != before {
				t.Error("a padded query took the ready path")
			}
		})
	}
	t.Run("JSON", func(t *testing.T) {
		before := h.ready.Load()
		r := wireReq(http.MethodGet, wire)
		r.Header.Set("Accept", mimeDNSJSON)
		resp, _ := get(t, r)
		if ct := resp.Header.Get("Content-Type"); ct != mimeDNSJSON || h.ready.Load() != before {
			t.Errorf("Content-Type %q, ready path %d times", ct, h.ready.Load()-before)
		}
	})
	t.Run("ACL", func(t *testing.T) {
		tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs,
			Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}})
		before := h.ready.Load()
		r, _ := http.NewRequest(http.MethodGet, "https://"+tcp+"/dns-query?dns="+base64.RawURLEncoding.EncodeToString(wire), nil)
		_, body := get(t, r)
		m := new(dns.Msg)
		if err := m.Unpack(body); err != nil || m.Rcode != dns.RcodeRefused || h.ready.Load() != before {
			t.Errorf("denied client: %v rcode %d, ready path %d times", err, m.Rcode, h.ready.Load()-before)
		}
	})
}

// h2Client is a bare HTTP/2 client for the protocol tests: it speaks
// frames, to do what well-behaved clients never do.
type h2Client struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
}

func dialH2(t *testing.T, addr string, ctls *tls.Config, settings ...http2.Setting) *h2Client {
	t.Helper()
	conf := ctls.Clone()
	conf.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q", p)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &h2Client{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return c
}

// get sends a GET of m on stream id.
func (c *h2Client) get(id uint32, addr string, m []byte) {
	c.t.Helper()
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", addr},
		{":path", "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(m)}, {"accept", mimeDNSMessage}} {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next frame that is not about the connection's own
// settings, window or pings.
func (c *h2Client) next() http2.Frame {
	c.t.Helper()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.fr.WriteSettingsAck()
			}
			continue
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				continue
			}
		}
		return f
	}
}

// TestDoHH2FlowControl: an answer bigger than the window the client
// grants goes out as far as the window allows, and the rest follows its
// WINDOW_UPDATE (RFC 9113 6.9).
func TestDoHH2FlowControl(t *testing.T) {
	certs, ctls := testCerts(t)
	h := newReadyTTLHandler()
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
	const window = 16
	c := dialH2(t, tcp, ctls, http2.Setting{ID: http2.SettingInitialWindowSize, Val: window})
	q := mustPack(t, dnstest.Query("example.", dns.TypeA))
	want, err := ttlAnswer(dnstest.Query("example.", dns.TypeA)).Pack()
	if err != nil {
		t.Fatal(err)
	}
	c.get(1, tcp, q)
	var got []byte
	ended, granted := false, window
	for !ended {
		switch f := c.next().(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 || f.PseudoValue("status") != "200" {
				t.Fatalf("headers %v", f)
			}
		case *http2.DataFrame:
			got = append(got, f.Data()...)
			ended = f.StreamEnded()
			if len(got) > granted {
				t.Fatalf("%d bytes sent in a window of %d", len(got), granted)
			}
			if len(got) == granted && !ended {
				// The server waits on the window; open it by as much
				// again, so that it waits several times.
				if err := c.fr.WriteWindowUpdate(1, window); err != nil {
					t.Fatal(err)
				}
				granted += window
			}
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	if len(got) != len(want) || !bytes.Equal(got[2:], want[2:]) {
		t.Fatalf("answer of %d bytes, want %d", len(got), len(want))
	}
	if h.ready.Load() != 1 {
		t.Errorf("ready path taken %d times", h.ready.Load())
	}
}

// TestDoHH2RefusesStreamsPastLimit: a stream past MaxInFlight is refused
// with REFUSED_STREAM (RFC 9113 5.1.2) while the others are served; and a
// client resetting its streams (rapid reset) cannot get past the limit,
// since a request counts until its handler returns.
func TestDoHH2RefusesStreamsPastLimit(t *testing.T) {
	certs, ctls := testCerts(t)
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	handler := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		entered <- struct{}{}
		<-release
		answerA(1).ServeDNS(ctx, w, r)
	})
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: handler, Certs: certs, MaxInFlight: 2}})
	c := dialH2(t, tcp, ctls)
	q := mustPack(t, dnstest.Query("example.", dns.TypeA))
	c.get(1, tcp, q)
	c.get(3, tcp, q)
	<-entered
	<-entered
	// Resetting stream 1 frees nothing while its handler runs.
	if err := c.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	c.get(5, tcp, q)
	f := c.next()
	if rst, ok := f.(*http2.RSTStreamFrame); !ok || rst.StreamID != 5 || rst.ErrCode != http2.ErrCodeRefusedStream {
		t.Fatalf("got %v, want REFUSED_STREAM on stream 5", f)
	}
	close(release)
	f = c.next()
	if hf, ok := f.(*http2.MetaHeadersFrame); !ok || hf.StreamID != 3 {
		t.Fatalf("got %v, want the answer on stream 3", f)
	}
}

// TestDoHH2ProtocolErrors: frames no client may send end the connection
// with GOAWAY and the matching error code (RFC 9113 5.4.1).
func TestDoHH2ProtocolErrors(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: ttlHandler(), Certs: certs}})
	q := mustPack(t, dnstest.Query("example.", dns.TypeA))
	cases := []struct {
		name string
		send func(c *h2Client)
		code http2.ErrCode
	}{
		{"even stream ID", func(c *h2Client) { c.get(2, tcp, q) }, http2.ErrCodeProtocol},
		{"stream ID going back", func(c *h2Client) { c.get(5, tcp, q); c.get(3, tcp, q) }, http2.ErrCodeProtocol},
		{"DATA on an idle stream", func(c *h2Client) { c.fr.WriteData(7, true, []byte("x")) }, http2.ErrCodeProtocol},
		{"window overflow", func(c *h2Client) { c.fr.WriteWindowUpdate(0, 1<<31-1) }, http2.ErrCodeFlowControl},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialH2(t, tcp, ctls)
			go tc.send(c)
			for {
				f, err := c.fr.ReadFrame()
				if err != nil {
					t.Fatalf("no GOAWAY: %v", err)
				}
				if ga, ok := f.(*http2.GoAwayFrame); ok {
					if ga.ErrCode != tc.code {
						t.Fatalf("GOAWAY %v, want %v", ga.ErrCode, tc.code)
					}
					break
				}
			}
			// The connection is closed after the GOAWAY.
			for {
				if _, err := c.fr.ReadFrame(); err != nil {
					if isTimeout(err) {
						t.Fatal("connection left open after GOAWAY")
					}
					break
				}
			}
		})
	}
}

// TestDoHH2PingsDoNotKeepIdle: a connection with no request for
// IdleTimeout gets GOAWAY and is closed, however often the client PINGs.
func TestDoHH2PingsDoNotKeepIdle(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: ttlHandler(), Certs: certs, IdleTimeout: 300 * time.Millisecond}})
	c := dialH2(t, tcp, ctls)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if c.fr.WritePing(false, [8]byte{1}) != nil {
					return
				}
			}
		}
	}()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY before %v", err) // the dial's 10 s deadline
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo {
				t.Fatalf("GOAWAY %v", ga.ErrCode)
			}
			return
		}
	}
}

// TestDoHH2CurlNghttpInterop: two HTTP/2 stacks independent of Go's
// (Debian's curl over libnghttp2 and nghttp2-client's nghttp) GET and
// POST over our HTTP/2 server, on the ready path and on the full path
// (a padded query), and nghttp with many requests multiplexed at once.
func TestDoHH2CurlNghttpInterop(t *testing.T) {
	curl := dnstest.RequireTool(t, "curl")
	nghttp := dnstest.RequireTool(t, "nghttp")
	certs, _ := testCerts(t)
	h := newReadyTTLHandler()
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
	base := "https://" + tcp + "/dns-query"
	plain := mustPack(t, dnstest.Query("example.", dns.TypeA))
	paddedQ := dnstest.Query("example.", dns.TypeA).SetEdns0(1232, false)
	paddedQ.IsEdns0().Option = append(paddedQ.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 8)})
	padded := mustPack(t, paddedQ)
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plainFile, paddedFile := file("plain", plain), file("padded", padded)
	run := func(path string, args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, args...).Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", path, strings.Join(args, " "), err, out)
		}
		return out
	}
	// answers checks that out holds n wire answers back to back (nghttp
	// prints every body in turn), each with the two records.
	answers := func(name string, out []byte, n int, wantPadded bool) {
		t.Helper()
		for i := range n {
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil || len(m.Answer) != 2 || wantsPadding(m) != wantPadded {
				t.Fatalf("%s: answer %d of %d: %v %v", name, i+1, n, m, err)
			}
			packed, _ := m.Pack()
			out = out[len(packed):]
		}
		if len(out) != 0 {
			t.Fatalf("%s: %d bytes after the answers", name, len(out))
		}
	}
	get := base + "?dns=" + base64.RawURLEncoding.EncodeToString(plain)
	curlArgs := []string{"-s", "-k", "--http2", "--fail", "-H", "accept: application/dns-message"}
	answers("curl GET", run(curl, append(curlArgs, get)...), 1, false)
	answers("curl POST", run(curl, append(curlArgs, "-H", "content-type: application/dns-message", "--data-binary", "@"+plainFile, base)...), 1, false)
	answers("curl POST padded", run(curl, append(curlArgs, "-H", "content-type: application/dns-message", "--data-binary", "@"+paddedFile, base)...), 1, true)
	answers("nghttp GET x20", run(nghttp, "-m", "20", get), 20, false)
	answers("nghttp POST padded x5", run(nghttp, "-m", "5", "-H", "content-type: application/dns-message", "-d", paddedFile, base), 5, true)
	if n := h.ready.Load(); n != 22 {
		t.Errorf("ready path %d times, want 22", n)
	}
}

// TestDoHH2ContentLengthMismatch: a body shorter or longer than its
// content-length makes the request malformed (RFC 9113 8.1.1): the
// stream is reset, and the connection serves on.
func TestDoHH2ContentLengthMismatch(t *testing.T) {
	certs, ctls := testCerts(t)
	h := newReadyTTLHandler()
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
	c := dialH2(t, tcp, ctls)
	q := mustPack(t, dnstest.Query("example.", dns.TypeA))
	post := func(id uint32, length int) {
		c.hbuf.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/dns-query"},
			{"content-type", mimeDNSMessage}, {"content-length", strconv.Itoa(length)}} {
			c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := c.fr.WriteData(id, true, q); err != nil {
			t.Fatal(err)
		}
	}
	post(1, len(q)+1)
	post(3, len(q)-1)
	for _, id := range []uint32{1, 3} {
		f := c.next()
		if rst, ok := f.(*http2.RSTStreamFrame); !ok || rst.StreamID != id || rst.ErrCode != http2.ErrCodeProtocol {
			t.Fatalf("got %v, want PROTOCOL_ERROR on stream %d", f, id)
		}
	}
	post(5, len(q))
	if f, ok := c.next().(*http2.MetaHeadersFrame); !ok || f.StreamID != 5 || f.PseudoValue("status") != "200" {
		t.Fatalf("got %v, want 200 on stream 5", f)
	}
}
