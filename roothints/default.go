package roothints

import (
	_ "embed"
	"fmt"
	"strings"
)

// namedRoot is IANA's root hints file, as published.
//
//go:embed named.root
var namedRoot string

// rootAnchors holds IANA's root trust anchors (KSK-2017 and KSK-2024) as DS
// records.
//
//go:embed root.anchors
var rootAnchors string

// Default returns IANA's root hints (13 servers, each with an A and an AAAA
// address), freshly parsed so the caller may keep or change them.
func Default() *Hints {
	h, err := ParseHints(strings.NewReader(namedRoot), "named.root (embedded)")
	if err != nil { // the embedded file is tested; this cannot happen
		panic(fmt.Sprintf("roothints: embedded hints: %v", err))
	}
	return h
}

// DefaultAnchors returns IANA's root trust anchors: the DS records of
// KSK-2017 (key tag 20326) and KSK-2024 (key tag 38696).
func DefaultAnchors() *Anchors {
	a, err := ParseAnchors(strings.NewReader(rootAnchors), "root.anchors (embedded)")
	if err != nil { // the embedded file is tested; this cannot happen
		panic(fmt.Sprintf("roothints: embedded anchors: %v", err))
	}
	return a
}
