package authority

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		alg     uint8
		flags   uint16
		wantErr bool
	}{
		{dns.RSASHA256, FlagsKSK, false},
		{dns.ECDSAP256SHA256, FlagsZSK, false},
		{dns.ECDSAP384SHA384, FlagsKSK, false},
		{dns.ED25519, FlagsKSK, false},
		{dns.RSAMD5, FlagsKSK, true},
		{dns.ED448, FlagsKSK, false},
		{dns.ECDSAP256SHA256 + 100, FlagsKSK, true},
		{dns.ECDSAP256SHA256, 0, true}, // no zone bit
	}
	for _, tc := range tests {
		k, err := GenerateKey("Example.TEST", tc.alg, tc.flags)
		if (err != nil) != tc.wantErr {
			t.Errorf("GenerateKey(alg %d, flags %d) error %v, wantErr %v", tc.alg, tc.flags, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if k.DNSKEY.Hdr.Name != "example.test." || k.DNSKEY.Algorithm != tc.alg || k.DNSKEY.Flags != tc.flags || k.DNSKEY.Protocol != 3 {
			t.Errorf("key %v", k.DNSKEY)
		}
		if err := k.selfTest(); err != nil {
			t.Errorf("alg %d: %v", tc.alg, err)
		}
		if k.IsSEP() != (tc.flags&dns.SEP != 0) {
			t.Errorf("IsSEP = %v for flags %d", k.IsSEP(), tc.flags)
		}
	}
}

func TestSaveLoadKey(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []uint8{dns.ECDSAP256SHA256, dns.ED25519, dns.RSASHA256, dns.ED448} {
		k := signMustKey(t, "example.test.", alg, FlagsKSK)
		pub, priv, err := k.Save(dir)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(pub) != k.FileBase()+".key" {
			t.Errorf("pub file %s", pub)
		}
		got, err := LoadKey(pub, priv)
		if err != nil {
			t.Fatalf("alg %d: %v", alg, err)
		}
		if got.DNSKEY.PublicKey != k.DNSKEY.PublicKey || got.Tag() != k.Tag() {
			t.Errorf("alg %d: loaded %v, saved %v", alg, got.DNSKEY, k.DNSKEY)
		}
		if got.DS(dns.SHA256).Digest != k.DS(dns.SHA256).Digest {
			t.Errorf("alg %d: DS differs after load", alg)
		}
	}

	// A private key that does not belong to the public one is refused.
	a := signMustKey(t, "example.test.", dns.ECDSAP256SHA256, FlagsKSK)
	b := signMustKey(t, "example.test.", dns.ECDSAP256SHA256, FlagsKSK)
	pubA, _, err := a.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, privB, err := b.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(pubA, privB); err == nil {
		t.Error("LoadKey accepted a mismatched private key")
	}
	if _, err := LoadKey(filepath.Join(dir, "missing.key"), privB); err == nil {
		t.Error("LoadKey accepted a missing file")
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("example.test. 3600 IN A 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(bad, privB); err == nil {
		t.Error("LoadKey accepted a .key file without DNSKEY")
	}
}

func TestDSDigests(t *testing.T) {
	k := signMustKey(t, "example.test.", dns.ECDSAP256SHA256, FlagsKSK)
	for _, d := range []uint8{dns.SHA1, dns.SHA256, dns.SHA384} {
		ds := k.DS(d)
		if ds == nil || ds.DigestType != d || ds.KeyTag != k.Tag() || ds.Algorithm != dns.ECDSAP256SHA256 || ds.Hdr.Name != "example.test." {
			t.Errorf("DS(%d) = %v", d, ds)
		}
	}
	if k.DS(99) != nil {
		t.Error("DS(99) not nil")
	}
}
