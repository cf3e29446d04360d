// Package signer signs the zones `sextant serve` serves, online: each new
// version of a zone (a file loaded or reloaded, a transfer in) is signed
// once, before it is served, and signed again before its signatures reach
// their refresh point, so that a signed zone answers from precomputed
// signatures as fast as an unsigned one. A new version that differs little
// from the last is signed by patching the last signed version
// (authority.Resign): its cost follows the size of the change. Keys live in a key directory, one
// sub-directory per zone, as BIND key files with a state file beside them.
//
// A Signer is an authority.PublishHook for its zone, plus a loop that
// re-signs on time.
package signer

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Policy defaults (RFC 6781 and common practice: Knot DNS uses 14 days of
// validity; RFC 8624 recommends algorithm 13; RFC 9276 NSEC3 parameters).
const (
	DefaultAlgorithm = dns.ECDSAP256SHA256
	DefaultValidity  = 14 * 24 * time.Hour
	DefaultRefresh   = 5 * 24 * time.Hour
	// minValidity: shorter signatures would expire between two refresh
	// checks of a busy host or within a resolver's cache lifetime.
	minValidity = time.Hour
	// minZSKLifetime: a rollover takes the DNSKEY TTL plus the zone's
	// largest TTL plus two safety margins; a shorter lifetime would start
	// the next rollover before the last one ended.
	minZSKLifetime = 24 * time.Hour
	// inceptionSkew backdates every signature's inception so that
	// validators whose clocks run a little slow accept it (RFC 6781 4.4.2.2).
	inceptionSkew = time.Hour
)

// SerialMode says which SOA serial a signed zone is served with.
type SerialMode int

const (
	// SerialIncrement serves a serial of its own, increased on every new
	// signed version (a change or a re-signing), so that secondaries
	// transferring the signed zone see every new signature; it jumps to
	// the unsigned serial when that is ahead.
	SerialIncrement SerialMode = iota
	// SerialKeep serves the unsigned zone's serial: re-signing alone is
	// then not seen by secondaries of this server until the zone changes.
	SerialKeep
)

// Policy is how one zone is signed.
type Policy struct {
	Zone      string // canonical FQDN
	Algorithm uint8
	// CSK: one key (flags 257) signs everything; else a KSK signs the
	// DNSKEY RRset and a ZSK the rest.
	CSK bool
	// NSEC3 selects NSEC3 with RFC 9276's parameters (no extra iterations,
	// no salt), OptOut optionally; else NSEC.
	NSEC3, OptOut bool
	// Validity is each signature's lifetime; a signature is renewed when
	// less than Refresh of it remains.
	Validity, Refresh time.Duration
	Serial            SerialMode
	// ZSKLifetime is how long a ZSK signs before a pre-publish rollover
	// replaces it (0: never).
	ZSKLifetime time.Duration
	// KSKLifetime is how long a KSK serves before a double-DS rollover
	// replaces it (0: never); KSKWait, if set, ends the wait for the
	// parent's new DS without seeing it.
	KSKLifetime, KSKWait time.Duration
	// CSKLifetime is how long a CSK serves before a key-set rollover
	// replaces it (0: never; keyroll.go).
	CSKLifetime time.Duration
	// Unsign turns signing off safely: delete CDS/CDNSKEY, then unsigned
	// once the parent's DS is gone, or after UnsignWait (0: no limit).
	Unsign     bool
	UnsignWait time.Duration
	// ImportDNSKEY is a file of the other providers' DNSKEYs for a zone
	// several providers sign (RFC 8901 model 2, multisigner.go).
	ImportDNSKEY string
	// ImportFrom is the other provider's address, asked for its DNSKEY
	// RRset to follow its ZSKs (multisigner_fetch.go).
	ImportFrom string
}

// allowedAlgorithms are the algorithms a policy may name (RFC 8624 3.1:
// MUST or RECOMMENDED for signing).
var allowedAlgorithms = map[uint8]bool{
	dns.RSASHA256: true, dns.ECDSAP256SHA256: true, dns.ECDSAP384SHA384: true, dns.ED25519: true, dns.ED448: true,
}

// ParsePolicy reads a --sign spec: "zone=NAME [alg=13] [keys=csk|ksk+zsk]
// [denial=nsec|nsec3] [optout=yes|no] [validity=14d] [refresh=5d]
// [serial=increment|keep] [zsk-lifetime=DUR] [ksk-lifetime=DUR]
// [csk-lifetime=DUR] [ksk-wait=DUR] [import-dnskey=FILE
// [import-dnskey-from=ADDR[:PORT]]] [unsign=yes [unsign-wait=DUR]]". A
// policy whose algorithm differs from the keys' rolls them over (keyroll.go). Every mistake is an error saying what is wrong.
func ParsePolicy(spec string) (*Policy, error) {
	p := &Policy{Algorithm: DefaultAlgorithm, CSK: false, Validity: DefaultValidity, Refresh: DefaultRefresh}
	seen := make(map[string]bool)
	for _, field := range strings.Fields(spec) {
		key, val, ok := strings.Cut(field, "=")
		if !ok || val == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", field)
		}
		if seen[key] {
			return nil, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		if err := p.set(key, val); err != nil {
			return nil, err
		}
	}
	if p.Zone == "" {
		return nil, fmt.Errorf("no zone=NAME")
	}
	if p.OptOut && !p.NSEC3 {
		return nil, fmt.Errorf("optout=yes needs denial=nsec3")
	}
	if p.Validity < minValidity {
		return nil, fmt.Errorf("validity %s is under the minimum %s", p.Validity, minValidity)
	}
	if p.UnsignWait != 0 && (!p.Unsign || p.UnsignWait < 0) {
		return nil, fmt.Errorf("unsign-wait needs unsign=yes and a positive duration")
	}
	if p.KSKLifetime != 0 {
		if p.CSK {
			return nil, fmt.Errorf("ksk-lifetime with keys=csk: a CSK cannot be rolled by double-DS (its successor would sign data before caches know it); use csk-lifetime")
		}
		if p.KSKLifetime < minZSKLifetime {
			return nil, fmt.Errorf("ksk-lifetime %s is under the minimum %s", p.KSKLifetime, minZSKLifetime)
		}
	}
	if p.CSKLifetime != 0 {
		if !p.CSK {
			return nil, fmt.Errorf("csk-lifetime needs keys=csk")
		}
		if p.CSKLifetime < minZSKLifetime {
			return nil, fmt.Errorf("csk-lifetime %s is under the minimum %s", p.CSKLifetime, minZSKLifetime)
		}
	}
	// ksk-wait bounds the wait for the parent's new DS: in a KSK or CSK
	// rollover, or an algorithm rollover (alg= set).
	if p.KSKWait != 0 && p.KSKLifetime == 0 && p.CSKLifetime == 0 && !seen["alg"] {
		return nil, fmt.Errorf("ksk-wait needs ksk-lifetime, csk-lifetime or alg=")
	}
	if p.ZSKLifetime != 0 {
		if p.CSK {
			return nil, fmt.Errorf("zsk-lifetime with keys=csk: a CSK rollover is a key-set rollover: use csk-lifetime")
		}
		if p.ZSKLifetime < minZSKLifetime {
			return nil, fmt.Errorf("zsk-lifetime %s is under the minimum %s", p.ZSKLifetime, minZSKLifetime)
		}
	}
	if err := checkImportFrom(p); err != nil {
		return nil, err
	}
	if p.Refresh <= 0 || p.Refresh >= p.Validity {
		return nil, fmt.Errorf("refresh %s must be positive and under the validity %s", p.Refresh, p.Validity)
	}
	return p, nil
}

func (p *Policy) set(key, val string) error {
	switch key {
	case "zone":
		if _, ok := dns.IsDomainName(val); !ok {
			return fmt.Errorf("zone %q is not a domain name", val)
		}
		p.Zone = dnsname.Canonical(val)
	case "alg":
		n, err := strconv.ParseUint(val, 10, 8)
		if err != nil || !allowedAlgorithms[uint8(n)] {
			return fmt.Errorf("alg=%s: want 8, 13, 14, 15 or 16", val)
		}
		p.Algorithm = uint8(n)
	case "keys":
		switch val {
		case "csk":
			p.CSK = true
		case "ksk+zsk":
			p.CSK = false
		default:
			return fmt.Errorf("keys=%s: want csk or ksk+zsk", val)
		}
	case "denial":
		switch val {
		case "nsec":
			p.NSEC3 = false
		case "nsec3":
			p.NSEC3 = true
		default:
			return fmt.Errorf("denial=%s: want nsec or nsec3", val)
		}
	case "optout":
		switch val {
		case "yes":
			p.OptOut = true
		case "no":
			p.OptOut = false
		default:
			return fmt.Errorf("optout=%s: want yes or no", val)
		}
	case "unsign":
		switch val {
		case "yes":
			p.Unsign = true
		case "no":
			p.Unsign = false
		default:
			return fmt.Errorf("unsign=%s: want yes or no", val)
		}
	case "import-dnskey":
		p.ImportDNSKEY = val
	case "import-dnskey-from":
		if _, _, err := net.SplitHostPort(val); err != nil {
			val = net.JoinHostPort(strings.Trim(val, "[]"), "53")
		}
		p.ImportFrom = val
	case "unsign-wait":
		d, err := ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", key, val, err)
		}
		p.UnsignWait = d
	case "ksk-lifetime", "ksk-wait", "csk-lifetime":
		d, err := ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", key, val, err)
		}
		switch key {
		case "ksk-lifetime":
			p.KSKLifetime = d
		case "csk-lifetime":
			p.CSKLifetime = d
		default:
			p.KSKWait = d
		}
	case "zsk-lifetime":
		d, err := ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", key, val, err)
		}
		p.ZSKLifetime = d
	case "validity", "refresh":
		d, err := ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%s=%s: %w", key, val, err)
		}
		if key == "validity" {
			p.Validity = d
		} else {
			p.Refresh = d
		}
	case "serial":
		switch val {
		case "increment":
			p.Serial = SerialIncrement
		case "keep":
			p.Serial = SerialKeep
		default:
			return fmt.Errorf("serial=%s: want increment or keep", val)
		}
	default:
		return fmt.Errorf("unknown setting %q (want zone, alg, keys, denial, optout, validity, refresh, serial, zsk-lifetime, ksk-lifetime, csk-lifetime, ksk-wait, import-dnskey, import-dnskey-from, unsign or unsign-wait)", key)
	}
	return nil
}

