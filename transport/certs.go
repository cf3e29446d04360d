package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"sync"
	"time"
)

// SelfSigned makes a certificate for local use: ECDSA P-256, valid for a
// year, with SANs localhost, 127.0.0.1, ::1 and hosts (names, IPs, or
// host:port listen addresses). It also returns the certificate's SPKI pin
// (base64 of SHA-256 over SubjectPublicKeyInfo, RFC 7858 4.2) for clients
// that pin instead of trusting a CA.
func SelfSigned(hosts []string) (tls.Certificate, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sextant local resolver"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	seen := make(map[string]bool)
	for _, h := range append([]string{"localhost", "127.0.0.1", "::1"}, hosts...) {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed: create: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed: parse: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, SPKIPin(leaf), nil
}

// SPKIPin returns the base64 SHA-256 pin of a certificate's public key.
func SPKIPin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// certCheckInterval bounds how often a handshake stats the certificate
// files, so a handshake flood does not become a stat flood.
const certCheckInterval = time.Second

// TLSCertificates supplies the server certificate to every encrypted front
// end: from a cert and key file, reloaded when either file's mtime changes
// (checked on handshakes, at most once a second) or on Reload (SIGHUP);
// or, without files, one self-signed certificate made at start.
type TLSCertificates struct {
	log *slog.Logger

	mu                sync.Mutex
	certFile, keyFile string // changed by SetFiles
	cert              *tls.Certificate
	pin               string
	certMod           time.Time
	keyMod            time.Time
	lastCheck         time.Time
}

// NewTLSCertificates loads certFile and keyFile, or, when both are empty,
// makes a self-signed certificate for hosts (see SelfSigned).
func NewTLSCertificates(certFile, keyFile string, hosts []string, log *slog.Logger) (*TLSCertificates, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &TLSCertificates{certFile: certFile, keyFile: keyFile, log: log}
	if certFile == "" && keyFile == "" {
		cert, pin, err := SelfSigned(hosts)
		if err != nil {
			return nil, err
		}
		c.cert, c.pin = &cert, pin
		return c, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: need both a certificate and a key file")
	}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the certificate and key files again. On error the
// certificate in use stays.
func (c *TLSCertificates) Reload() error {
	certFile, keyFile := c.files()
	if certFile == "" {
		return nil
	}
	return c.load(certFile, keyFile, false)
}

// SetFiles switches to another certificate and key file pair (a
// configuration reload naming new files), also from a self-signed
// certificate. On error the certificate and the files in use stay.
func (c *TLSCertificates) SetFiles(certFile, keyFile string) error {
	if certFile == "" || keyFile == "" {
		return errors.New("tls: need both a certificate and a key file")
	}
	return c.load(certFile, keyFile, true)
}

// files returns the certificate and key file names ("" when self-signed).
func (c *TLSCertificates) files() (certFile, keyFile string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.certFile, c.keyFile
}

// load reads a certificate and key pair and makes it the one in use; a
// reload of the old files (switch false) that SetFiles overtook is dropped.
func (c *TLSCertificates) load(certFile, keyFile string, switchFiles bool) error {
	cst, err := os.Stat(certFile)
	if err != nil {
		return fmt.Errorf("tls: certificate: %w", err)
	}
	kst, err := os.Stat(keyFile)
	if err != nil {
		return fmt.Errorf("tls: key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !switchFiles && (c.certFile != certFile || c.keyFile != keyFile) {
		return nil
	}
	c.certFile, c.keyFile = certFile, keyFile
	c.cert, c.pin = &cert, SPKIPin(cert.Leaf)
	c.certMod, c.keyMod = cst.ModTime(), kst.ModTime()
	return nil
}

// Pin is the SPKI pin of the certificate in use.
func (c *TLSCertificates) Pin() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pin
}

// GetCertificate is for tls.Config: it reloads changed files first.
func (c *TLSCertificates) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if certFile, _ := c.files(); certFile != "" && c.changed() {
		if err := c.Reload(); err != nil {
			c.log.Warn("certificate reload failed, keeping the old one", "err", err)
		} else {
			c.log.Info("certificate reloaded", "file", certFile, "pin", c.Pin())
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}

// changed reports, at most once per certCheckInterval, whether a file's
// mtime moved since the last load.
func (c *TLSCertificates) changed() bool {
	c.mu.Lock()
	now := time.Now()
	if now.Sub(c.lastCheck) < certCheckInterval {
		c.mu.Unlock()
		return false
	}
	c.lastCheck = now
	certMod, keyMod := c.certMod, c.keyMod
	certFile, keyFile := c.certFile, c.keyFile
	c.mu.Unlock()
	cst, err1 := os.Stat(certFile)
	kst, err2 := os.Stat(keyFile)
	if err1 != nil || err2 != nil {
		return false
	}
	return !cst.ModTime().Equal(certMod) || !kst.ModTime().Equal(keyMod)
}

// serverTLSConfig is the TLS configuration of a front end: TLS 1.2 at
// least (1.3 is preferred by Go's negotiation), the given ALPN protocols.
// TLS 1.2 is held to forward-secret AEAD suites, as BCP 195 (RFC 9325 4.2,
// which RFC 8310 points DoT at) recommends and HTTP/2 requires (RFC 9113
// 9.2.2); TLS 1.3 suites are not configurable and all qualify.
func (c *TLSCertificates) serverTLSConfig(alpn ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.GetCertificate,
		NextProtos:     alpn,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// certsOrSelfSigned returns certs, or when it is nil a self-signed
// certificate for the listen addresses: what each encrypted front end does
// without a configured certificate.
func certsOrSelfSigned(certs *TLSCertificates, addrs []string, log *slog.Logger) (*TLSCertificates, error) {
	if certs != nil {
		return certs, nil
	}
	return NewTLSCertificates("", "", addrs, log)
}
