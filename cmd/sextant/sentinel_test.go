package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/lab"
)

// TestServeRootKeySentinel: RFC 8509 through `sextant serve` on the lab.
// The sentinel names live under the lab's signed wildcard (wild.test.), so
// each resolves Secure; "is-ta" with the root's anchor and "not-ta" with
// another tag are answered, the other two are SERVFAIL. Without
// validation (CD=1, or --no-dnssec) the sentinel does nothing.
func TestServeRootKeySentinel(t *testing.T) {
	dir := startDNSSECLab(t)
	tag := rootAnchorTag(t, filepath.Join(dir, lab.FileRootDS))
	other := tag + 1
	hints := filepath.Join(dir, lab.FileRootHints)
	const validating, off = "127.52.255.21:53", "127.52.255.22:53"
	startServe(t, validating, "--root-hints", hints, "--trust-anchor", filepath.Join(dir, lab.FileRootDS))
	startServe(t, off, "--root-hints", hints, "--trust-anchor", filepath.Join(dir, lab.FileRootDS), "--no-dnssec")
	name := func(kind string, tag uint16) string {
		return fmt.Sprintf("root-key-sentinel-%s-%05d.wild.test.", kind, tag)
	}
	tests := []struct {
		server, qname string
		cd            bool
		want          int
	}{
		{validating, name("is-ta", tag), false, dns.RcodeSuccess},
		{validating, name("is-ta", other), false, dns.RcodeServerFailure},
		{validating, name("not-ta", tag), false, dns.RcodeServerFailure},
		{validating, name("not-ta", other), false, dns.RcodeSuccess},
		{validating, name("is-ta", other), true, dns.RcodeSuccess},
		{validating, name("not-ta", tag), true, dns.RcodeSuccess},
		{off, name("is-ta", other), false, dns.RcodeSuccess},
		{off, name("not-ta", tag), false, dns.RcodeSuccess},
	}
	for _, tt := range tests {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m := digDNSSEC(t, tt.server, tt.qname, qtype, tt.cd)
			if m.Rcode != tt.want {
				t.Errorf("%s %s CD=%v at %s: %s, want %s", tt.qname, dns.TypeToString[qtype], tt.cd, tt.server,
					dns.RcodeToString[m.Rcode], dns.RcodeToString[tt.want])
			}
		}
	}
}

// rootAnchorTag reads the key tag of the lab's root DS anchor.
func rootAnchorTag(t *testing.T, file string) uint16 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(strings.NewReader(string(b)), ".", file)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if ds, ok := rr.(*dns.DS); ok {
			return ds.KeyTag
		}
	}
	t.Fatalf("no DS in %s: %v", file, zp.Err())
	return 0
}
