package dnsname

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// slowCompareNames is Compare by packing both names, the general
// path comparePlainNames must agree with.
func slowCompareNames(a, b string) int {
	la, oka := CanonicalLabels(a)
	lb, okb := CanonicalLabels(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := 0; i < len(la) && i < len(lb); i++ {
		if c := strings.Compare(string(la[i]), string(lb[i])); c != 0 {
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

// TestComparePlainNames: the in-place comparison of names without escapes
// orders exactly as packing them does (RFC 4034 6.1), on the RFC's own
// example order, on random names, and leaves the unusual ones (escapes,
// empty or long labels) to the general path.
func TestComparePlainNames(t *testing.T) {
	// RFC 4034 section 6.1, in order.
	ordered := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.", "*.z.example.", "\\200.z.example."}
	for i := range ordered {
		for j := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := Compare(ordered[i], ordered[j]); got != want {
				t.Errorf("Compare(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	for _, name := range []string{"a\\.b.example.", "a..example.", ".a.example.", strings.Repeat("x", 64) + ".example.", strings.Repeat("abcdefg.", 32)} {
		if _, ok := comparePlainNames(name, "example."); ok {
			t.Errorf("%q taken in place", name)
		}
	}
	rng := rand.New(rand.NewPCG(8198, 9077))
	label := func() string {
		const alphabet = "aAbBzZ09-_*"
		b := make([]byte, 1+rng.IntN(4))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	name := func() string {
		n := rng.IntN(4)
		labels := make([]string, n, n+1)
		for i := range labels {
			labels[i] = label()
		}
		s := strings.Join(append(labels, "example"), ".")
		if rng.IntN(2) == 0 {
			s += "."
		}
		return s
	}
	for range 20000 {
		a, b := name(), name()
		got, ok := comparePlainNames(a, b)
		if !ok {
			t.Fatalf("%q, %q not taken in place", a, b)
		}
		if want := slowCompareNames(a, b); got != want {
			t.Fatalf("comparePlainNames(%q, %q) = %d, packing says %d", a, b, got, want)
		}
	}
	if c, ok := comparePlainNames(".", "a."); !ok || c != -1 {
		t.Errorf("root before a.: %d %v", c, ok)
	}
}

// TestCompareFoldsASCIIOnly: RFC 4034 6.1 orders names by their octets
// with only US-ASCII letters lower-cased. Octets >= 0x80 keep their value,
// whether or not they happen to form UTF-8 (bytes.ToLower would rewrite
// "\195\128" (A grave) to "\195\160" and every invalid octet to U+FFFD).
func TestCompareFoldsASCIIOnly(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"A.example.", "a.example.", 0},
		{`\195\128.example.`, `\195\160.example.`, -1},
		{`x\128.example.`, `x\255.example.`, -1},
		{`x\192.example.`, `x\128.example.`, 1},
		{`x\128.example.`, `x\128.example.`, 0},
		{`a.example.`, `a\200.example.`, -1},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
