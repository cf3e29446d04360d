package transport

import (
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestDoHMaxConnsRefusesPromptly: with MaxConns busy, a further client is
// reset at once instead of being left in the accept queue until its own
// timeout; once a slot frees, new clients are served again.
func TestDoHMaxConnsRefusesPromptly(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: ttlHandler(), Certs: certs, MaxConns: 2}, DisableHTTP3: true})
	conf := ctls.Clone()
	conf.NextProtos = []string{"http/1.1"}
	conf.ServerName = "127.0.0.1"
	dial := func() (*tls.Conn, error) {
		d := &net.Dialer{Timeout: 3 * time.Second}
		c, err := d.Dial("tcp", tcp)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, conf)
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}
	held := make([]*tls.Conn, 2)
	for i := range held {
		c, err := dial()
		if err != nil {
			t.Fatalf("connection %d under the limit: %v", i, err)
		}
		defer c.Close()
		held[i] = c
	}
	start := time.Now()
	c, err := dial()
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("a third connection was served with MaxConns 2")
	}
	if isTimeout(err) || took > time.Second {
		t.Fatalf("the third connection waited %v (%v): not refused promptly", took, err)
	}
	held[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := dial()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot came free after a client left: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDoHLongURL: a ?dns= longer than any DNS message gets 414 URI Too
// Long over every HTTP version, while one carrying a large (but possible)
// message is served; only a request past the header limit gets the HTTP
// libraries' own 431 Request Header Fields Too Large.
func TestDoHLongURL(t *testing.T) {
	certs, ctls := testCerts(t)
	tcp, _, _ := startDoH(t, "127.0.0.1:0", DoHConfig{ListenerConfig: ListenerConfig{Handler: ttlHandler(), Certs: certs}})
	base := "https://" + tcp + "/dns-query?dns="

	// A real query padded to 60000 bytes: long but legal.
	q := dnstest.Query("example.", dns.TypeA)
	q.Id = 0
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 60000)})
	big := base64.RawURLEncoding.EncodeToString(mustPack(t, q))
	tooLong := strings.Repeat("A", base64.RawURLEncoding.EncodedLen(maxMsgLen)+4)
	huge := strings.Repeat("A", 2*maxHeaderBytes)

	for proto, client := range dohClients(t, ctls) {
		t.Run(proto, func(t *testing.T) {
			get := func(param string) (int, error) {
				resp, err := client.Get(base + param)
				if err != nil {
					return 0, err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode, nil
			}
			if st, err := get(big); err != nil || st != 200 {
				t.Errorf("a %d-character ?dns= carrying a real query: status %d, %.200v; want 200", len(big), st, err)
			}
			if st, err := get(tooLong); err != nil || st != http.StatusRequestURITooLong {
				t.Errorf("a %d-character ?dns=: status %d, %.200v; want 414", len(tooLong), st, err)
			}
			// Go's HTTP/2 client will not even send a header block past the
			// limit the server advertised; other clients get 431.
			st, err := get(huge)
			switch {
			case err != nil && proto == "HTTP/2.0" && strings.Contains(err.Error(), "header list larger than peer's advertised limit"):
			case err != nil:
				t.Errorf("a %d-character URL: %.200v; want 431", len(huge), err)
			case st != http.StatusRequestHeaderFieldsTooLarge:
				t.Errorf("a %d-character URL: status %d, want 431", len(huge), st)
			}
			// The server keeps serving after all that.
			if st, err := get(base64.RawURLEncoding.EncodeToString(mustPack(t, dnstest.Query("example.", dns.TypeA)))); err != nil || st != 200 {
				t.Errorf("after the long URLs: %d %.200v", st, err)
			}
		})
	}
}
