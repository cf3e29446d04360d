package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// testCerts makes a self-signed certificate source and a client TLS config
// that trusts it.
func testCerts(t testing.TB) (*TLSCertificates, *tls.Config) {
	t.Helper()
	certs, err := NewTLSCertificates("", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return certs, clientTLS(t, certs)
}

func clientTLS(t testing.TB, certs *TLSCertificates, alpn ...string) *tls.Config {
	t.Helper()
	c, err := certs.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c.Leaf)
	return &tls.Config{RootCAs: pool, NextProtos: alpn}
}

func startDoT(t testing.TB, addr string, cfg DoTConfig) (string, *DoT) {
	t.Helper()
	cfg.Addrs = []string{addr}
	s, err := NewDoT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveForTest(t, s)
	return s.Addrs()[0].String(), s
}

// delayByID answers after a delay that shrinks as the ID grows, so queries
// sent in ID order complete in reverse.
func delayByID(max uint16) Handler {
	return HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		if r.Msg.Id <= max {
			time.Sleep(time.Duration(max-r.Msg.Id) * 3 * time.Millisecond)
		}
		answerA(1).ServeDNS(ctx, w, r)
	})
}

func TestDoTQueries(t *testing.T) {
	for _, addr := range loopbacks {
		t.Run(addr, func(t *testing.T) {
			certs, ctls := testCerts(t)
			target, _ := startDoT(t, addr, DoTConfig{ListenerConfig: ListenerConfig{Handler: delayByID(40), Certs: certs}})

			t.Run("miekg tcp-tls client", func(t *testing.T) {
				c := &dns.Client{Net: "tcp-tls", TLSConfig: ctls}
				r, _, err := c.Exchange(dnstest.Query("example.", dns.TypeA), target)
				if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Fatalf("%v %v", r, err)
				}
			})
			t.Run("TLS 1.3 and ALPN dot", func(t *testing.T) {
				conf := ctls.Clone()
				conf.NextProtos = []string{"dot"}
				c, err := tls.Dial("tcp", target, conf)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				st := c.ConnectionState()
				if st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != "dot" {
					t.Fatalf("version %x ALPN %q, want TLS 1.3 and dot", st.Version, st.NegotiatedProtocol)
				}
			})
			t.Run("TLS 1.1 refused", func(t *testing.T) {
				conf := ctls.Clone()
				conf.MaxVersion = tls.VersionTLS11
				conf.MinVersion = tls.VersionTLS10
				if c, err := tls.Dial("tcp", target, conf); err == nil {
					c.Close()
					t.Fatal("TLS 1.1 handshake succeeded")
				}
			})
			t.Run("TLS 1.2 AEAD yes, CBC no", func(t *testing.T) {
				for _, tc := range []struct {
					suite uint16
					ok    bool
				}{
					{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
					{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
					{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
					{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
				} {
					conf := ctls.Clone()
					conf.MaxVersion = tls.VersionTLS12
					conf.CipherSuites = []uint16{tc.suite}
					c, err := tls.Dial("tcp", target, conf)
					if err == nil {
						c.Close()
					}
					if (err == nil) != tc.ok {
						t.Errorf("%s: handshake error %v, want success %v", tls.CipherSuiteName(tc.suite), err, tc.ok)
					}
				}
			})
			t.Run("pipelined out of order on one connection", func(t *testing.T) {
				c, err := (&dns.Client{Net: "tcp-tls", TLSConfig: ctls}).Dial(target)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				const n = 40
				for id := uint16(1); id <= n; id++ {
					q := dnstest.Query("example.", dns.TypeA)
					q.Id = id
					if err := c.WriteMsg(q); err != nil {
						t.Fatal(err)
					}
				}
				seen := make(map[uint16]bool)
				var order []uint16
				for range n {
					r, err := c.ReadMsg()
					if err != nil {
						t.Fatalf("after %d answers: %v", len(order), err)
					}
					seen[r.Id] = true
					order = append(order, r.Id)
				}
				if len(seen) != n {
					t.Fatalf("%d distinct answers, want %d", len(seen), n)
				}
				if order[0] == 1 {
					t.Errorf("first answer was for the first (slowest) query: answers not out of order: %v", order)
				}
			})
		})
	}
}

func TestDoTPadding(t *testing.T) {
	certs, ctls := testCerts(t)
	target, _ := startDoT(t, "127.0.0.1:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: answerA(3), Certs: certs}})
	cases := []struct {
		name    string
		pad     bool
		records int
	}{
		{"padded query", true, 3},
		{"unpadded query", false, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := (&dns.Client{Net: "tcp-tls", TLSConfig: ctls}).Dial(target)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			q := dnstest.Query("example.", dns.TypeA)
			q.SetEdns0(1232, false)
			if tc.pad {
				q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 20)})
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			if err := c.WriteMsg(q); err != nil {
				t.Fatal(err)
			}
			raw, err := c.ReadMsgHeader(nil)
			if err != nil {
				t.Fatal(err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(raw); err != nil {
				t.Fatal(err)
			}
			if len(r.Answer) != tc.records {
				t.Errorf("%d answers, want %d", len(r.Answer), tc.records)
			}
			if padded := wantsPadding(r); padded != tc.pad {
				t.Errorf("response padded %v, want %v", padded, tc.pad)
			}
			if tc.pad && len(raw)%paddingBlock != 0 {
				t.Errorf("padded response is %d bytes, not a multiple of %d", len(raw), paddingBlock)
			}
		})
	}
}

// TestDoTMalformed sends bad input on TLS connections while a
// well-behaved client keeps querying on its own connection.
func TestDoTMalformed(t *testing.T) {
	certs, ctls := testCerts(t)
	target, _ := startDoT(t, "[::1]:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs, IdleTimeout: time.Second}})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var goodErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := (&dns.Client{Net: "tcp-tls", TLSConfig: ctls}).Dial(target)
		if err != nil {
			goodErr = err
			return
		}
		defer c.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			q := dnstest.Query("good.example.", dns.TypeA)
			if err := c.WriteMsg(q); err != nil {
				goodErr = err
				return
			}
			r, err := c.ReadMsg()
			if err != nil || r.Rcode != dns.RcodeSuccess {
				goodErr = err
				return
			}
		}
	}()

	good := mustPack(t, dnstest.Query("example.", dns.TypeA))
	cases := []struct {
		name      string
		frame     []byte // written as is after the handshake
		wantRcode int    // -1: connection closed, no answer
	}{
		{"unparseable message", append([]byte{0, 14}, append(good[:12:12], 0x3f, 'a')...), dns.RcodeFormatError},
		{"zero-length frame", []byte{0, 0}, -1},
		{"two questions in header only", append([]byte{0, 12}, setQDCount(good[:12], 2)...), dns.RcodeFormatError},
		{"truncated frame then silence", []byte{0, 200, 1, 2, 3}, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", target, ctls)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			b, err := readFramed(c)
			if tc.wantRcode < 0 {
				if err == nil {
					t.Fatalf("got a %d-byte answer, want the connection closed", len(b))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tc.wantRcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
			}
		})
	}
	t.Run("stalled handshake is cut at the idle timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello, then nothing
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("stalled handshake held the connection for %v", d)
		}
	})
	t.Run("not TLS at all", func(t *testing.T) {
		c, err := net.Dial("tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		writeFramed(c, good)
		if b, err := readFramed(c); err == nil && len(b) > 0 && b[0] != 0x15 {
			t.Fatalf("plain DNS over the TLS port got %x", b)
		}
	})
	close(stop)
	wg.Wait()
	if goodErr != nil {
		t.Fatalf("well-behaved client failed: %v", goodErr)
	}
}

func setQDCount(h []byte, n byte) []byte {
	h = append([]byte(nil), h...)
	h[4], h[5] = 0, n
	return h
}

// TestTLSCertificateReload replaces the certificate files and expects the
// next handshake to present the new key, both through the mtime check and
// through Reload.
func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePairAt := func(certFile, keyFile string, mtime time.Time) string {
		cert, pin, err := SelfSigned([]string{"127.0.0.1:853"})
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
		os.Chtimes(certFile, mtime, mtime)
		os.Chtimes(keyFile, mtime, mtime)
		return pin
	}
	writePair := func(mtime time.Time) string { return writePairAt(certFile, keyFile, mtime) }
	base := time.Now().Add(-time.Hour)
	pinA := writePair(base)
	certs, err := NewTLSCertificates(certFile, keyFile, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if certs.Pin() != pinA {
		t.Fatalf("pin %s, want %s", certs.Pin(), pinA)
	}
	target, _ := startDoT(t, "127.0.0.1:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs}})
	served := func() string {
		c, err := tls.Dial("tcp", target, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return SPKIPin(c.ConnectionState().PeerCertificates[0])
	}
	if got := served(); got != pinA {
		t.Fatalf("served pin %s, want %s", got, pinA)
	}

	pinB := writePair(base.Add(time.Minute))
	time.Sleep(certCheckInterval + 100*time.Millisecond)
	if got := served(); got != pinB {
		t.Fatalf("after the files changed: served pin %s, want %s", got, pinB)
	}

	pinC := writePair(base.Add(2 * time.Minute))
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != pinC {
		t.Fatalf("after Reload: served pin %s, want %s", got, pinC)
	}

	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	if err := certs.Reload(); err == nil {
		t.Fatal("Reload of a broken file succeeded")
	}
	if got := served(); got != pinC {
		t.Fatalf("after a failed reload: served pin %s, want the old %s", got, pinC)
	}

	// SetFiles: other files, as a configuration reload names them.
	other := t.TempDir()
	certD, keyD := filepath.Join(other, "d.pem"), filepath.Join(other, "d.key")
	pinD := writePairAt(certD, keyD, base)
	if err := certs.SetFiles(filepath.Join(other, "missing.pem"), keyD); err == nil {
		t.Fatal("SetFiles to a missing file succeeded")
	}
	if got := served(); got != pinC {
		t.Fatalf("after a failed SetFiles: served pin %s, want the old %s", got, pinC)
	}
	if err := certs.SetFiles(certD, keyD); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != pinD {
		t.Fatalf("after SetFiles: served pin %s, want %s", got, pinD)
	}
	pinE := writePairAt(certD, keyD, base.Add(time.Minute))
	writePair(base.Add(3 * time.Minute)) // the old files no longer count
	if err := certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(); got != pinE {
		t.Fatalf("Reload after SetFiles: served pin %s, want %s from the new files", got, pinE)
	}
}

func TestSelfSignedSANs(t *testing.T) {
	cert, pin, err := SelfSigned([]string{"192.0.2.7:853", "dns.example", "[::1]:853"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	for _, name := range []string{"localhost", "dns.example", "127.0.0.1", "::1", "192.0.2.7"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("key is %T, want ECDSA", leaf.PublicKey)
	}
	if pin != SPKIPin(leaf) || len(pin) != 44 {
		t.Errorf("pin %q", pin)
	}
}

// TestDoTReadyPath: a plain query is answered on the ready path, in order
// with the full path's answers on the same connection; a query asking for
// keepalive or padding, and a client outside the ACL, take the full path.
func TestDoTReadyPath(t *testing.T) {
	certs, ctls := testCerts(t)
	h := newReadyTTLHandler()
	target, _ := startDoT(t, "127.0.0.1:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
	c := &dns.Client{Net: "tcp-tls", TLSConfig: ctls}
	conn, err := c.Dial(target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exchange := func(q *dns.Msg) *dns.Msg {
		t.Helper()
		r, _, err := c.ExchangeWithConn(q, conn)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 || r.Id != q.Id {
			t.Fatalf("%v %v", r, err)
		}
		return r
	}
	exchange(dnstest.Query("example.", dns.TypeA))
	exchange(dnstest.Query("example.", dns.TypeA))
	if n := h.ready.Load(); n != 2 {
		t.Fatalf("ready path %d times, want 2", n)
	}
	keepalive := dnstest.Query("example.", dns.TypeA).SetEdns0(1232, false)
	keepalive.IsEdns0().Option = append(keepalive.IsEdns0().Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE})
	if !hasTCPKeepalive(exchange(keepalive)) {
		t.Error("keepalive query answered without the option")
	}
	padded := dnstest.Query("example.", dns.TypeA).SetEdns0(1232, false)
	padded.IsEdns0().Option = append(padded.IsEdns0().Option, &dns.EDNS0_PADDING{})
	if !wantsPadding(exchange(padded)) {
		t.Error("padded query answered unpadded")
	}
	if n := h.ready.Load(); n != 2 {
		t.Errorf("ready path %d times, want still 2", n)
	}

	denied, _ := startDoT(t, "127.0.0.1:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs,
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}})
	r, _, err := c.Exchange(dnstest.Query("example.", dns.TypeA), denied)
	if err != nil || r.Rcode != dns.RcodeRefused || h.ready.Load() != 2 {
		t.Fatalf("denied client: %v %v, ready path %d times", r, err, h.ready.Load())
	}
}
