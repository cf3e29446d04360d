package transport

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestListenerConfigValidate: one Validate for every front end; zero fields
// stand for their defaults, and every front end's constructor refuses
// what it refuses.
func TestListenerConfigValidate(t *testing.T) {
	base := func() ListenerConfig {
		return ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: answerA(1)}
	}
	cases := []struct {
		name    string
		edit    func(*ListenerConfig)
		wantErr string
	}{
		{"zero fields", func(*ListenerConfig) {}, ""},
		{"no address", func(c *ListenerConfig) { c.Addrs = nil }, "no listen address"},
		{"no handler", func(c *ListenerConfig) { c.Handler = nil }, "no handler"},
		{"address without port", func(c *ListenerConfig) { c.Addrs = []string{"127.0.0.1"} }, "listen address"},
		{"EDNS size under 512", func(c *ListenerConfig) { c.EDNSSize = 511 }, "EDNS size"},
		{"EDNS size 512", func(c *ListenerConfig) { c.EDNSSize = 512 }, ""},
		{"EDNS size over 65535", func(c *ListenerConfig) { c.EDNSSize = 65536 }, "EDNS size"},
		{"negative MaxConns", func(c *ListenerConfig) { c.MaxConns = -1 }, "must not be negative"},
		{"negative MaxInFlight", func(c *ListenerConfig) { c.MaxInFlight = -1 }, "must not be negative"},
		{"negative idle timeout", func(c *ListenerConfig) { c.IdleTimeout = -time.Second }, "timeouts"},
		{"negative write timeout", func(c *ListenerConfig) { c.WriteTimeout = -time.Second }, "timeouts"},
		{"negative per-client share", func(c *ListenerConfig) { c.Conns.PerClient = -1 }, "connection limits"},
		{"reserve at the default cap", func(c *ListenerConfig) { c.Conns.Reserve = defaultMaxConns }, "reserve"},
		{"reserve at a set cap", func(c *ListenerConfig) { c.MaxConns = 4; c.Conns.Reserve = 4 }, "reserve"},
	}
	certs, _ := testCerts(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lc := base()
			tc.edit(&lc)
			lc.Certs = certs
			errs := map[string]error{"Validate": lc.Validate()}
			_, errs["NewDo53"] = NewDo53(Do53Config{ListenerConfig: lc})
			_, errs["NewDoT"] = NewDoT(DoTConfig{ListenerConfig: lc})
			_, errs["NewDoH"] = NewDoH(DoHConfig{ListenerConfig: lc})
			_, errs["NewDoQ"] = NewDoQ(DoQConfig{ListenerConfig: lc})
			for who, err := range errs {
				switch {
				case tc.wantErr == "" && err != nil:
					t.Errorf("%s: %v", who, err)
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Errorf("%s: error %v, want one with %q", who, err, tc.wantErr)
				}
			}
		})
	}
}

// TestListenerDefaults: the zero config gets each front end's defaults.
func TestListenerDefaults(t *testing.T) {
	lc := ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: answerA(1)}
	do53, err := NewDo53(Do53Config{ListenerConfig: lc})
	if err != nil {
		t.Fatal(err)
	}
	dot, err := NewDoT(DoTConfig{ListenerConfig: lc})
	if err != nil {
		t.Fatal(err)
	}
	doh, err := NewDoH(DoHConfig{ListenerConfig: lc})
	if err != nil {
		t.Fatal(err)
	}
	doq, err := NewDoQ(DoQConfig{ListenerConfig: lc})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		got         ListenerConfig
		idle, write time.Duration
		inFlight    int
	}{
		{"do53", do53.cfg.ListenerConfig, 10 * time.Second, 5 * time.Second, 16},
		{"dot", dot.cfg.ListenerConfig, 10 * time.Second, 5 * time.Second, 32},
		{"doh", doh.cfg.ListenerConfig, 30 * time.Second, 10 * time.Second, 100},
		{"doq", doq.cfg.ListenerConfig, 30 * time.Second, 5 * time.Second, 100},
	} {
		g := tc.got
		if g.EDNSSize != 1232 || g.MaxConns != 1024 || g.IdleTimeout != tc.idle || g.WriteTimeout != tc.write || g.MaxInFlight != tc.inFlight {
			t.Errorf("%s: EDNS %d, conns %d, idle %v, write %v, in flight %d; want 1232, 1024, %v, %v, %d",
				tc.name, g.EDNSSize, g.MaxConns, g.IdleTimeout, g.WriteTimeout, g.MaxInFlight, tc.idle, tc.write, tc.inFlight)
		}
	}
}

