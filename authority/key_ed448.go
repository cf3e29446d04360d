package authority

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/sigdata"
)

// ED448 (RFC 8080) keys: miekg/dns neither generates, reads, writes nor
// signs with them, so this file does, with circl's Ed448.

// generateED448 fills k's public key and returns the private key.
func generateED448(k *dns.DNSKEY) (ed448.PrivateKey, error) {
	pub, priv, err := ed448.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	k.PublicKey = base64.StdEncoding.EncodeToString(pub)
	return priv, nil
}

// ed448PrivateString is the BIND private-key file text of priv (v1.3:
// the 57-octet seed).
func ed448PrivateString(priv ed448.PrivateKey) string {
	return "Private-key-format: v1.3\nAlgorithm: 16 (ED448)\nPrivateKey: " +
		base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"
}

// readED448Private parses a BIND private-key file for ED448 and checks it
// against the public key of k.
func readED448Private(k *dns.DNSKEY, r io.Reader, file string) (ed448.PrivateKey, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	var seed string
	var alg bool
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "algorithm":
			alg = strings.HasPrefix(val, "16")
		case "privatekey":
			seed = val
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	if !alg || seed == "" {
		return nil, fmt.Errorf("%s: not an ED448 private key", file)
	}
	raw, err := base64.StdEncoding.DecodeString(seed)
	if err != nil || len(raw) != ed448.SeedSize {
		return nil, fmt.Errorf("%s: bad ED448 seed", file)
	}
	priv := ed448.NewKeyFromSeed(raw)
	pub := priv.Public().(ed448.PublicKey)
	if base64.StdEncoding.EncodeToString(pub) != strings.Join(strings.Fields(k.PublicKey), "") {
		return nil, fmt.Errorf("%s: private key does not match DNSKEY", file)
	}
	return priv, nil
}

// verifyED448 checks an ED448 RRSIG; miekg/dns's Verify cannot.
func verifyED448(sig *dns.RRSIG, k *dns.DNSKEY, rrset []dns.RR) error {
	pub, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(k.PublicKey), ""))
	if err != nil || len(pub) != ed448.PublicKeySize {
		return fmt.Errorf("bad ED448 public key")
	}
	raw, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil {
		return fmt.Errorf("bad signature encoding: %w", err)
	}
	data, err := sigdata.Build(rrset, sig)
	if err != nil {
		return err
	}
	if !ed448.Verify(pub, data, raw, "") {
		return fmt.Errorf("ED448 signature does not verify")
	}
	return nil
}
