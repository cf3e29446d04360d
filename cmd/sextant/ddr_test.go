package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/transport"
)

// This file's tests use 127.84.0.0/16 (see ARCHITECTURE.md).

// testPKI is a CA made for one test and a server certificate it issued.
type testPKI struct {
	caFile, certFile, keyFile string
}

// newTestPKI makes a CA and a server certificate for dnsNames and ips,
// valid from notBefore to notAfter, and writes them as PEM files.
func newTestPKI(t *testing.T, dnsNames []string, ips []net.IP, notBefore, notAfter time.Time) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sextant test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "resolver"},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: dnsNames, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")}
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(p.caFile, "CERTIFICATE", caDER)
	write(p.certFile, "CERTIFICATE", der)
	write(p.keyFile, "EC PRIVATE KEY", keyDER)
	return p
}

func writeDDRDeadHints(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(p, []byte(". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.84.0.99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDDRServe runs `sextant serve` with args until the test ends and waits
// for its Do53 listener on listen to answer.
func startDDRServe(t *testing.T, listen string, args ...string) *syncBuffer {
	t.Helper()
	all := append([]string{"--root-hints", writeDDRDeadHints(t), "--log-level", "debug"}, args...)
	return startServeProbe(t, listen, "resolver.arpa.", dns.TypeSOA, all...)
}

func ddrQuery(t *testing.T, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, qtype)
	q.SetEdns0(1232, false)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, server)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// svcbSummary renders an SVCB record's target and parameters in one line.
func svcbSummary(rr dns.RR) string {
	s := rr.(*dns.SVCB)
	var kv []string
	for _, v := range s.Value {
		kv = append(kv, v.Key().String()+"="+v.String())
	}
	return s.Target + " " + strings.Join(kv, " ")
}

// TestDDRAdvertisesEncryptedListeners: with a certificate from a trusted CA
// for the advertised name, _dns.resolver.arpa SVCB has one record per
// encrypted listener with its ALPN, port, address hint and DoH path.
func TestDDRAdvertisesEncryptedListeners(t *testing.T) {
	const listen = "127.84.0.1:53"
	pki := newTestPKI(t, []string{"dns.sextant.test"}, []net.IP{net.ParseIP("127.84.0.1")}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	out := startDDRServe(t, listen, "--dot", "127.84.0.1:853", "--doh", "127.84.0.1:443", "--doq", "127.84.0.1:8853",
		"--tls-cert", pki.certFile, "--tls-key", pki.keyFile, "--ddr-ca", pki.caFile)
	waitForLog(t, out, "DDR: advertising")
	r := ddrQuery(t, listen, "_dns.resolver.arpa.", dns.TypeSVCB)
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		t.Fatalf("rcode %s, aa %v\n%s", dns.RcodeToString[r.Rcode], r.Authoritative, r)
	}
	want := []string{
		"dns.sextant.test. alpn=dot port=853 ipv4hint=127.84.0.1",
		"dns.sextant.test. alpn=h2,h3 port=443 ipv4hint=127.84.0.1 dohpath=/dns-query{?dns}",
		"dns.sextant.test. alpn=doq port=8853 ipv4hint=127.84.0.1",
	}
	if len(r.Answer) != len(want) {
		t.Fatalf("%d records, want %d\n%s", len(r.Answer), len(want), r)
	}
	for i, rr := range r.Answer {
		if got := svcbSummary(rr); got != want[i] {
			t.Errorf("record %d: %q, want %q", i, got, want[i])
		}
		if p := rr.(*dns.SVCB).Priority; p != uint16(i+1) {
			t.Errorf("record %d: priority %d, want %d", i, p, i+1)
		}
	}
	// The records survive a round trip through the wire format.
	wire, err := r.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if err := new(dns.Msg).Unpack(wire); err != nil {
		t.Fatalf("answer does not parse: %v", err)
	}
	// Other types at the name, and other names in the zone, are NODATA
	// answered here, never sent upstream (RFC 9462 6.4).
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"_dns.resolver.arpa.", dns.TypeA}, {"resolver.arpa.", dns.TypeSVCB}, {"x._dns.resolver.arpa.", dns.TypeSVCB}} {
		r := ddrQuery(t, listen, q.name, q.qtype)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("%s %s: want NODATA with the SOA, got\n%s", q.name, dns.TypeToString[q.qtype], r)
		}
	}
}

// TestDDRAbsentWithSelfSignedCertificate: RFC 9462 4.2 designates only a
// resolver whose certificate clients can verify; with the self-signed
// default there is no designation, so the answer is NODATA.
func TestDDRAbsentWithSelfSignedCertificate(t *testing.T) {
	const listen = "127.84.0.2:53"
	out := startDDRServe(t, listen, "--dot", "127.84.0.2:853", "--doh", "127.84.0.2:443")
	waitForLog(t, out, "DDR: no designated resolver")
	r := ddrQuery(t, listen, "_dns.resolver.arpa.", dns.TypeSVCB)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Fatalf("want NODATA, got\n%s", r)
	}
	if !strings.Contains(out.String(), "self-signed certificate cannot be verified") {
		t.Errorf("the log does not say why DDR is off:\n%s", out.String())
	}
}