// TestDoHAltSvcPerListener: with DoH on two ports, each listener
// advertises its own HTTP/3 port, and HTTP/3 answers there. (Advertising
// the first listener's port on both would send browsers from the second
// listener to the first one's port for a day.)
func TestDoHAltSvcPerListener(t *testing.T) {
	certs, ctls := testCerts(t)
	s, err := NewDoH(DoHConfig{ListenerConfig: ListenerConfig{
		Addrs: []string{"127.0.0.1:0", "127.0.0.1:0"}, Handler: answerA(1), Certs: certs,
	}})
	if err != nil {
		t.Fatal(err)
	}
	serveForTest(t, s)
	var tcps []string
	for _, a := range s.Addrs() {
		if _, ok := a.(*net.TCPAddr); ok {
			tcps = append(tcps, a.String())
		}
	}
	if len(tcps) != 2 || tcps[0] == tcps[1] {
		t.Fatalf("TCP addresses %v, want two ports", tcps)
	}
	clients := dohClients(t, ctls)
	q := base64.RawURLEncoding.EncodeToString(mustPack(t, dnstest.Query("www.example.", 1)))
	for _, tcp := range tcps {
		_, port, _ := net.SplitHostPort(tcp)
		for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
			resp, err := clients[proto].Get("https://" + tcp + "/dns-query?dns=" + q)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf(`h3=":%s"; ma=86400`, port); resp.StatusCode != 200 || resp.Header.Get("Alt-Svc") != want {
				t.Errorf("%s over %s: status %d, Alt-Svc %q, want %q", tcp, proto, resp.StatusCode, resp.Header.Get("Alt-Svc"), want)
			}
		}
		// Follow the advertisement: HTTP/3 on the same port.
		resp, err := clients["HTTP/3.0"].Get("https://" + tcp + "/dns-query?dns=" + q)
		if err != nil {
			t.Fatalf("HTTP/3 on the advertised port of %s: %v", tcp, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Alt-Svc") != "" {
			t.Errorf("HTTP/3 on %s: status %d, Alt-Svc %q (none wanted over HTTP/3)", tcp, resp.StatusCode, resp.Header.Get("Alt-Svc"))
		}
	}
}

// TestDoHNoAltSvcWithoutHTTP3: DisableHTTP3 advertises nothing.
func TestDoHNoAltSvcWithoutHTTP3(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs}, DisableHTTP3: true})
	resp, err := dohClients(t, ctls)["HTTP/2.0"].Get("https://" + tcp + "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(mustPack(t, dnstest.Query("www.example.", 1))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Alt-Svc") != "" {
		t.Errorf("status %d, Alt-Svc %q; want 200 and none", resp.StatusCode, resp.Header.Get("Alt-Svc"))
	}
}

// TestFrontEndValidate: each front end's own fields are checked beside the
// shared ones.
func TestFrontEndValidate(t *testing.T) {
	lc := ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: answerA(1)}
	cases := []struct {
		name    string
		err     error
		wantErr string
	}{
		{"do53 sockets", (&Do53Config{ListenerConfig: lc, UDPSockets: -1}).Validate(), "must not be negative"},
		{"do53 in flight", (&Do53Config{ListenerConfig: lc, MaxUDPInFlight: -1}).Validate(), "must not be negative"},
		{"doh header timeout", (&DoHConfig{ListenerConfig: lc, HeaderTimeout: -1}).Validate(), "timeouts"},
		{"doh read timeout", (&DoHConfig{ListenerConfig: lc, ReadTimeout: -1}).Validate(), "timeouts"},
		{"doh path", (&DoHConfig{ListenerConfig: lc, Path: "dns-query"}).Validate(), "does not start with /"},
		{"doq stream timeout", (&DoQConfig{ListenerConfig: lc, StreamTimeout: -1}).Validate(), "stream timeout"},
		{"shared field through a front end", (&DoQConfig{ListenerConfig: ListenerConfig{Handler: answerA(1)}}).Validate(), "no listen address"},
		{"doh fine", (&DoHConfig{ListenerConfig: lc, Path: "/q"}).Validate(), ""},
	}
	for _, tc := range cases {
		if tc.wantErr == "" && tc.err != nil || tc.wantErr != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.wantErr)) {
			t.Errorf("%s: error %v, want %q", tc.name, tc.err, tc.wantErr)
		}
	}
}
