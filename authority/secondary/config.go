// Package secondary keeps secondary zones: copies of zones whose primary
// servers are elsewhere, kept current by zone transfer (AXFR, RFC 5936;
// IXFR, RFC 1995), refreshed on the SOA timers of RFC 1035 3.3.13 and on
// NOTIFY (RFC 1996), authenticated with TSIG (RFC 8945) when a key is set.
// Each transferred version goes through the same checks as a zone file
// (authority.NewZone) before it replaces the served one in an
// authority.Server in one atomic step; bad transfers are rejected whole
// and reported in words an operator can act on, and the old version keeps
// serving until the zone's expire timer runs out.
package secondary

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// DefaultPort is where primaries listen unless a port is given.
const DefaultPort = 53

// Key is a TSIG key (RFC 8945) shared with primaries.
type Key struct {
	Name      string // canonical FQDN, e.g. "xfr-key."
	Algorithm string // dns.HmacSHA256 or dns.HmacSHA512
	Secret    string // base64
}

// algorithms are the TSIG algorithms accepted, by the names operators
// write (BIND's and Knot's spelling) and by their FQDN form.
var algorithms = map[string]string{
	"hmac-sha256":  dns.HmacSHA256,
	"hmac-sha256.": dns.HmacSHA256,
	"hmac-sha512":  dns.HmacSHA512,
	"hmac-sha512.": dns.HmacSHA512,
}

// minSecretBytes is the shortest secret accepted: RFC 8945 6 asks for keys
// at least as long as the hash output; 16 bytes keeps out the obviously
// mistyped while accepting keys that other tools generate.
const minSecretBytes = 16

// ParseKey reads a key written ALGORITHM:NAME:SECRET, the form `dig -y`
// takes (e.g. hmac-sha256:xfr-key:base64secret).
func ParseKey(s string) (*Key, error) {
	parts := strings.SplitN(strings.TrimSpace(s), ":", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("TSIG key %q: want ALGORITHM:NAME:SECRET, e.g. hmac-sha256:xfr-key:c2VjcmV0IHNlY3JldCBzZWNyZXQ=", redact(s))
	}
	alg, ok := algorithms[strings.ToLower(parts[0])]
	if !ok {
		return nil, fmt.Errorf("TSIG key %q: algorithm %q is not hmac-sha256 or hmac-sha512", parts[1], parts[0])
	}
	name := dnsname.Canonical(parts[1])
	if _, ok := dns.IsDomainName(name); !ok || parts[1] == "" {
		return nil, fmt.Errorf("TSIG key name %q is not a domain name", parts[1])
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("TSIG key %q: the secret is not base64: %v", parts[1], err)
	}
	if len(raw) < minSecretBytes {
		return nil, fmt.Errorf("TSIG key %q: the secret is %d bytes, want at least %d", parts[1], len(raw), minSecretBytes)
	}
	return &Key{Name: name, Algorithm: alg, Secret: parts[2]}, nil
}

// redact hides a secret in an error message.
func redact(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i+1] + "..."
	}
	return "..."
}

// Zone declares one secondary zone.
type Zone struct {
	Origin    string           // canonical FQDN
	Primaries []netip.AddrPort // asked in order
	// Key, when set, signs every request to the primaries and must sign
	// every answer and every NOTIFY.
	Key *Key
	// Source is the local address for queries and transfers (the one the
	// primary's transfer ACL names); invalid: the system chooses.
	Source netip.Addr
	// AllowNotify are addresses besides the primaries whose NOTIFYs are
	// taken (e.g. a primary that sends from another address).
	AllowNotify []netip.Prefix
	// Options are how its versions are built: with Flatten, a transferred
	// apex may hold a CNAME (authority CNAME flattening).
	Options authority.ZoneOptions
}

// ParseZone reads a --secondary declaration: whitespace-separated
// KEY=VALUE fields,
//
//	zone=example.com primary=192.0.2.1,[2001:db8::1]:5353 key=xfr-key source=192.0.2.9 allow-notify=192.0.2.0/24
//
// zone and at least one primary are required; primary and allow-notify
// may repeat or hold comma-separated lists; key names a key from keys.
func ParseZone(s string, keys map[string]*Key) (*Zone, error) {
	z := &Zone{}
	for _, field := range strings.Fields(s) {
		k, v, ok := strings.Cut(field, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE (zone=, primary=, key=, source=, allow-notify=)", field)
		}
		if err := z.set(k, v, keys); err != nil {
			return nil, err
		}
	}
	if z.Origin == "" {
		return nil, fmt.Errorf("no zone=NAME in %q", s)
	}
	if len(z.Primaries) == 0 {
		return nil, fmt.Errorf("zone %s: no primary=ADDR[:PORT]", z.Origin)
	}
	if z.Source.IsValid() {
		for _, p := range z.Primaries {
			if p.Addr().Is4() != z.Source.Is4() {
				return nil, fmt.Errorf("zone %s: source %s and primary %s are of different address families", z.Origin, z.Source, p)
			}
		}
	}
	return z, nil
}

func (z *Zone) set(k, v string, keys map[string]*Key) error {
	switch k {
	case "zone":
		if z.Origin != "" {
			return fmt.Errorf("zone= given twice (%s and %s)", z.Origin, v)
		}
		name := dnsname.Canonical(v)
		if _, ok := dns.IsDomainName(name); !ok {
			return fmt.Errorf("zone %q is not a domain name", v)
		}
		z.Origin = name
	case "primary":
		for _, a := range strings.Split(v, ",") {
			ap, err := parseAddrPort(a)
			if err != nil {
				return fmt.Errorf("primary %q: %w", a, err)
			}
			z.Primaries = append(z.Primaries, ap)
		}
	case "key":
		key := keys[dnsname.Canonical(v)]
		if key == nil {
			return fmt.Errorf("key %q is not defined (declare it with --tsig-key ALGORITHM:NAME:SECRET)", v)
		}
		z.Key = key
	case "source":
		a, err := netip.ParseAddr(v)
		if err != nil {
			return fmt.Errorf("source %q is not an IP address", v)
		}
		z.Source = a.Unmap()
	case "allow-notify":
		for _, a := range strings.Split(v, ",") {
			p, err := parsePrefix(a)
			if err != nil {
				return err
			}
			z.AllowNotify = append(z.AllowNotify, p)
		}
	default:
		return fmt.Errorf("unknown field %q (want zone=, primary=, key=, source=, allow-notify=)", k)
	}
	return nil
}

// parseAddrPort takes ADDR, ADDR:PORT or [V6]:PORT.
func parseAddrPort(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), DefaultPort), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want ADDR, ADDR:PORT or [IPV6]:PORT")
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("port 0")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("allow-notify %q is neither an address nor a CIDR prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
