package roothints

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestDefaultHints(t *testing.T) {
	h := Default()
	if len(h.NS) != 13 {
		t.Fatalf("%d NS, want 13", len(h.NS))
	}
	var v4, v6 int
	for i, ns := range h.NS {
		want := string(rune('a'+i)) + ".root-servers.net."
		if ns.Ns != want || ns.Hdr.Name != "." {
			t.Errorf("NS %d = %s %s, want . %s", i, ns.Hdr.Name, ns.Ns, want)
		}
		addrs := h.Addrs[ns.Ns]
		if len(addrs) != 2 || !addrs[0].Is4() || !addrs[1].Is6() {
			t.Errorf("%s addresses %v, want one IPv4 and one IPv6", ns.Ns, addrs)
		}
		for _, a := range addrs {
			if a.Is4() {
				v4++
			} else {
				v6++
			}
		}
	}
	if v4 != 13 || v6 != 13 {
		t.Fatalf("%d A and %d AAAA, want 13 and 13", v4, v6)
	}
	// B-root was renumbered in 2023: a stale copy would still say 199.9.14.201.
	b := h.Addrs["b.root-servers.net."]
	if b[0] != netip.MustParseAddr("170.247.170.2") || b[1] != netip.MustParseAddr("2801:1b8:10::b") {
		t.Errorf("b.root-servers.net. = %v, want the 2023 addresses", b)
	}
	if h.AllLoopback() {
		t.Error("the real root is not loopback")
	}
	rrs := h.Records()
	if len(rrs) != 13+26 {
		t.Fatalf("Records() gave %d RRs, want 39", len(rrs))
	}
	// Records are fresh copies: changing them leaves the hints alone.
	rrs[0].(*dns.NS).Ns = "changed."
	if h.NS[0].Ns != "a.root-servers.net." {
		t.Error("Records() shares the NS records")
	}
	// Every call gives a fresh value.
	Default().NS[0].Ns = "changed."
	if Default().NS[0].Ns != "a.root-servers.net." {
		t.Error("Default() shares state between calls")
	}
}

func TestDefaultAnchors(t *testing.T) {
	a := DefaultAnchors()
	want := map[uint16]string{
		20326: "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
		38696: "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
	}
	if len(a.DS) != 2 || len(a.DNSKEY) != 0 {
		t.Fatalf("%d DS and %d DNSKEY, want 2 and 0", len(a.DS), len(a.DNSKEY))
	}
	for _, ds := range a.DS {
		if ds.Hdr.Name != "." || ds.Algorithm != dns.RSASHA256 || ds.DigestType != dns.SHA256 || want[ds.KeyTag] != ds.Digest {
			t.Errorf("unexpected anchor %v", ds)
		}
		delete(want, ds.KeyTag)
	}
	if len(want) != 0 {
		t.Errorf("missing anchors %v", want)
	}
	if z := a.Zones(); len(z) != 1 || z[0] != "." {
		t.Errorf("Zones() = %v", z)
	}
}

// ksk2017 is the root's KSK-2017 public key, as the root zone publishes it.
const ksk2017 = "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU="

// splitEvery cuts s into pieces of n characters joined by sep.
func splitEvery(s string, n int, sep string) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), sep)
}

func TestDNSKEYAnchorMatchesDefaultDS(t *testing.T) {
	file := "; BIND style, key split over lines\n. 172800 IN DNSKEY 257 3 8 (\n\t" + splitEvery(ksk2017, 56, "\n\t") + "\n) ; KSK-2017\n"
	a, err := ParseAnchors(strings.NewReader(file), "ksk.key")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.DNSKEY) != 1 {
		t.Fatalf("%d DNSKEY, want 1", len(a.DNSKEY))
	}
	k := a.DNSKEY[0]
	if k.KeyTag() != 20326 {
		t.Fatalf("key tag %d, want 20326", k.KeyTag())
	}
	ds := k.ToDS(dns.SHA256)
	var found bool
	for _, d := range DefaultAnchors().DS {
		if d.KeyTag == ds.KeyTag && strings.EqualFold(d.Digest, ds.Digest) {
			found = true
		}
	}
	if !found {
		t.Fatalf("ToDS %v matches no default anchor", ds)
	}
}

