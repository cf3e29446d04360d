package transport

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// protoRecorder answers like answerA(1) and remembers the protocols its
// queries came over, so a test knows which front end a client reached.
type protoRecorder struct {
	mu   sync.Mutex
	seen map[Proto]int
}

func (p *protoRecorder) ServeDNS(ctx context.Context, w ResponseWriter, r *Request) {
	p.mu.Lock()
	if p.seen == nil {
		p.seen = make(map[Proto]int)
	}
	p.seen[r.Proto]++
	p.mu.Unlock()
	answerA(1).ServeDNS(ctx, w, r)
}

func (p *protoRecorder) count(proto Proto) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[proto]
}

// runClient runs a client program with a deadline and returns its output.
func runClient(t *testing.T, timeout time.Duration, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", path, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// interopServers are every front end around one recording handler, on
// 127.0.0.1 with ports of their own, with one certificate whose SPKI pin
// the clients check.
type interopServers struct {
	h                       *protoRecorder
	certs                   *TLSCertificates
	udp, tcp, dot, doh, doq string
}

func startInteropServers(t *testing.T) *interopServers {
	t.Helper()
	certs, _ := testCerts(t)
	s := &interopServers{h: &protoRecorder{}, certs: certs}
	// One listener configuration for all four, as `sextant serve` does.
	lc := ListenerConfig{Handler: s.h, Certs: certs}
	s.udp, s.tcp, _ = startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: lc})
	s.dot, _ = startDoT(t, "127.0.0.1:0", DoTConfig{ListenerConfig: lc})
	s.doh, _, _ = startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: lc})
	s.doq = startDoQ(t, "127.0.0.1:0", DoQConfig{ListenerConfig: lc})
	return s
}

// clientTimeout bounds one run of a client program: on loopback each
// answers in milliseconds, but the machine may be loaded.
const clientTimeout = 20 * time.Second

// TestKdigInterop: Knot DNS's kdig (Debian's knot-dnsutils; 3.2 speaks
// every transport) queries each front end: Do53 over UDP and TCP, DoT,
// DoH over HTTP/2 with POST and GET, and DoQ, checking our certificate by
// its pin. Each answer must be NOERROR with the record, over the
// transport asked for, and reach the handler over the matching protocol.
func TestKdigInterop(t *testing.T) {
	kdig := dnstest.RequireTool(t, "kdig")
	s := startInteropServers(t)
	pin := "+tls-pin=" + s.certs.Pin()
	port := func(addr string) string {
		_, p, _ := net.SplitHostPort(addr)
		return p
	}
	cases := []struct {
		name    string
		addr    string
		flags   []string
		proto   Proto
		session string // what kdig prints about the transport
	}{
		{"udp", s.udp, nil, UDP, "(UDP)"},
		{"tcp", s.tcp, []string{"+tcp"}, TCP, "(TCP)"},
		{"tls", s.dot, []string{"+tls", pin}, TLS, ";; TLS session (TLS1.3)"},
		{"https-post", s.doh, []string{pin, "+https"}, HTTPS, ";; HTTP session (HTTP/2-POST)-(127.0.0.1/dns-query)-(status: 200)"},
		{"https-get", s.doh, []string{pin, "+https-get"}, HTTPS, ";; HTTP session (HTTP/2-GET)-(127.0.0.1/dns-query)-(status: 200)"},
		{"quic", s.doq, []string{pin, "+quic"}, QUIC, ";; QUIC session (QUICv1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.h.count(tc.proto)
			args := append([]string{"@127.0.0.1", "-p", port(tc.addr), "+time=5", "+retry=0"}, tc.flags...)
			out := runClient(t, clientTimeout, kdig, append(args, "www.example.", "A")...)
			for _, want := range []string{tc.session, "status: NOERROR", "www.example.", "192.0.2.0"} {
				if !strings.Contains(out, want) {
					t.Errorf("kdig %s: no %q in\n%s", strings.Join(args, " "), want, out)
				}
			}
			if got := s.h.count(tc.proto) - before; got != 1 {
				t.Errorf("handler saw %d queries over %v, want 1", got, tc.proto)
			}
		})
	}
	// A wrong pin must fail on every encrypted transport: the pin is
	// checked, so the cases above prove our certificate was the one
	// presented.
	wrong := "+tls-pin=" + strings.Repeat("A", 43) + "="
	for _, tc := range []struct{ name, addr, flag string }{
		{"tls", s.dot, "+tls"}, {"https", s.doh, "+https"}, {"quic", s.doq, "+quic"},
	} {
		t.Run("wrong pin/"+tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
			defer cancel()
			out, err := exec.CommandContext(ctx, kdig, "@127.0.0.1", "-p", port(tc.addr), "+time=5", "+retry=0",
				wrong, tc.flag, "www.example.").CombinedOutput()
			if err == nil || strings.Contains(string(out), "192.0.2.0") {
				t.Errorf("kdig with a wrong pin: %v\n%s", err, out)
			}
		})
	}
}

