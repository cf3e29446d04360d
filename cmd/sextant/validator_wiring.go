package main

import (
	"fmt"
	"log/slog"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/validator"
)

// enableValidator turns on DNSSEC validation in the resolver configuration
// (resolver.DNSSECConfig, built by resolver.New on the resolver's clock):
// trusting anchors (or, for the zones in managed, the RFC 5011 state, saved
// after each refresh that changes it), with validation off at and below the
// negative trust anchors (RFC 7646).
//
// The negative trust anchors are a set that changes at run time (`sextant
// ctl nta`, a reload), returned for that.
func enableValidator(cfg *resolver.Config, anchors *roothints.Anchors, nta []string, log *slog.Logger, managed *managedAnchors) (*validator.NegativeTrustAnchors, error) {
	for _, n := range nta {
		if _, ok := dns.IsDomainName(n); !ok {
			return nil, fmt.Errorf("--negative-trust-anchor %q: not a domain name", n)
		}
	}
	ntas, err := validator.NewNegativeTrustAnchors(nta...)
	if err != nil {
		return nil, fmt.Errorf("--negative-trust-anchor: %w", err)
	}
	// Records is never nil: no anchors here means none, not the built-in ones.
	d := &resolver.DNSSECConfig{Anchors: anchors.Records(),
		Options: []validator.Option{validator.WithNegativeTrustAnchorSet(ntas)}}
	if managed != nil {
		d.Managed, d.SaveManaged = managed.m, managed.save
	}
	cfg.DNSSEC = d
	log.Info("DNSSEC validation is on", "anchor_zones", anchors.Zones(), "negative_trust_anchors", nta,
		"rfc5011_state", managed != nil)
	return ntas, nil
}