func TestParseHintsVariants(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantNS  []string
		wantLen map[string]int
		loop    bool
	}{
		{"full named.root style", ".  3600000 IN NS a.lab.\na.lab. 3600000 IN A 127.0.0.1\n", []string{"a.lab."}, map[string]int{"a.lab.": 1}, true},
		{"no TTL, no class", ". NS a.lab.\na.lab. A 127.0.0.1\na.lab. AAAA ::1\n", []string{"a.lab."}, map[string]int{"a.lab.": 2}, true},
		{"class before TTL", ". IN 3600 NS a.lab.\na.lab. IN 60 A 127.0.0.1\n", []string{"a.lab."}, map[string]int{"a.lab.": 1}, true},
		// The owner "." is absolute; the relative target "a" is a.lab.
		{"$ORIGIN and relative names", "$ORIGIN lab.\n$TTL 60\n. NS a\na A 127.0.0.2\n", []string{"a.lab."}, map[string]int{"a.lab.": 1}, true},
		{"upper case names, comments, blank lines, duplicates",
			"; lab hints\n\n.   NS   NS1.LAB. ; first\n.   NS   ns2.lab.\n.   NS   ns1.lab.\nns1.lab. A 127.0.0.3\nNS1.LAB. A 127.0.0.3\nns2.lab. AAAA ::1\n",
			[]string{"ns1.lab.", "ns2.lab."}, map[string]int{"ns1.lab.": 1, "ns2.lab.": 1}, true},
		{"addresses for other names ignored", ". NS a.lab.\na.lab. A 192.0.2.1\nother.lab. A 127.0.0.1\n", []string{"a.lab."}, map[string]int{"a.lab.": 1}, false},
		{"no trailing newline", ". NS a.lab.\na.lab. A 127.0.0.1", []string{"a.lab."}, map[string]int{"a.lab.": 1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHints(strings.NewReader(tc.in), "test.hints")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ns := range h.NS {
				got = append(got, ns.Ns)
			}
			if strings.Join(got, " ") != strings.Join(tc.wantNS, " ") {
				t.Errorf("NS %v, want %v", got, tc.wantNS)
			}
			if len(h.Addrs) != len(tc.wantLen) {
				t.Errorf("Addrs %v, want %v", h.Addrs, tc.wantLen)
			}
			for name, n := range tc.wantLen {
				if len(h.Addrs[name]) != n {
					t.Errorf("%s has %v, want %d addresses", name, h.Addrs[name], n)
				}
			}
			if h.AllLoopback() != tc.loop {
				t.Errorf("AllLoopback = %v, want %v", h.AllLoopback(), tc.loop)
			}
		})
	}
}

func TestParseHintsErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine int    // 0: no line expected
		wantMsg  string // part of the message
	}{
		{"empty", "", 0, "no NS records"},
		{"only comments", "; nothing\n", 0, "no NS records"},
		{"only addresses", "a.lab. A 127.0.0.1\n", 0, "no NS records"},
		{"NS without address", ". NS a.lab.\n. NS b.lab.\na.lab. A 127.0.0.1\n", 2, "b.lab. has no A or AAAA"},
		{"NS not for the root", "\nlab. NS a.lab.\na.lab. A 127.0.0.1\n", 2, "not for the root"},
		{"other type", ". NS a.lab.\na.lab. A 127.0.0.1\n\n\na.lab. MX 10 mail.lab.\n", 5, "MX record"},
		{"other class", ". NS a.lab.\na.lab. CH A 127.0.0.1\n", 2, "not IN"},
		{"bad address", ". NS a.lab.\n; comment\na.lab. A 127.0.0.300\n", 3, "bad A"},
		{"unknown type", ". NS a.lab.\na.lab. BOGUS 1\n", 2, ""},
		{"$INCLUDE refused", "$INCLUDE /etc/passwd\n", 1, "include"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHints(strings.NewReader(tc.in), "lab.hints")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "lab.hints") || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.wantMsg)) {
				t.Errorf("error %q lacks file name or %q", err, tc.wantMsg)
			}
			var le *LineError
			if tc.wantLine > 0 {
				if !errors.As(err, &le) || le.Line != tc.wantLine || le.File != "lab.hints" {
					t.Errorf("error %q: want lab.hints:%d", err, tc.wantLine)
				}
			}
		})
	}
}

func TestParseAnchorsVariants(t *testing.T) {
	digest := "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
	tests := []struct {
		name      string
		in        string
		ds, keys  int
		wantZones []string
	}{
		{"DS as IANA writes it", ". IN DS 20326 8 2 " + digest + "\n", 1, 0, []string{"."}},
		{"no TTL, no class", ". DS 20326 8 2 " + digest + "\n", 1, 0, []string{"."}},
		{"digest split by spaces", ". 3600 IN DS 20326 8 2 " + splitEvery(digest, 16, " ") + "\n", 1, 0, []string{"."}},
		{"digest in lower case over lines", ". DS 20326 8 2 (\n " + splitEvery(strings.ToLower(digest), 32, "\n ") + " )\n", 1, 0, []string{"."}},
		{"DNSKEY split by spaces", ". IN DNSKEY 257 3 8 " + splitEvery(ksk2017, 40, " ") + "\n", 0, 1, []string{"."}},
		{"several zones, $ORIGIN", "$ORIGIN lab.\n@ DS 20326 8 2 " + digest + "\nsub DNSKEY 256 3 8 " + ksk2017 + "\n. DS 1 8 2 " + digest + "\n", 2, 1, []string{".", "lab.", "sub.lab."}},
		{"comments and blank lines", "; anchors\n\n. DS 20326 8 2 " + digest + " ; KSK-2017\n\n", 1, 0, []string{"."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseAnchors(strings.NewReader(tc.in), "test.anchors")
			if err != nil {
				t.Fatal(err)
			}
			if len(a.DS) != tc.ds || len(a.DNSKEY) != tc.keys {
				t.Fatalf("%d DS %d DNSKEY, want %d %d", len(a.DS), len(a.DNSKEY), tc.ds, tc.keys)
			}
			if z := strings.Join(a.Zones(), " "); z != strings.Join(tc.wantZones, " ") {
				t.Errorf("Zones() = %s, want %v", z, tc.wantZones)
			}
			for _, ds := range a.DS {
				if ds.Digest != digest {
					t.Errorf("digest %s, want %s", ds.Digest, digest)
				}
			}
		})
	}
}

