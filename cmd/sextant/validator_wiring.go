package main

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"

	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/validator"
)

// enableValidator attaches DNSSEC validation to the resolver configuration:
// a resolver.DNSSEC on the configuration's clock, trusting anchors (or, for
// the zones in managed, the RFC 5011 state), with validation off at and
// below the negative trust anchors (RFC 7646). resolver.New binds it to
// the resolver, which fetches its DS and DNSKEY.
func enableValidator(cfg *resolver.Config, anchors *roothints.Anchors, nta []string, log *slog.Logger, managed *managedAnchors) error {
	for _, n := range nta {
		if _, ok := dns.IsDomainName(n); !ok {
			return fmt.Errorf("--negative-trust-anchor %q: not a domain name", n)
		}
	}
	var opts []validator.Option
	if len(nta) > 0 {
		opts = append(opts, validator.WithNegativeTrustAnchors(nta...))
	}
	rrs := anchors.Records()
	if managed != nil {
		// The managed state replaces the static anchors of its zones.
		zones := managed.m.Zones()
		rrs = slices.DeleteFunc(rrs, func(rr dns.RR) bool {
			return slices.Contains(zones, dnsname.Canonical(rr.Header().Name))
		})
		opts = append(opts, validator.WithManagedAnchors(managed.m))
	}
	d, err := resolver.NewDNSSEC(rrs, cfg.Clock, opts...)
	if err != nil {
		return fmt.Errorf("DNSSEC validation: %w", err)
	}
	if managed != nil {
		d.ManageAnchors(managed.m, managed.save)
	}
	cfg.Validator = d
	log.Info("DNSSEC validation is on", "anchor_zones", anchors.Zones(), "negative_trust_anchors", nta,
		"rfc5011_state", managed != nil)
	return nil
}
