// Package dnsname is Sextant's one definition of how domain names compare:
// case-insensitively in ASCII only (RFC 4343 3; RFC 4034 6.2), label by
// label, with escaped dots and \DDD escapes as the content of a label and
// never as separators.
//
// Names are in the presentation form miekg/dns produces when it unpacks a
// message: fully qualified, with '.', '\\' and the other special octets
// escaped and every octet outside printable ASCII written as \DDD. Octets
// >= 0x80 therefore never reach these functions raw from the wire; when they
// arrive raw (a zone file, a Go caller), they are left alone, so that no two
// distinct names fold onto one (strings.ToLower would turn the Kelvin sign
// into "k", bytes.ToLower rewrites invalid UTF-8).
//
// Equal, IsAtOrBelow and Compare (the RFC 4034 6.1 order) compare; Parent,
// FirstLabel, CountLabels, LastLabels and CommonAncestor walk labels;
// Canonical and Lower give the forms names are kept in. Packages use these
// rather than dns.IsSubDomain, dns.CanonicalName or strings.EqualFold, so
// that ns\.attacker.example. is one label under example. everywhere.
package dnsname

import "github.com/miekg/dns"

// Lower returns name with its ASCII letters lower-cased and every other
// octet unchanged. It does not allocate when name is already lower case.
func Lower(name string) string {
	for i := 0; i < len(name); i++ {
		if isUpper(name[i]) {
			b := []byte(name)
			LowerBytes(b[i:])
			return string(b)
		}
	}
	return name
}

// LowerBytes lower-cases the ASCII letters of b in place, for names in wire
// form: label lengths are at most 63, below 'A', so they are never touched.
func LowerBytes(b []byte) {
	for i, c := range b {
		if isUpper(c) {
			b[i] = c + 'a' - 'A'
		}
	}
}

// Canonical returns name fully qualified and lower-cased (ASCII only), with
// every octet written the one way miekg/dns writes it when it unpacks a
// name from the wire: the form Sextant uses for cache keys, zone names and
// comparisons. A zone file's raw octets ("ÄB") and escapes that need not be
// ("\065") become the forms a query for the same name carries. Names that
// do not pack are only lower-cased (they match nothing). It does not
// allocate when name is already canonical.
func Canonical(name string) string {
	if !IsFqdn(name) {
		name += "."
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < ' ' || c > '~' || c == '\\' {
			return Lower(wireForm(name))
		}
	}
	return Lower(name)
}

// wireForm rewrites name through its wire form.
func wireForm(name string) string {
	var buf [256]byte
	off, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil {
		return name
	}
	s, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return name
	}
	return s
}

// IsFqdn reports whether name ends in an unescaped dot.
func IsFqdn(name string) bool {
	n := len(name)
	return n > 0 && name[n-1] == '.' && !escaped(name, n-1)
}

// Equal reports whether a and b are the same name ignoring ASCII case. Both
// must be in the same form (fully qualified or not).
func Equal(a, b string) bool {
	return len(a) == len(b) && equalFold(a, b)
}

// IsAtOrBelow reports whether child is parent or a name below it. Both must
// be fully qualified; case is ignored (ASCII). The label boundary before
// parent must be a real separator: "ns\.attacker.example." (one label
// "ns.attacker" under "example.") is not below "attacker.example.".
func IsAtOrBelow(child, parent string) bool {
	if parent == "." || parent == "" {
		return true
	}
	c, p := len(child), len(parent)
	if c < p || !equalFold(child[c-p:], parent) {
		return false
	}
	if c == p {
		return true
	}
	sep := c - p - 1
	return child[sep] == '.' && !escaped(child, sep)
}

// IsBelow reports whether child is strictly below parent (see IsAtOrBelow).
func IsBelow(child, parent string) bool {
	return len(child) != len(parent) && IsAtOrBelow(child, parent)
}

// Parent returns name without its first label: "." for a single-label name
// and for the root.
func Parent(name string) string {
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++ // the escaped octet (or the first digit of \DDD) is content
		case '.':
			if i+1 >= len(name) {
				return "."
			}
			return name[i+1:]
		}
	}
	return "."
}

// FirstLabel returns the first label of name in presentation form,
// escapes kept: `ns\.attacker` for `ns\.attacker.example.`, "" for the root.
func FirstLabel(name string) string {
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++
		case '.':
			return name[:i]
		}
	}
	return name
}

// CountLabels returns the number of labels of name, the root not counted
// (RFC 4034 3.1.3 counts the same way): 0 for ".", 2 for "a.example." and
// for "a.example". Escaped dots are label content.
func CountLabels(name string) int {
	if name == "" || name == "." {
		return 0
	}
	n := 0
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++
		case '.':
			n++
		}
	}
	if !IsFqdn(name) {
		n++
	}
	return n
}

// LastLabels returns the ancestor of name made of its last n labels: "."
// for n <= 0, name itself when it has no more than n. A name that is not
// fully qualified gives its suffix as it is ("c" for "a.b.c" and 1).
func LastLabels(name string, n int) string {
	if n <= 0 {
		return "."
	}
	for skip := CountLabels(name) - n; skip > 0; skip-- {
		name = Parent(name)
	}
	return name
}

// CommonAncestor returns the closest name that both a and b are at or
// below ("." when they share no label), spelled as in a. Both must be fully
// qualified; case is ignored (ASCII), escaped dots are label content.
func CommonAncestor(a, b string) string {
	na, nb := CountLabels(a), CountLabels(b)
	n := min(na, nb)
	a, b = LastLabels(a, n), LastLabels(b, n)
	for !Equal(a, b) {
		a, b = Parent(a), Parent(b)
	}
	return a
}

// escaped reports whether the octet at i is escaped: preceded by an odd run
// of backslashes (each pair "\\" is one literal backslash; a \DDD escape
// ends in a digit, so it never adds to the run).
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// equalFold compares two equal-length strings ignoring ASCII case.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if isUpper(x) {
			x += 'a' - 'A'
		}
		if isUpper(y) {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
