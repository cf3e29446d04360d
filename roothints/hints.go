// Package roothints holds where resolution starts and where trust starts:
// the root name servers (root hints) and the root zone's DNSSEC trust
// anchors. IANA's current values are embedded in the binary; operators (and
// the lab, whose root lives on loopback) can load their own files instead,
// in zone-file syntax.
package roothints

import (
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// hintTTL is the TTL of the records Records builds (named.root uses 3600000).
const hintTTL = 3600000

// Hints are root name servers: the NS set of "." and each server's
// addresses.
type Hints struct {
	// NS is the root NS set, in file order, targets in lower case.
	NS []*dns.NS
	// Addrs maps each NS target (lower case) to its addresses, IPv4 and IPv6.
	Addrs map[string][]netip.Addr
}

// LoadHints reads a hints file (see ParseHints).
func LoadHints(path string) (*Hints, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("root hints: %w", err)
	}
	defer f.Close()
	return ParseHints(f, path)
}

// ParseHints reads hints in zone-file syntax: NS records for "." and A/AAAA
// records for their targets, origin "." unless $ORIGIN says otherwise, TTL
// and class optional. name is used in errors, which give name:line. It
// refuses a file with no NS, an NS whose target has no address, records of
// other types or classes, and NS records for a name other than the root.
// Addresses for names that are not NS targets are ignored.
func ParseHints(r io.Reader, name string) (*Hints, error) {
	rrs, err := readZone(r, name, hintTTL)
	if err != nil {
		return nil, fmt.Errorf("root hints: %w", err)
	}
	h := &Hints{Addrs: make(map[string][]netip.Addr)}
	nsLine := make(map[string]int)
	for _, p := range rrs {
		hdr := p.rr.Header()
		if hdr.Class != dns.ClassINET {
			return nil, fmt.Errorf("root hints: %w", &LineError{File: name, Line: p.line, Msg: "class " + dns.ClassToString[hdr.Class] + " is not IN"})
		}
		owner := dnsname.Canonical(hdr.Name)
		switch rr := p.rr.(type) {
		case *dns.NS:
			if owner != "." {
				return nil, fmt.Errorf("root hints: %w", &LineError{File: name, Line: p.line, Msg: "NS for " + hdr.Name + ", not for the root"})
			}
			target := dnsname.Canonical(rr.Ns)
			if _, dup := nsLine[target]; dup {
				continue
			}
			nsLine[target] = p.line
			h.NS = append(h.NS, &dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: hdr.Ttl}, Ns: target})
		case *dns.A:
			h.addAddr(owner, rr.A)
		case *dns.AAAA:
			h.addAddr(owner, rr.AAAA)
		default:
			return nil, fmt.Errorf("root hints: %w", &LineError{File: name, Line: p.line, Msg: dns.TypeToString[hdr.Rrtype] + " record; a hints file holds only NS, A and AAAA"})
		}
	}
	if len(h.NS) == 0 {
		return nil, fmt.Errorf("root hints: %s: no NS records for the root", name)
	}
	for _, ns := range h.NS {
		if len(h.Addrs[ns.Ns]) == 0 {
			return nil, fmt.Errorf("root hints: %w", &LineError{File: name, Line: nsLine[ns.Ns], Msg: "NS " + ns.Ns + " has no A or AAAA address"})
		}
	}
	for owner := range h.Addrs {
		if _, ok := nsLine[owner]; !ok {
			delete(h.Addrs, owner)
		}
	}
	return h, nil
}

func (h *Hints) addAddr(owner string, ip []byte) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return
	}
	a = a.Unmap()
	for _, have := range h.Addrs[owner] {
		if have == a {
			return
		}
	}
	h.Addrs[owner] = append(h.Addrs[owner], a)
}

// Records returns the hints as fresh RRs: the NS set, then each server's A
// and AAAA records, for priming the cache.
func (h *Hints) Records() []dns.RR {
	var out []dns.RR
	for _, ns := range h.NS {
		out = append(out, dns.Copy(ns))
	}
	for _, ns := range h.NS {
		for _, a := range h.Addrs[ns.Ns] {
			hdr := dns.RR_Header{Name: ns.Ns, Class: dns.ClassINET, Ttl: hintTTL}
			if a.Is4() {
				hdr.Rrtype = dns.TypeA
				out = append(out, &dns.A{Hdr: hdr, A: a.AsSlice()})
			} else {
				hdr.Rrtype = dns.TypeAAAA
				out = append(out, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
	}
	return out
}

// AllLoopback reports whether every address is a loopback address (a lab
// on 127.0.0.0/8 or ::1): the resolver then allows loopback upstreams, which
// it otherwise refuses.
func (h *Hints) AllLoopback() bool {
	n := 0
	for _, addrs := range h.Addrs {
		for _, a := range addrs {
			if !a.IsLoopback() {
				return false
			}
			n++
		}
	}
	return n > 0
}
