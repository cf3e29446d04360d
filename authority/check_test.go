package authority

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zoneHead is five lines: every case's own records start at line 6.
const zoneHead = `$ORIGIN example.
$TTL 3600
@   SOA ns1 hostmaster 1 7200 3600 1209600 300
@   NS  ns1
ns1 A   192.0.2.1
`

func TestZoneFileChecks(t *testing.T) {
	cases := []struct {
		name string
		text string // the whole file
		want string // substring of the error ("" = must load)
	}{
		{"valid", zoneHead + "www A 192.0.2.2\n", ""},
		{"no SOA", "$ORIGIN example.\n$TTL 60\n@ NS ns1\nns1 A 192.0.2.1\n", "zone.db: no SOA record at the apex"},
		{"no NS at apex", "$ORIGIN example.\n$TTL 60\n\n@ SOA ns1 h 1 2 3 4 5\n", "zone.db:4: no NS records at the apex"},
		{"second SOA", zoneHead + "@ SOA ns2 hostmaster 2 7200 3600 1209600 300\n", "zone.db:6: more than one SOA"},
		{"SOA below apex", zoneHead + "sub SOA ns1 hostmaster 1 7200 3600 1209600 300\n", "zone.db:6: SOA record below the apex"},
		{"CNAME beside data", zoneHead + "www A 192.0.2.2\nwww CNAME ns1\n", "zone.db:7: CNAME beside other data (A)"},
		{"CNAME beside NSEC and RRSIG is fine", zoneHead +
			"www CNAME ns1\nwww NSEC ns1.example. CNAME RRSIG NSEC\n" +
			"www RRSIG CNAME 13 2 3600 20300101000000 20200101000000 12345 example. AAAA\n", ""},
		{"two CNAMEs", zoneHead + "www CNAME ns1\nwww CNAME ns2\n", "zone.db:7: more than one CNAME"},
		{"data below a delegation", zoneHead + "sub NS ns.sub\nns.sub A 192.0.2.9\nwww.sub TXT \"x\"\n", "zone.db:8: TXT record below a delegation point"},
		{"nested delegation", zoneHead + "sub NS ns.sub\nns.sub A 192.0.2.9\ndeep.sub NS ns.sub\n", "zone.db:8: NS record below a delegation point"},
		{"data at a delegation", zoneHead + "sub NS ns.other.net.\nsub MX 10 mail\n", "zone.db:7: MX record at the delegation point"},
		{"glue missing under delegation", zoneHead + "sub NS ns.sub\n", "zone.db:6: name server ns.sub.example. is inside the zone but has no A/AAAA"},
		{"address missing for in-zone NS", "$ORIGIN example.\n@ 60 SOA ns1 h 1 2 3 4 5\n@ 60 NS ns1\n@ 60 NS ns2\nns1 60 A 192.0.2.1\n", "zone.db:4: name server ns2.example. is inside the zone"},
		{"glue present", zoneHead + "sub NS ns.sub\nns.sub AAAA 2001:db8::1\n", ""},
		{"data below a DNAME", zoneHead + "dn DNAME example.net.\nx.dn A 192.0.2.9\n", "zone.db:7: data below the DNAME"},
		{"RDATA the parser lets through but cannot pack", zoneHead + "sub NS ns.other.net.\nsub DS 1 13 2 0\n", "zone.db:7: record cannot be written to the wire"},
		{"DS not at a delegation", zoneHead + "www DS 1 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n", "zone.db:6: DS record at www.example., which is not a delegation"},
		{"wildcard NS", zoneHead + "* NS ns1\n", "zone.db:6: NS records at a wildcard"},
		{"out of zone", zoneHead + "www.example.org. A 192.0.2.9\n", "zone.db:6: owner www.example.org. is outside the zone"},
		{"class not IN", zoneHead + "www CH A 192.0.2.9\n", "zone.db:6: class CH is not IN"},
		{"NSEC3 iterations", zoneHead + "@ NSEC3PARAM 1 0 151 -\n", "zone.db:6: NSEC3PARAM iterations 151 exceed the limit 150"},
		{"NSEC3 iterations at the limit", zoneHead + "@ NSEC3PARAM 1 0 150 -\n", ""},
		{"NSEC3 record iterations", zoneHead + "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom NSEC3 1 1 151 - 2vptu5timamqttgl4luu9kg21e0aor3s A\n", "zone.db:6: NSEC3 iterations 151 exceed"},
		{"multi-line record reports its first line", zoneHead + "; comment\n\nsub NS (\n  ns.sub ; no glue\n  )\n", "zone.db:8: name server ns.sub.example."},
		{"syntax error", zoneHead + "www A not-an-address\n", "zone.db: dns: bad A A: \"not-an-address\" at line: 6"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "zone.db")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			z, err := LoadZoneFile(path, "example.")
			if tc.want == "" {
				if err != nil {
					t.Fatalf("valid zone rejected: %v", err)
				}
				if z.Origin() != "example." {
					t.Errorf("origin %q", z.Origin())
				}
				return
			}
			if err == nil {
				t.Fatalf("bad zone accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestIncludeAndErrorsInIncludedFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("hosts.inc", "; hosts\nwww A 192.0.2.2\nmail A 192.0.2.3\n")
	main := write("main.db", zoneHead+"$INCLUDE hosts.inc\nftp A 192.0.2.4\n")
	z, err := LoadZoneFile(main, "example.")
	if err != nil {
		t.Fatalf("zone with $INCLUDE: %v", err)
	}
	names := map[string]bool{}
	for _, rr := range z.Records() {
		names[rr.Header().Name] = true
	}
	for _, want := range []string{"www.example.", "mail.example.", "ftp.example."} {
		if !names[want] {
			t.Errorf("%s missing after $INCLUDE", want)
		}
	}

	write("bad.inc", "; bad\n\nwww A 192.0.2.2\nwww CNAME mail\n")
	main = write("main2.db", zoneHead+"$INCLUDE bad.inc\nftp A 192.0.2.4\n")
	_, err = LoadZoneFile(main, "example.")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "bad.inc")+":4: CNAME beside other data") {
		t.Fatalf("error %v should name bad.inc:4", err)
	}
	// A check error after the include points back into the main file.
	main = write("main3.db", zoneHead+"$INCLUDE hosts.inc\nftp A 192.0.2.4\nftp CNAME www\n")
	_, err = LoadZoneFile(main, "example.")
	if err == nil || !strings.Contains(err.Error(), "main3.db:8: CNAME beside") {
		t.Fatalf("error %v should name main3.db:8", err)
	}
}

func TestParseZoneAndNewZoneErrors(t *testing.T) {
	z, err := ParseZone(strings.NewReader(zoneHead), "example.", "")
	if err != nil {
		t.Fatal(err)
	}
	if z.Signed() {
		t.Errorf("unsigned zone reports Signed")
	}
	_, err = ParseZone(strings.NewReader(zoneHead+"www CNAME a\nwww TXT b\n"), "example.", "text")
	if err == nil || !strings.Contains(err.Error(), "text:6: CNAME beside") {
		t.Errorf("ParseZone error %v", err)
	}
	rrs := parseRecords(t, "example.", zoneHead+"www CNAME a\nwww TXT b\n")
	_, err = NewZone("example.", rrs)
	if err == nil || !strings.Contains(err.Error(), "CNAME beside other data") || !strings.Contains(err.Error(), "www.example.\t3600\tIN\tCNAME\ta.example.") {
		t.Errorf("NewZone error %v should name the record", err)
	}
	if _, err := NewZone("bad..origin", nil); err == nil {
		t.Errorf("bad origin accepted")
	}
}

func TestRecordsAreCopies(t *testing.T) {
	rrs := parseRecords(t, "example.", zoneHead+"WWW A 192.0.2.2\n")
	z, err := NewZone("Example", rrs)
	if err != nil {
		t.Fatal(err)
	}
	if z.Origin() != "example." {
		t.Errorf("Origin %q", z.Origin())
	}
	rrs[3].(*dns.A).A.To4()[0] = 10 // the caller's slice is not retained
	got := z.Records()
	if len(got) != 4 {
		t.Fatalf("%d records", len(got))
	}
	for _, rr := range got {
		if a, ok := rr.(*dns.A); ok && a.Hdr.Name == "www.example." {
			if a.A.String() != "192.0.2.2" {
				t.Errorf("zone shares records with the caller: %v", a)
			}
			a.A.To4()[0] = 11
		}
	}
	for _, rr := range z.Records() {
		if a, ok := rr.(*dns.A); ok && a.Hdr.Name == "www.example." && a.A.String() != "192.0.2.2" {
			t.Errorf("Records does not return copies")
		}
	}
}

// The "nothing below a DNAME" rule looks up each name's ancestors, not
// every name for each DNAME: 4000 DNAMEs beside 4000 hosts took 3 s when
// it was quadratic, and a zone ten times that size took minutes. This is a
// guard against the quadratic walk coming back, not a speed target: 10000
// of each load in about 0.1 s (2-3 s with -race on a loaded machine) and
// would take about 20 s if quadratic (far more with -race), so the bound
// of 15 s leaves room for any load.
func TestManyDNAMEsLoadFast(t *testing.T) {
	const bound = 15 * time.Second
	var b strings.Builder
	b.WriteString(zoneHead)
	for i := range 10000 {
		fmt.Fprintf(&b, "d%d DNAME example.net.\nh%d A 192.0.2.2\n", i, i)
	}
	start := time.Now()
	if _, err := ParseZone(strings.NewReader(b.String()), "example.", "many.db"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > bound {
		t.Errorf("loading took %v: is the DNAME check quadratic again?", d)
	}
	_, err := ParseZone(strings.NewReader(b.String()+"a.b.d7 TXT \"below\"\n"), "example.", "many.db")
	if err == nil || !strings.Contains(err.Error(), ":20006: data below the DNAME at d7.example.") {
		t.Errorf("got %v, want the record two labels below d7's DNAME named", err)
	}
}