// TestNgtcp2HTTP3Interop: ngtcp2's example client (Debian's
// ngtcp2-client, gtlsclient: ngtcp2 and nghttp3 over GnuTLS, a QUIC and
// HTTP/3 stack independent of quic-go) GETs a wire-format and a JSON query
// over HTTP/3 from the DoH front end's UDP port.
func TestNgtcp2HTTP3Interop(t *testing.T) {
	client := dnstest.RequireTool(t, "gtlsclient")
	s := startInteropServers(t)
	host, port, _ := net.SplitHostPort(s.doh)
	b64 := base64.RawURLEncoding.EncodeToString(mustPack(t, dnstest.Query("www.example.", dns.TypeA)))
	cases := []struct {
		name, path, ctype string
		check             func(t *testing.T, body []byte)
	}{
		{"wire", "/dns-query?dns=" + b64, mimeDNSMessage, func(t *testing.T, body []byte) {
			m := new(dns.Msg)
			if err := m.Unpack(body); err != nil {
				t.Fatalf("answer: %v", err)
			}
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.0" {
				t.Errorf("answer %v", m)
			}
		}},
		{"json", "/dns-query?name=www.example&type=A", mimeDNSJSON, func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), `"data":"192.0.2.0"`) || !strings.Contains(string(body), `"Status":0`) {
				t.Errorf("answer %s", body)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			before := s.h.count(HTTPS)
			out := runClient(t, clientTimeout, client, "--exit-on-all-streams-close", "--no-quic-dump",
				"--timeout=10s", "--download="+dir, host, port, "https://"+s.doh+tc.path)
			for _, want := range []string{"[:status: 200]", "[content-type: " + tc.ctype + "]"} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in the client's log:\n%s", want, out)
				}
			}
			files, err := os.ReadDir(dir)
			if err != nil || len(files) != 1 {
				t.Fatalf("downloads %v, %v: want one answer", files, err)
			}
			body, err := os.ReadFile(filepath.Join(dir, files[0].Name()))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, body)
			if got := s.h.count(HTTPS) - before; got != 1 {
				t.Errorf("handler saw %d DoH queries, want 1", got)
			}
		})
	}
}

// chromiumFlags keep headless Chromium on loopback: no background
// services, no proxy, and every name but 127.0.0.1 unresolvable, so
// nothing it might fetch on its own can leave the machine.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-domain-reliability", "--disable-breakpad",
	"--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
}

