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

func TestFirstLabel(t *testing.T) {
	tests := []struct{ in, want string }{
		{"www.example.", "www"},
		{"*.example.", "*"},
		{".", ""},
		{`ns\.attacker.example.`, `ns\.attacker`},
		{`a\\.b.`, `a\\`},
		{"example", "example"},
	}
	for _, tt := range tests {
		if got := FirstLabel(tt.in); got != tt.want {
			t.Errorf("FirstLabel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCountLabels(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{".", 0},
		{"", 0},
		{"example.", 1},
		{"www.example.", 2},
		{"www.example", 2},
		{`ns\.attacker.example.`, 2},
		{`ns\046attacker.example.`, 2},
		{`a\\.b.`, 2},
		{`a\\\.b.`, 1},
		{`*.a.example.`, 3},
	}
	for _, tt := range tests {
		if got := CountLabels(tt.in); got != tt.want {
			t.Errorf("CountLabels(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestLastLabels(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a.b.example.", 2, "b.example."},
		{"a.b.example.", 3, "a.b.example."},
		{"a.b.example.", 9, "a.b.example."},
		{"a.b.example.", 0, "."},
		{"a.b.example.", -1, "."},
		{".", 1, "."},
		{`x.ns\.attacker.example.`, 2, `ns\.attacker.example.`},
		{`x.ns\.attacker.example.`, 1, "example."},
		{"a.b.c", 1, "c"},
		{"a.b.c", 3, "a.b.c"},
	}
	for _, tt := range tests {
		if got := LastLabels(tt.in, tt.n); got != tt.want {
			t.Errorf("LastLabels(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestCommonAncestor(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"www.example.", "mail.example.", "example."},
		{"www.Example.", "a.b.EXAMPLE.", "Example."},
		{"a.b.example.", "b.example.", "b.example."},
		{"example.", "example.", "example."},
		{"example.", "test.", "."},
		{".", "www.example.", "."},
		{"www.example.", ".", "."},
		// The escaped dot is label content: the only common label is example.
		{`ns\.attacker.example.`, "x.attacker.example.", "example."},
		{`x.ns\.attacker.example.`, `y.ns\.attacker.example.`, `ns\.attacker.example.`},
		{`a.b\\.example.`, `c.b\\.example.`, `b\\.example.`},
	}
	for _, tt := range tests {
		if got := CommonAncestor(tt.a, tt.b); got != tt.want {
			t.Errorf("CommonAncestor(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
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

// FuzzNames checks Lower against dns.CanonicalName, IsAtOrBelow and
// Compare against wire-form comparison (and dns.IsSubDomain), and the label
// functions against dns.SplitDomainName, on names with escapes and
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
		for _, n := range []string{parent, child, other} {
			checkLabels(t, n)
		}
		checkCommonAncestor(t, child, other)
		for _, p := range [][2]string{{child, parent}, {child, other}, {other, strings.ToUpper(child)}, {parent, parent}} {
			if got, want := Compare(p[0], p[1]), refCompare(t, p[0], p[1]); got != want {
				t.Fatalf("Compare(%q, %q) = %d, wire comparison says %d", p[0], p[1], got, want)
			}
		}
		checkCommonAncestor(t, other, strings.ToUpper(parent))
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

// checkLabels holds CountLabels, FirstLabel and LastLabels to
// dns.SplitDomainName and the wire form.
func checkLabels(t *testing.T, name string) {
	n := CountLabels(name)
	if want := len(dns.SplitDomainName(name)); n != want {
		t.Fatalf("CountLabels(%q) = %d, dns.SplitDomainName has %d labels", name, n, want)
	}
	if want := len(wireLabels(t, name)); n != want {
		t.Fatalf("CountLabels(%q) = %d, wire form has %d labels", name, n, want)
	}
	if n > 0 && FirstLabel(name) != dns.SplitDomainName(name)[0] {
		t.Fatalf("FirstLabel(%q) = %q, dns.SplitDomainName says %q", name, FirstLabel(name), dns.SplitDomainName(name)[0])
	}
	for k := 0; k <= n; k++ {
		s := LastLabels(name, k)
		if CountLabels(s) != k || !IsAtOrBelow(name, s) || !refIsAtOrBelow(t, name, s) {
			t.Fatalf("LastLabels(%q, %d) = %q", name, k, s)
		}
	}
}

// checkCommonAncestor holds CommonAncestor to the wire form: both names are
// at or below it, and no longer name (its child toward a) has both below.
func checkCommonAncestor(t *testing.T, a, b string) {
	ca := CommonAncestor(a, b)
	if !refIsAtOrBelow(t, a, ca) || !refIsAtOrBelow(t, b, ca) {
		t.Fatalf("CommonAncestor(%q, %q) = %q, not an ancestor of both", a, b, ca)
	}
	if n := CountLabels(ca); n < CountLabels(a) {
		if longer := LastLabels(a, n+1); refIsAtOrBelow(t, b, longer) {
			t.Fatalf("CommonAncestor(%q, %q) = %q, but %q is common too", a, b, ca, longer)
		}
	}
	if want := dns.CompareDomainName(a, b); CountLabels(ca) != want {
		t.Logf("dns.CompareDomainName(%q, %q) = %d, CommonAncestor %q", a, b, want, ca)
	}
}

// refCompare is RFC 4034 6.1 on the wire labels: root side first, each
// label as octets, a name before its descendants.
func refCompare(t *testing.T, a, b string) int {
	la, lb := wireLabels(t, a), wireLabels(t, b)
	for i := 0; i < len(la) && i < len(lb); i++ {
		if c := bytes.Compare(la[i], lb[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(la) < len(lb):
		return -1
	case len(la) > len(lb):
		return 1
	}
	return 0
}