// TestDDRTarget: which certificates designate which name.
func TestDDRTarget(t *testing.T) {
	now := time.Now()
	good := newTestPKI(t, []string{"*.sextant.test", "dns.sextant.test", "alt.sextant.test"}, nil, now.Add(-time.Hour), now.Add(time.Hour))
	expired := newTestPKI(t, []string{"dns.sextant.test"}, nil, now.Add(-2*time.Hour), now.Add(-time.Hour))
	tests := []struct {
		name    string
		pki     testPKI
		opts    ddrOptions
		selfSig bool
		want    string // "" wants an error
	}{
		{"first non-wildcard name", good, ddrOptions{caFile: good.caFile}, false, "dns.sextant.test."},
		{"named by flag", good, ddrOptions{caFile: good.caFile, name: "alt.sextant.test"}, false, "alt.sextant.test."},
		{"name not in certificate", good, ddrOptions{caFile: good.caFile, name: "other.test"}, false, ""},
		{"untrusted CA", good, ddrOptions{caFile: expired.caFile}, false, ""},
		{"expired", expired, ddrOptions{caFile: expired.caFile}, false, ""},
		{"self-signed", good, ddrOptions{caFile: good.caFile}, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certFile, keyFile := tc.pki.certFile, tc.pki.keyFile
			if tc.selfSig {
				certFile, keyFile = "", ""
			}
			certs, err := transportCerts(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ddrTarget(&tc.opts, certFile, certs, now)
			if got != tc.want || (tc.want == "") != (err != nil) {
				t.Errorf("target %q, err %v; want %q", got, err, tc.want)
			}
		})
	}
}

func transportCerts(certFile, keyFile string) (*transport.TLSCertificates, error) {
	return transport.NewTLSCertificates(certFile, keyFile, nil, nil)
}

func TestInDDRZone(t *testing.T) {
	for name, want := range map[string]bool{
		"resolver.arpa.": true, "_dns.resolver.arpa.": true, "_DNS.Resolver.ARPA.": true, "a.b._dns.resolver.arpa.": true,
		"xresolver.arpa.": false, "arpa.": false, "resolver.arpa.example.": false, "www.example.": false, ".": false,
		// One label "ns.resolver" under arpa.: not the locally served zone.
		`ns\.resolver.arpa.`: false, `_dns\.resolver.arpa.`: false, `x.ns\.resolver.arpa.`: false,
	} {
		if got := inDDRZone(name); got != want {
			t.Errorf("inDDRZone(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestDDRNotReadyBeforeUpdate: between the listeners' bind and the first
// update, DDR answers SERVFAIL with EDE 14 (Not Ready), never a NODATA
// that clients would keep for the TTL.
func TestDDRNotReadyBeforeUpdate(t *testing.T) {
	h := newDDRHandler(nil)
	q := new(dns.Msg).SetQuestion(ddrName, dns.TypeSVCB)
	q.SetEdns0(1232, false)
	m := h.answer(q, netip.MustParseAddr("127.84.0.5"))
	if m.Rcode != dns.RcodeServerFailure || m.IsEdns0() == nil || len(m.IsEdns0().Option) != 1 ||
		m.IsEdns0().Option[0].(*dns.EDNS0_EDE).InfoCode != dns.ExtendedErrorCodeNotReady {
		t.Errorf("before update: %v", m)
	}
	h.update(&ddrOptions{}, "", nil, nil, slog.New(slog.DiscardHandler))
	if m := h.answer(q, netip.MustParseAddr("127.84.0.5")); m.Rcode != dns.RcodeSuccess || len(m.Ns) != 1 {
		t.Errorf("after update without listeners: %v", m)
	}
}

// readyStub is a Handler with a fast path that always answers.
type readyStub struct{ transport.HandlerFunc }

func (readyStub) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	return append(dst, query...), true
}

// BenchmarkDDRReadyPath: what the wrapper adds to a cache hit on the UDP
// fast path (compare Direct and Wrapped).
func BenchmarkDDRReadyPath(b *testing.B) {
	inner := readyStub{}
	query, _ := new(dns.Msg).SetQuestion("www.example.", dns.TypeA).Pack()
	dst := make([]byte, 0, 512)
	for _, bc := range []struct {
		name string
		h    transport.ReadyAnswerer
	}{{"Direct", inner}, {"Wrapped", newDDRHandler(inner)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = bc.h.AnswerReady(dst[:0], query, 512)
			}
		})
	}
}