// chromiumPage fetches a JSON query with GET and a wire query with POST
// (what a browser's own DoH sends) and writes both answers in the page.
const chromiumPage = `<body><script>
const url = 'https://%s/dns-query';
async function run() {
  const get = await fetch(url + '?name=www.example&type=A', {cache: 'no-store'});
  const json = await get.text();
  const post = await fetch(url, {method: 'POST', cache: 'no-store',
    headers: {'content-type': 'application/dns-message', 'accept': 'application/dns-message'},
    body: Uint8Array.from(atob('%s'), c => c.charCodeAt(0))});
  const wire = Array.from(new Uint8Array(await post.arrayBuffer()), b => b.toString(16).padStart(2, '0')).join('');
  document.body.textContent = 'GET ' + get.status + ' ' + json + '\nPOST ' + post.status + ' ' + wire;
}
run().catch(e => { document.body.textContent = 'ERROR ' + e; });
</script></body>`

// TestChromiumHTTP3Interop: headless Chromium (Debian's chromium; its
// QUIC and HTTP/3 stack is Google's own) sends DoH requests over HTTP/3
// to the DoH front end, trusting our certificate by its pin. Its network
// log must show the answers came over HTTP/3.
func TestChromiumHTTP3Interop(t *testing.T) {
	chromium := dnstest.RequireTool(t, "chromium")
	s := startInteropServers(t)
	dir := t.TempDir()
	wireQuery := dnstest.Query("www.example.", dns.TypeA)
	wireQuery.Id = 0 // RFC 8484 4.1
	page := fmt.Sprintf(chromiumPage, s.doh, base64.StdEncoding.EncodeToString(mustPack(t, wireQuery)))
	netlog := filepath.Join(dir, "netlog.json")
	args := append(append([]string{}, chromiumFlags...),
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--enable-quic", "--origin-to-force-quic-on="+s.doh,
		"--ignore-certificate-errors-spki-list="+s.certs.Pin(),
		// The page is a data: URL, another origin than the server, which
		// sends no CORS headers (DoH clients are not web pages).
		"--disable-web-security",
		// Wait for the fetches before dumping the page.
		"--virtual-time-budget=10000",
		"--log-net-log="+netlog,
		"--dump-dom", "data:text/html;base64,"+base64.StdEncoding.EncodeToString([]byte(page)))
	before := s.h.count(HTTPS)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, args...).Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	dom := html.UnescapeString(string(out))
	if !strings.Contains(dom, `GET 200 {"Status":0,`) || !strings.Contains(dom, `"data":"192.0.2.0"`) {
		t.Errorf("JSON answer not in the page:\n%s", dom)
	}
	i := strings.Index(dom, "POST 200 ")
	if i < 0 {
		t.Fatalf("wire answer not in the page:\n%s", dom)
	}
	hexAnswer := strings.Fields(dom[i+len("POST 200 "):])[0]
	hexAnswer = strings.TrimSuffix(hexAnswer, "</body></html>")
	raw, err := hex.DecodeString(hexAnswer)
	if err != nil {
		t.Fatalf("wire answer %q: %v", hexAnswer, err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.0" {
		t.Errorf("wire answer %v, %v", m, err)
	}
	if got := s.h.count(HTTPS) - before; got != 2 {
		t.Errorf("handler saw %d DoH queries, want 2", got)
	}
	if n := http3Answers(t, netlog); n != 2 {
		t.Errorf("Chromium's network log shows %d answers with status 200 over HTTP/3, want 2", n)
	}
}

// http3Answers counts the HTTP/3 response headers with status 200 in a
// Chromium network log (chrome://net-export format).
func http3Answers(t *testing.T, path string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int `json:"type"`
			Params struct {
				Headers []string `json:"headers"`
			} `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(raw, &log); err != nil {
		t.Fatalf("network log: %v", err)
	}
	decoded, ok := log.Constants.LogEventTypes["HTTP3_HEADERS_DECODED"]
	if !ok {
		t.Fatal("network log: no HTTP3_HEADERS_DECODED event type")
	}
	n := 0
	for _, e := range log.Events {
		if e.Type == decoded && slices.Contains(e.Params.Headers, ":status: 200") {
			n++
		}
	}
	return n
}
