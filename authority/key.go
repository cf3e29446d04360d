package authority

import (
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// DNSKEY flag values for the two roles a key can have (RFC 4034 2.1.1,
// RFC 3757). A key with the SEP bit is a KSK, or a CSK when it is the only
// key; one without is a ZSK.
const (
	FlagsZSK uint16 = dns.ZONE           // 256
	FlagsKSK uint16 = dns.ZONE | dns.SEP // 257, also used for a CSK
)

// signDefaultKeyTTL is the DNSKEY TTL a generated key starts with. Sign replaces
// it with SignOptions.KeyTTL or the SOA TTL.
const signDefaultKeyTTL = 3600

// Key is a DNSSEC signing key: the public DNSKEY record and the private key
// that signs with it.
type Key struct {
	DNSKEY  *dns.DNSKEY
	Private crypto.Signer
}

// GenerateKey makes a new key for origin. alg is a DNSSEC algorithm number:
// 8 (RSASHA256, 2048 bits), 10 (RSASHA512, 2048 bits), 13 (ECDSAP256SHA256),
// 14 (ECDSAP384SHA384), 15 (ED25519) or 16 (ED448). flags is FlagsKSK (257, also for a
// CSK) or FlagsZSK (256).
func GenerateKey(origin string, alg uint8, flags uint16) (*Key, error) {
	origin = dnsname.Canonical(origin)
	if _, ok := dns.IsDomainName(origin); !ok {
		return nil, fmt.Errorf("generate key: bad origin %q", origin)
	}
	if flags&dns.ZONE == 0 {
		return nil, fmt.Errorf("generate key for %s: flags %d lack the zone key bit", origin, flags)
	}
	bits, err := signKeyBits(alg)
	if err != nil {
		return nil, fmt.Errorf("generate key for %s: %w", origin, err)
	}
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: signDefaultKeyTTL},
		Flags:     flags,
		Protocol:  3,
		Algorithm: alg,
	}
	var priv crypto.PrivateKey
	// miekg/dns refuses to sign with key tag 0 (about 1 key in 65536), and a
	// KSK must also keep a usable tag once its REVOKE bit is set (RFC 5011).
	for attempt := 0; ; attempt++ {
		if alg == dns.ED448 {
			priv, err = generateED448(k)
		} else {
			priv, err = k.Generate(bits)
		}
		if err != nil {
			return nil, fmt.Errorf("generate %s key for %s: %w", dns.AlgorithmToString[alg], origin, err)
		}
		if usableTags(k) {
			break
		}
		if attempt == maxKeyTagRetries {
			return nil, fmt.Errorf("generate key for %s: key tag 0 %d times", origin, attempt+1)
		}
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("generate key for %s: private key %T cannot sign", origin, priv)
	}
	return &Key{DNSKEY: k, Private: signer}, nil
}

// maxKeyTagRetries bounds the regeneration of keys with tag 0; with odds
// of 1 in 65536 per key, more than one retry is already a broken generator.
const maxKeyTagRetries = 8

// usableTags reports whether k's key tag, and for a SEP key also the tag
// with the REVOKE bit set, are not 0.
func usableTags(k *dns.DNSKEY) bool {
	if k.KeyTag() == 0 {
		return false
	}
	if k.Flags&dns.SEP == 0 {
		return true
	}
	revoked := *k
	revoked.Flags |= dns.REVOKE
	return revoked.KeyTag() != 0
}

// signKeyBits is the key size GenerateKey asks for per algorithm.
func signKeyBits(alg uint8) (int, error) {
	switch alg {
	case dns.RSASHA256, dns.RSASHA512:
		return 2048, nil
	case dns.ECDSAP256SHA256, dns.ED25519:
		return 256, nil
	case dns.ED448:
		return 456, nil
	case dns.ECDSAP384SHA384:
		return 384, nil
	}
	return 0, fmt.Errorf("algorithm %d not supported for signing", alg)
}

// LoadKey reads a key pair in BIND's format: pubFile holds the DNSKEY record
// (K<zone>+<alg>+<tag>.key) and privFile the private key
// (K<zone>+<alg>+<tag>.private). It checks that the two belong together.
func LoadKey(pubFile, privFile string) (*Key, error) {
	pub, err := os.ReadFile(pubFile)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	dnskey, err := signParseKeyFile(string(pub), pubFile)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(privFile)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	defer f.Close()
	var priv crypto.PrivateKey
	if dnskey.Algorithm == dns.ED448 {
		priv, err = readED448Private(dnskey, f, privFile)
	} else {
		priv, err = dnskey.ReadPrivateKey(f, privFile)
	}
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", privFile, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load key %s: private key %T cannot sign", privFile, priv)
	}
	k := &Key{DNSKEY: dnskey, Private: signer}
	if err := k.selfTest(); err != nil {
		return nil, fmt.Errorf("load key %s with %s: %w", privFile, pubFile, err)
	}
	return k, nil
}

