package main

import (
	"fmt"
	"log/slog"

	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
)

// configureValidation decides whether DNSSEC validation runs and with which
// trust anchors. The built-in anchors belong to the IANA root: with custom
// root hints and no --trust-anchor, validation is off (said once, here).
func configureValidation(cfg *resolver.Config, o *resolverOptions, customHints bool, log *slog.Logger) error {
	if o.noDNSSEC {
		log.Info("DNSSEC validation is off (--no-dnssec)")
		return nil
	}
	var anchors *roothints.Anchors
	switch {
	case len(o.trustAnchors) > 0:
		a, err := roothints.LoadAnchors(o.trustAnchors...)
		if err != nil {
			return fmt.Errorf("--trust-anchor: %w", err)
		}
		anchors = a
	case customHints:
		log.Warn("DNSSEC validation is off: --root-hints was given without --trust-anchor, " +
			"and the built-in anchors belong to the IANA root")
		return nil
	default:
		anchors = roothints.DefaultAnchors()
	}
	return enableValidator(cfg, anchors, o.negAnchors, log)
}