// ParseDuration reads a Go duration or a whole number of days ("14d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("want a number of days like 14d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration like 14d or 36h")
	}
	return d, nil
}

// String is the policy in --sign syntax, as the status shows it.
func (p *Policy) String() string {
	keys, denial, serial := "ksk+zsk", "nsec", "increment"
	if p.CSK {
		keys = "csk"
	}
	if p.NSEC3 {
		denial = "nsec3"
	}
	if p.Serial == SerialKeep {
		serial = "keep"
	}
	s := fmt.Sprintf("zone=%s alg=%d keys=%s denial=%s", p.Zone, p.Algorithm, keys, denial)
	if p.OptOut {
		s += " optout=yes"
	}
	s += fmt.Sprintf(" validity=%s refresh=%s serial=%s", p.Validity, p.Refresh, serial)
	if p.ZSKLifetime != 0 {
		s += fmt.Sprintf(" zsk-lifetime=%s", p.ZSKLifetime)
	}
	if p.KSKLifetime != 0 {
		s += fmt.Sprintf(" ksk-lifetime=%s", p.KSKLifetime)
	}
	if p.CSKLifetime != 0 {
		s += fmt.Sprintf(" csk-lifetime=%s", p.CSKLifetime)
	}
	if p.KSKWait != 0 {
		s += fmt.Sprintf(" ksk-wait=%s", p.KSKWait)
	}
	if p.ImportDNSKEY != "" {
		s += " import-dnskey=" + p.ImportDNSKEY
	}
	if p.ImportFrom != "" {
		s += " import-dnskey-from=" + p.ImportFrom
	}
	if p.Unsign {
		s += " unsign=yes"
		if p.UnsignWait != 0 {
			s += fmt.Sprintf(" unsign-wait=%s", p.UnsignWait)
		}
	}
	return s
}
