package authority

import (
	"strings"
	"testing"
)

// TestParseZoneOriginFromSOA: with no origin given, the SOA owner is the
// zone's origin, so `sextant serve --zone FILE` needs no origin flag.
func TestParseZoneOriginFromSOA(t *testing.T) {
	text := "$ORIGIN corp.internal.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 10.0.0.53\n"
	z, err := ParseZone(strings.NewReader(text), "", "corp.zone")
	if err != nil {
		t.Fatal(err)
	}
	if z.Origin() != "corp.internal." {
		t.Fatalf("origin %q, want corp.internal.", z.Origin())
	}
	// A file without SOA still fails with the usual check.
	if _, err := ParseZone(strings.NewReader("www.corp.internal. 300 A 10.0.0.1\n"), "", "bad.zone"); err == nil {
		t.Fatal("a zone without SOA was accepted")
	}
}
