package dnsname

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestIsAtOrBelow(t *testing.T) {
	tests := []struct {
		child, parent string
		want          bool
	}{
		{"www.example.", "example.", true},
		{"example.", "example.", true},
		{"WWW.Example.", "example.", true},
		{"example.", "www.example.", false},
		{"wwwexample.", "example.", false},
		{"anything.", ".", true},
		{".", ".", true},
		// An escaped dot is label content: one label "ns.attacker" under example.
		{`ns\.attacker.example.`, "attacker.example.", false},
		{`ns\.attacker.example.`, "example.", true},
		{`ns\046attacker.example.`, "attacker.example.", false},
		// An escaped backslash ends its label; the dot after it separates.
		{`ns\\.attacker.example.`, "attacker.example.", true},
		{`a\\\.b.`, "b.", false},
		{`x.\\.b.`, `\.b.`, false},
		{`a.\.b.`, `\.b.`, true},
		// Non-ASCII octets are compared exactly.
		{`a\200b.example.`, `\200b.example.`, false},
		{`x.\195\128.example.`, `\195\160.example.`, false},
		{"x.\xc3\x80.example.", "\xc3\xa0.example.", false},
	}
	for _, tt := range tests {
		if got := IsAtOrBelow(tt.child, tt.parent); got != tt.want {
			t.Errorf("IsAtOrBelow(%q, %q) = %v, want %v", tt.child, tt.parent, got, tt.want)
		}
		if got := IsBelow(tt.child, tt.parent); got != (tt.want && len(tt.child) != len(tt.parent)) {
			t.Errorf("IsBelow(%q, %q) = %v", tt.child, tt.parent, got)
		}
	}
}

func TestLowerIsASCIIOnly(t *testing.T) {
	tests := []struct{ in, want string }{
		{"WWW.Example.COM.", "www.example.com."},
		{"www.example.", "www.example."},
		{"\u212a.", "\u212a."},       // the Kelvin sign is not "k"
		{"\xc3\x80B.", "\xc3\x80b."}, // UTF-8 capital A grave stays
		{"\xff\xfeA.", "\xff\xfea."}, // invalid UTF-8 stays byte for byte
		{`A\200B\.C.`, `a\200b\.c.`}, // escapes untouched
		{"", ""},
	}
	for _, tt := range tests {
		if got := Lower(tt.in); got != tt.want {
			t.Errorf("Lower(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Canonical("Example"); got != "example." {
		t.Errorf("Canonical(Example) = %q", got)
	}
	if got := Canonical(`a\.`); got != `a\..` {
		t.Errorf(`Canonical(a\.) = %q, want a\..`, got)
	}
}

func TestLowerDoesNotAllocateWhenLower(t *testing.T) {
	name := "www.example.com."
	if n := testing.AllocsPerRun(100, func() { _ = Lower(name) }); n != 0 {
		t.Fatalf("Lower allocated %v times on a lower-case name", n)
	}
}

func TestParent(t *testing.T) {
	tests := []struct{ in, want string }{
		{"www.example.", "example."},
		{"example.", "."},
		{".", "."},
		{`ns\.attacker.example.`, "example."},
		{`a\\.b.`, "b."},
		{`a\046b.c.`, "c."},
	}
	for _, tt := range tests {
		if got := Parent(tt.in); got != tt.want {
			t.Errorf("Parent(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// wireLabels is the reference: the name packed to wire form, its labels
// lower-cased in ASCII, root side first.
func wireLabels(t *testing.T, name string) [][]byte {
	var buf [256]byte
	n, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil {
		t.Fatalf("pack %q: %v", name, err)
	}
	var labels [][]byte
	for off := 0; off < n && buf[off] != 0; off += 1 + int(buf[off]) {
		l := bytes.Clone(buf[off+1 : off+1+int(buf[off])])
		for i, c := range l {
			if 'A' <= c && c <= 'Z' {
				l[i] = c + 32
			}
		}
		labels = append([][]byte{l}, labels...)
	}
	return labels
}

func refIsAtOrBelow(t *testing.T, child, parent string) bool {
	c, p := wireLabels(t, child), wireLabels(t, parent)
	if len(p) > len(c) {
		return false
	}
	for i := range p {
		if !bytes.Equal(c[i], p[i]) {
			return false
		}
	}
	return true
}

// nameFromLabels builds a name the way miekg/dns presents one it unpacked.
func nameFromLabels(labels [][]byte) (string, bool) {
	var wire []byte
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 {
			return "", false
		}
		wire = append(wire, byte(len(l)))
		wire = append(wire, l...)
	}
	wire = append(wire, 0)
	if len(wire) > 255 {
		return "", false
	}
	name, _, err := dns.UnpackDomainName(wire, 0)
	return name, err == nil
}

// FuzzNames checks Lower against dns.CanonicalName and IsAtOrBelow against
// wire-form comparison (and dns.IsSubDomain) on names with escapes and
// octets >= 0x80, in the form miekg/dns produces from the wire.
func FuzzNames(f *testing.F) {
	f.Add([]byte("ns.attacker"), []byte("attacker"), []byte("Example"))
	f.Add([]byte("a\x80b"), []byte("\xc3\x80"), []byte("\xc3\xa0"))
	f.Add([]byte("x\\y"), []byte("b"), []byte("B"))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		parent, ok1 := nameFromLabels([][]byte{b, c})
		child, ok2 := nameFromLabels([][]byte{a, b, c})
		other, ok3 := nameFromLabels([][]byte{a, c})
		if !ok1 || !ok2 || !ok3 {
			return
		}
		for _, n := range []string{parent, child, other} {
			if got, want := Lower(n), dns.CanonicalName(n); got != want {
				t.Fatalf("Lower(%q) = %q, dns.CanonicalName = %q", n, got, want)
			}
		}
		pairs := [][2]string{{child, parent}, {other, parent}, {parent, child},
			{strings.ToUpper(child), parent}, {child, other}}
		for _, p := range pairs {
			got, want := IsAtOrBelow(p[0], p[1]), refIsAtOrBelow(t, p[0], p[1])
			if got != want {
				t.Fatalf("IsAtOrBelow(%q, %q) = %v, wire comparison says %v", p[0], p[1], got, want)
			}
			if got != dns.IsSubDomain(p[1], p[0]) {
				t.Logf("dns.IsSubDomain(%q, %q) disagrees", p[1], p[0])
			}
		}
	})
}
