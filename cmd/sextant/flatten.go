package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/security"
)

// flattenOptions are the zones whose CNAMEs are flattened (README "CNAME
// flattening").
type flattenOptions struct {
	flatten stringList
}

func (o *flattenOptions) register(fs *flag.FlagSet) {
	fs.Var(&o.flatten, "flatten", "`ZONE[=apex|all]`: answer the CNAME at the apex of ZONE, a --zone or --secondary (all: every CNAME of it), with its target's A/AAAA/HTTPS records, resolved here (repeatable)")
}

// modes parses --flatten into a mode per canonical origin.
func (o *flattenOptions) modes() (map[string]authority.FlattenMode, error) {
	out := make(map[string]authority.FlattenMode, len(o.flatten))
	for _, spec := range o.flatten {
		zone, mode, _ := strings.Cut(spec, "=")
		if _, ok := dns.IsDomainName(zone); !ok || zone == "" {
			return nil, fmt.Errorf("--flatten %q: %q is not a zone name", spec, zone)
		}
		m, err := authority.ParseFlattenMode(mode)
		if err != nil {
			return nil, fmt.Errorf("--flatten %q: %w", spec, err)
		}
		origin := dnsname.Canonical(dns.Fqdn(zone))
		if _, dup := out[origin]; dup {
			return nil, fmt.Errorf("--flatten %q: zone %s given twice", spec, origin)
		}
		out[origin] = m
	}
	return out, nil
}

// checkFlattened makes sure every flattened zone is served here, from a
// --zone file or as a --secondary (whose versions it then lets hold an
// apex CNAME), and that a zone signed online flattens only its apex.
func checkFlattened(modes map[string]authority.FlattenMode, zones *authority.Server, secondaries []*secondary.Zone, signPolicies []string) error {
	for origin, mode := range modes {
		if zones != nil && zones.Zone(origin) != nil {
			continue
		}
		i := slices.IndexFunc(secondaries, func(z *secondary.Zone) bool { return z.Origin == origin })
		if i < 0 {
			return fmt.Errorf("--flatten %s: neither a --zone file nor a --secondary serves %s", origin, origin)
		}
		secondaries[i].Options.Flatten = mode
	}
	for _, spec := range signPolicies {
		for _, field := range strings.Fields(spec) {
			if v, ok := strings.CutPrefix(field, "zone="); ok {
				origin := dnsname.Canonical(dns.Fqdn(v))
				if modes[origin] == authority.FlattenAll {
					return fmt.Errorf("--flatten %s=all: the zone is signed (--sign), where only the apex CNAME can be flattened (a NODATA proof at a name holding a CNAME would be bogus)", origin)
				}
			}
		}
	}
	return nil
}

// resolverFlattener resolves flattened CNAMEs' targets through the
// co-located resolver: its cache, its budget, its validation (a bogus
// target is a failure, never an answer).
type resolverFlattener struct{ r *resolver.Resolver }

func (f resolverFlattener) Flatten(ctx context.Context, name string, qtype uint16) ([]dns.RR, uint32, error) {
	res, err := f.r.Resolve(ctx, name, qtype)
	if err != nil {
		var re *resolver.Error
		if errors.As(err, &re) {
			return nil, 0, &authority.FlattenError{EDE: re.EDE, Text: re.Text}
		}
		return nil, 0, &authority.FlattenError{EDE: dns.ExtendedErrorCodeOther, Text: err.Error()}
	}
	if res.Security == security.Bogus {
		return nil, 0, &authority.FlattenError{EDE: dns.ExtendedErrorCodeDNSBogus, Text: "the target is bogus"}
	}
	ttl := uint32(math.MaxUint32)
	for _, rr := range res.Answer {
		if rr.Header().Rrtype != dns.TypeRRSIG {
			ttl = min(ttl, rr.Header().Ttl)
		}
	}
	if res.Rcode != dns.RcodeSuccess {
		// NXDOMAIN (or YXDOMAIN) at the target: no data at the owner,
		// which exists; the negative answer's SOA TTL bounds it.
		for _, rr := range res.Authority {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl = min(ttl, soa.Hdr.Ttl, soa.Minttl)
			}
		}
		return nil, ttl, nil
	}
	rrs := res.Records(qtype)
	if len(rrs) == 0 {
		for _, rr := range res.Authority {
			if soa, ok := rr.(*dns.SOA); ok {
				ttl = min(ttl, soa.Hdr.Ttl, soa.Minttl)
			}
		}
	}
	return rrs, ttl, nil
}
