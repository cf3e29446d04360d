package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/sextant-dns/sextant/server"
	"github.com/sextant-dns/sextant/transport"
)

// abuseOptions are the serve flags of what keeps Sextant from being an
// amplifier: DNS server cookies (RFC 7873, RFC 9018) and rate limiting of
// UDP answers per client prefix (transport/ratelimit.go).
type abuseOptions struct {
	cookies          bool
	cookieSecretFile string
	rateLimit        int
	rateBurst        int
	rateSlip         int
	rateExempt       prefixList
	// questions in resolution at once, in total and per client network
	// (server.Config.MaxRecursions*)
	maxRecursions, maxRecursionsPerNetwork int
}

func (o *abuseOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.cookies, "cookies", true, "give DNS server cookies (RFC 7873, RFC 9018) to clients that send a client cookie (Do53, DoT)")
	fs.StringVar(&o.cookieSecretFile, "cookie-secret-file", "", "`FILE` holding the server cookie secret, 32 hex digits (share it among anycast servers; default: random at start)")
	fs.IntVar(&o.rateLimit, "rate-limit", 1000, "UDP answers per second per client /24 (IPv4) or /56 (IPv6), `N`; 0 turns rate limiting off")
	fs.IntVar(&o.rateBurst, "rate-limit-burst", 0, "UDP answers a client prefix may get at once, `N` (default: twice --rate-limit)")
	fs.IntVar(&o.rateSlip, "rate-limit-slip", 2, "every `N`th rate-limited UDP answer is sent truncated (TC=1) so real clients retry over TCP, the others dropped; 1 truncates all, 0 drops all")
	fs.Var(&o.rateExempt, "rate-limit-exempt", "client `CIDR` never rate limited (repeatable)")
	fs.IntVar(&o.maxRecursions, "max-recursions", server.DefaultMaxRecursions, "questions in resolution at once (not answered from the cache or local zones), `N`; past it SERVFAIL")
	fs.IntVar(&o.maxRecursionsPerNetwork, "max-recursions-per-network", server.DefaultMaxRecursionsPerNetwork, "questions in resolution at once from one client /24 (IPv4) or /56 (IPv6), `N`; past it SERVFAIL")
}

// validate checks the flags without reading the secret file.
func (o *abuseOptions) validate() error {
	if o.rateLimit < 0 {
		return errors.New("--rate-limit must not be negative")
	}
	if o.rateSlip < 0 {
		return errors.New("--rate-limit-slip must not be negative")
	}
	if o.maxRecursions < 0 || o.maxRecursionsPerNetwork < 0 {
		return errors.New("--max-recursions and --max-recursions-per-network must not be negative")
	}
	c := o.rateLimitConfig()
	return c.Validate()
}

func (o *abuseOptions) rateLimitConfig() transport.RateLimitConfig {
	slip := o.rateSlip
	if slip == 0 {
		slip = -1 // the flag's 0, as BIND's slip 0, drops all; transport's 0 is its default
	}
	return transport.RateLimitConfig{Rate: o.rateLimit, Burst: o.rateBurst, Slip: slip, Exempt: o.rateExempt, Disabled: o.rateLimit == 0}
}

// attach builds the cookies and the rate limiter the flags ask for into
// lc, to be shared by every front end made from it.
func (o *abuseOptions) attach(lc *transport.ListenerConfig) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.cookies {
		secret := transport.RandomCookieSecret()
		if o.cookieSecretFile != "" {
			b, err := os.ReadFile(o.cookieSecretFile)
			if err != nil {
				return fmt.Errorf("--cookie-secret-file: %w", err)
			}
			if secret, err = transport.ParseCookieSecret(strings.TrimSpace(string(b))); err != nil {
				return fmt.Errorf("--cookie-secret-file %s: %w", o.cookieSecretFile, err)
			}
		}
		lc.Cookies = transport.NewServerCookies(secret, nil)
	}
	// Built even with --rate-limit 0 (disabled), so that a reload can
	// turn limiting on (reload.go).
	l, err := transport.NewRateLimiter(o.rateLimitConfig())
	if err != nil {
		return err
	}
	lc.RateLimit = l
	return nil
}