func TestParseAnchorsErrors(t *testing.T) {
	digest := "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantMsg  string
	}{
		{"other type", "; x\n. NS a.lab.\n", 2, "NS record"},
		{"digest not hex", ". DS 20326 8 2 XYZ\n", 1, "not hex"},
		{"digest too short", "\n\n. DS 20326 8 2 " + digest[:62] + "\n", 3, "needs 32 bytes"},
		{"SHA-1 digest of SHA-256 length", ". DS 20326 8 1 " + digest + "\n", 1, "needs 20 bytes"},
		{"DNSKEY not a zone key", ". DNSKEY 1 3 8 " + ksk2017 + "\n", 1, "not a zone key"},
		{"DNSKEY protocol", ". DNSKEY 257 2 8 " + ksk2017 + "\n", 1, "protocol 2"},
		{"DNSKEY revoked", ". DNSKEY 385 3 8 " + ksk2017 + "\n", 1, "REVOKE"},
		{"DS missing digest", ". DS 20326 8 2\n", 1, ""},
		{"unbalanced parenthesis", ". DS 20326 8 2 (\n" + digest + "\n", 0, ""},
		{"class CH", ". CH DS 20326 8 2 " + digest + "\n", 1, "not IN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAnchors(strings.NewReader(tc.in), "bad.anchors")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "bad.anchors:") || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q lacks bad.anchors:line or %q", err, tc.wantMsg)
			}
			var le *LineError
			if tc.wantLine > 0 && (!errors.As(err, &le) || le.Line != tc.wantLine) {
				t.Errorf("error %q: want line %d", err, tc.wantLine)
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hints := write("lab.hints", ". NS ns.lab.\nns.lab. A 127.0.0.53\nns.lab. AAAA ::1\n")
	h, err := LoadHints(hints)
	if err != nil || !h.AllLoopback() {
		t.Fatalf("LoadHints: %v, loopback %v", err, h != nil && h.AllLoopback())
	}
	if _, err := LoadHints(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	bad := write("bad.hints", ". NS ns.lab.\n")
	if _, err := LoadHints(bad); err == nil || !strings.Contains(err.Error(), bad+":1:") {
		t.Errorf("bad hints error %v lacks %s:1:", err, bad)
	}

	a1 := write("a1.anchors", ". DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n")
	a2 := write("a2.anchors", "lab. DNSKEY 257 3 8 "+ksk2017+"\n")
	a, err := LoadAnchors(a1, a2)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.DS) != 1 || len(a.DNSKEY) != 1 || strings.Join(a.Zones(), " ") != ". lab." {
		t.Fatalf("merged anchors %+v", a)
	}
	if ds, keys := a.ForZone("LAB"); len(ds) != 0 || len(keys) != 1 {
		t.Errorf("ForZone(LAB) = %v %v", ds, keys)
	}
	empty := write("empty.anchors", "; nothing\n")
	if _, err := LoadAnchors(empty); err == nil {
		t.Error("an anchors file with no anchors was accepted")
	}
	if _, err := LoadAnchors(a1, filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing anchors file was accepted")
	}
	badA := write("bad.anchors", "\n. DS 1 8 2 00\n")
	if _, err := LoadAnchors(badA); err == nil || !strings.Contains(err.Error(), badA+":2:") {
		t.Errorf("bad anchors error %v lacks %s:2:", err, badA)
	}
}

func TestAnchorsRecords(t *testing.T) {
	a := DefaultAnchors()
	rrs := a.Records()
	if len(rrs) != len(a.DS)+len(a.DNSKEY) || len(rrs) != 2 {
		t.Fatalf("Records() = %d records, want the 2 root DS", len(rrs))
	}
	tags := map[uint16]bool{}
	for _, rr := range rrs {
		ds, ok := rr.(*dns.DS)
		if !ok {
			t.Fatalf("unexpected %T", rr)
		}
		tags[ds.KeyTag] = true
		ds.KeyTag = 0 // a copy: the anchors themselves must not change
	}
	if !tags[20326] || !tags[38696] {
		t.Fatalf("tags %v, want 20326 and 38696", tags)
	}
	if a.DS[0].KeyTag == 0 {
		t.Fatal("Records() returned the anchors themselves, not copies")
	}
}
