package secondary

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParseKey(t *testing.T) {
	good, err := ParseKey("hmac-sha512:Xfr-Key:" + testSecret)
	if err != nil || good.Name != "xfr-key." || good.Algorithm != dns.HmacSHA512 || good.Secret != testSecret {
		t.Fatalf("ParseKey = %+v, %v", good, err)
	}
	for in, want := range map[string]string{
		"hmac-sha256:k":                        "want ALGORITHM:NAME:SECRET",
		"hmac-md5:k:" + testSecret:             `algorithm "hmac-md5" is not hmac-sha256 or hmac-sha512`,
		"hmac-sha256:k:not*base64":             "the secret is not base64",
		"hmac-sha256:k:c2hvcnQ=":               "the secret is 5 bytes, want at least 16",
		"hmac-sha256::" + testSecret:           "is not a domain name",
		"hmac-sha256:a..b:" + testSecret:       "is not a domain name",
		"hmac-sha256:k:" + testSecret + "oops": "not base64",
	} {
		_, err := ParseKey(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKey(%q) = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("ParseKey(%q): the error shows the secret: %v", in, err)
		}
	}
}

func TestParseZone(t *testing.T) {
	keys := map[string]*Key{"xfr-key.": {Name: "xfr-key.", Algorithm: dns.HmacSHA256, Secret: testSecret}}
	z, err := ParseZone("zone=Example.COM primary=192.0.2.1,[2001:db8::1]:5353 primary=192.0.2.2:54 key=xfr-key allow-notify=198.51.100.0/24,203.0.113.9", keys)
	if err != nil {
		t.Fatal(err)
	}
	wantPrim := []netip.AddrPort{mustAddr("192.0.2.1:53"), mustAddr("[2001:db8::1]:5353"), mustAddr("192.0.2.2:54")}
	if z.Origin != "example.com." || len(z.Primaries) != 3 || z.Key != keys["xfr-key."] || len(z.AllowNotify) != 2 {
		t.Fatalf("ParseZone = %+v", z)
	}
	for i, p := range wantPrim {
		if z.Primaries[i] != p {
			t.Errorf("primary %d = %s, want %s", i, z.Primaries[i], p)
		}
	}
	if _, err := ParseZone("zone=example.com primary=192.0.2.1 source=192.0.2.9", nil); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"primary=192.0.2.1":                                     "no zone=NAME",
		"zone=example.com":                                      "no primary=ADDR[:PORT]",
		"zone=example.com primary=ns1.example.net":              `primary "ns1.example.net": want ADDR`,
		"zone=example.com primary=192.0.2.1:0":                  "port 0",
		"zone=example.com primary=192.0.2.1 key=nokey":          `key "nokey" is not defined`,
		"zone=example.com primary=192.0.2.1 source=here":        `source "here" is not an IP address`,
		"zone=example.com primary=192.0.2.1 source=2001:db8::9": "different address families",
		"zone=example.com primary=192.0.2.1 colour=blue":        `unknown field "colour"`,
		"zone=example.com primary=192.0.2.1 primary":            "want KEY=VALUE",
		"zone=a zone=b primary=192.0.2.1":                       "zone= given twice",
		"zone=a..b primary=192.0.2.1":                           "is not a domain name",
		"zone=a primary=192.0.2.1 allow-notify=somewhere":       "neither an address nor a CIDR prefix",
	} {
		_, err := ParseZone(in, keys)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseZone(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestSerialNewer(t *testing.T) {
	for _, tc := range []struct {
		b, a uint32
		want bool
	}{
		{2, 1, true},
		{1, 2, false},
		{1, 1, false},
		{0, 0xFFFFFFFF, true}, // wrapped (RFC 1982 3.2)
		{0xFFFFFFFF, 0, false},
		{1 << 31, 0, false}, // undefined distance: not followed
		{1<<31 - 1, 0, true},
		{100, 1<<31 + 101, true},
	} {
		if got := serialNewer(tc.b, tc.a); got != tc.want {
			t.Errorf("serialNewer(%d, %d) = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}
