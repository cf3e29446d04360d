package main

import (
	"fmt"
	"log/slog"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/validator"
)

// enableValidator attaches DNSSEC validation to the resolver configuration:
// a resolver.DNSSEC on the configuration's clock, trusting anchors, with
// validation off at and below the negative trust anchors (RFC 7646).
// resolver.New binds it to the resolver, which fetches its DS and DNSKEY.
// extra options (RFC 5011 managed anchors) are passed on to the validator.
func enableValidator(cfg *resolver.Config, anchors *roothints.Anchors, nta []string, log *slog.Logger, extra ...validator.Option) error {
	rrs := anchorRecords(anchors)
	opts := append([]validator.Option(nil), extra...)
	for _, n := range nta {
		if _, ok := dns.IsDomainName(n); !ok {
			return fmt.Errorf("--negative-trust-anchor %q: not a domain name", n)
		}
	}
	if len(nta) > 0 {
		opts = append(opts, validator.WithNegativeTrustAnchors(nta...))
	}
	d, err := resolver.NewDNSSEC(rrs, cfg.Clock, opts...)
	if err != nil {
		return fmt.Errorf("DNSSEC validation: %w", err)
	}
	cfg.Validator = d
	log.Info("DNSSEC validation is on", "anchor_zones", anchors.Zones(), "negative_trust_anchors", nta)
	return nil
}

// anchorRecords returns the anchors as the validator takes them.
func anchorRecords(a *roothints.Anchors) []dns.RR {
	rrs := make([]dns.RR, 0, len(a.DS)+len(a.DNSKEY))
	for _, ds := range a.DS {
		rrs = append(rrs, ds)
	}
	for _, k := range a.DNSKEY {
		rrs = append(rrs, k)
	}
	return rrs
}
