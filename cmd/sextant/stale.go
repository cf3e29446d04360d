package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/resolver"
)

// staleConfig is the resolver's serve-stale configuration from the flags:
// nil when --serve-stale is 0.
func (o *resolverOptions) staleConfig() (*resolver.StaleConfig, error) {
	if o.serveStale < 0 || o.staleAnswerAfter < 0 {
		return nil, fmt.Errorf("--serve-stale and --serve-stale-answer-after must not be negative")
	}
	if o.serveStale == 0 {
		if len(o.staleZones) > 0 {
			return nil, fmt.Errorf("--serve-stale-zone needs serve-stale on (--serve-stale is 0)")
		}
		return nil, nil
	}
	c := &resolver.StaleConfig{MaxStale: o.serveStale, AnswerAfter: o.staleAnswerAfter, Zones: map[string]time.Duration{}}
	for _, z := range o.staleZones {
		zone, dur, ok := strings.Cut(z, "=")
		if !ok {
			return nil, fmt.Errorf("--serve-stale-zone %q: want ZONE=DURATION", z)
		}
		if _, ok := dns.IsDomainName(zone); !ok || zone == "" {
			return nil, fmt.Errorf("--serve-stale-zone %q: %q is not a domain name", z, zone)
		}
		d, err := time.ParseDuration(dur)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--serve-stale-zone %q: %q is not a duration of 0 or more", z, dur)
		}
		c.Zones[dns.Fqdn(zone)] = d
	}
	return c, nil
}