// signParseKeyFile finds the one DNSKEY record in a BIND .key file, which may
// carry comment lines and $TTL/$ORIGIN-free records.
func signParseKeyFile(text, file string) (*dns.DNSKEY, error) {
	zp := dns.NewZoneParser(strings.NewReader(text), "", file)
	var found *dns.DNSKEY
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		k, isKey := rr.(*dns.DNSKEY)
		if !isKey {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("load key %s: more than one DNSKEY", file)
		}
		found = k
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("load key %s: %w", file, err)
	}
	if found == nil {
		return nil, fmt.Errorf("load key %s: no DNSKEY record", file)
	}
	found.Hdr.Name = dnsname.Canonical(found.Hdr.Name)
	return found, nil
}

// selfTest signs a probe record and verifies it with the public key, so a
// private key that does not match its DNSKEY is caught at load time rather
// than by every validator later.
func (k *Key) selfTest() error {
	probe := &dns.TXT{Hdr: dns.RR_Header{Name: k.DNSKEY.Hdr.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"probe"}}
	now := time.Now()
	sig := &dns.RRSIG{
		Algorithm:  k.DNSKEY.Algorithm,
		KeyTag:     k.DNSKEY.KeyTag(),
		SignerName: k.DNSKEY.Hdr.Name,
		Inception:  uint32(now.Unix()),
		Expiration: uint32(now.Add(time.Hour).Unix()),
	}
	if err := signWith(sig, k, []dns.RR{probe}); err != nil {
		return fmt.Errorf("sign probe: %w", err)
	}
	if err := VerifySignature(sig, k.DNSKEY, []dns.RR{probe}); err != nil {
		return fmt.Errorf("private key does not match DNSKEY: %w", err)
	}
	return nil
}

// IsSEP reports whether the key has the Secure Entry Point bit: a KSK or CSK.
func (k *Key) IsSEP() bool { return k.DNSKEY.Flags&dns.SEP != 0 }

// Tag is the key tag (RFC 4034 appendix B).
func (k *Key) Tag() uint16 { return k.DNSKEY.KeyTag() }

// FileBase is BIND's file name stem for the key: K<zone>+<alg>+<tag>.
func (k *Key) FileBase() string {
	return fmt.Sprintf("K%s+%03d+%05d", k.DNSKEY.Hdr.Name, k.DNSKEY.Algorithm, k.Tag())
}

// Save writes the key as BIND .key and .private files into dir, the private
// one readable by the owner only, and returns their paths. Each file is
// written atomically (WriteFileAtomic): a crash leaves the old file or the
// new one, never half a key.
func (k *Key) Save(dir string) (pubFile, privFile string, err error) {
	base := filepath.Join(dir, k.FileBase())
	pubFile, privFile = base+".key", base+".private"
	text := k.DNSKEY.PrivateKeyString(k.Private)
	if p, ok := k.Private.(ed448.PrivateKey); ok {
		text = ed448PrivateString(p)
	}
	// The private half first: a .key file alone is harmless, a DNSKEY
	// published without its private key would be a key nobody can use.
	if err := WriteFileAtomic(privFile, []byte(text), 0o600); err != nil {
		return "", "", fmt.Errorf("save key: %w", err)
	}
	if err := WriteFileAtomic(pubFile, []byte(k.DNSKEY.String()+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("save key: %w", err)
	}
	return pubFile, privFile, nil
}

// WriteFileAtomic replaces path with data: it writes a temporary file in
// the same directory with mode perm, syncs it, renames it over path and
// syncs the directory, so that readers and a crash see the old content or
// the new, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// signWith signs rrset into sig (whose algorithm, key tag, signer and
// window are set) with k: through miekg/dns, or signRaw for ED448.
func signWith(sig *dns.RRSIG, k *Key, rrset []dns.RR) error {
	if k.DNSKEY.Algorithm == dns.ED448 {
		return signRaw(sig, k.Private, rrset)
	}
	return sig.Sign(k.Private, rrset)
}

// VerifySignature checks sig over rrset with key cryptographically (not
// its validity period): miekg/dns's RRSIG.Verify, plus ED448, which
// miekg/dns cannot verify.
func VerifySignature(sig *dns.RRSIG, key *dns.DNSKEY, rrset []dns.RR) error {
	if key.Algorithm == dns.ED448 {
		if sig.KeyTag != key.KeyTag() || sig.Algorithm != key.Algorithm {
			return dns.ErrKey
		}
		return verifyED448(sig, key, rrset)
	}
	return sig.Verify(key, rrset)
}
