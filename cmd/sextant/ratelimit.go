package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/server"
	"github.com/sextant-dns/sextant/transport"
)

// abuseOptions are the serve flags of what keeps Sextant from being an
// amplifier: DNS server cookies (RFC 7873, RFC 9018) and rate limiting of
// UDP answers per client prefix (transport/ratelimit.go).
type abuseOptions struct {
	cookies          bool
	cookieSecretFile string
	cookieRotation   time.Duration
	rateLimit        int
	rateBurst        int
	rateSlip         int
	rateExempt       prefixList
	// questions in resolution at once, in total and per client network
	// (server.Config.MaxRecursions*)
	maxRecursions, maxRecursionsPerNetwork int
	rrl                                    rrlOptions // rrl.go

	// clock stamps the server cookies (the DNS clock; nil: the system's).
	clock clock.Clock
	// rotation rotates the cookie secret; attach makes it (nil without
	// cookies).
	rotation *cookieRotation
}

func (o *abuseOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.cookies, "cookies", true, "give DNS server cookies (RFC 7873, RFC 9018) to clients that send a client cookie (Do53, DoT)")
	fs.StringVar(&o.cookieSecretFile, "cookie-secret-file", "", "`FILE` holding the server cookie secret, 32 hex digits (share it among anycast servers; default: random at start)")
	fs.DurationVar(&o.cookieRotation, "cookie-secret-rotation", defaultCookieRotation, "replace the random server cookie secret this often (`DURATION`, at least 1h; 0: never); the previous one stays valid until the next; with --cookie-secret-file the file's secret is re-read at each reload instead")
	fs.IntVar(&o.rateLimit, "rate-limit", 1000, "UDP answers per second per client /24 (IPv4) or /56 (IPv6), `N`; 0 turns rate limiting off")
	fs.IntVar(&o.rateBurst, "rate-limit-burst", 0, "UDP answers a client prefix may get at once, `N` (default: twice --rate-limit)")
	fs.IntVar(&o.rateSlip, "rate-limit-slip", 2, "every `N`th rate-limited UDP answer is sent truncated (TC=1) so real clients retry over TCP, the others dropped; 1 truncates all, 0 drops all")
	fs.Var(&o.rateExempt, "rate-limit-exempt", "client `CIDR` never rate limited (repeatable)")
	fs.IntVar(&o.maxRecursions, "max-recursions", server.DefaultMaxRecursions, "questions in resolution at once (not answered from the cache or local zones), `N`; past it SERVFAIL")
	fs.IntVar(&o.maxRecursionsPerNetwork, "max-recursions-per-network", server.DefaultMaxRecursionsPerNetwork, "questions in resolution at once from one client /24 (IPv4) or /56 (IPv6), `N`; past it SERVFAIL")
	o.rrl.register(fs)
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
	if o.cookieRotation != 0 && o.cookieRotation < minCookieRotation {
		return fmt.Errorf("--cookie-secret-rotation %v: at least %v (a cookie is valid for an hour, RFC 9018 4.3), or 0 for never", o.cookieRotation, minCookieRotation)
	}
	if err := o.rrl.validate(); err != nil {
		return err
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
			var err error
			if secret, err = readCookieSecret(o.cookieSecretFile); err != nil {
				return err
			}
		}
		lc.Cookies = transport.NewServerCookies(secret, o.clock)
		o.rotation = &cookieRotation{cookies: lc.Cookies, file: o.cookieSecretFile, every: o.cookieRotation,
			log: discardIfNil(lc.Logger), fromFile: secret}
	}
	// Built even with --rate-limit 0 (disabled), so that a reload can
	// turn limiting on (reload.go).
	l, err := transport.NewRateLimiter(o.rateLimitConfig())
	if err != nil {
		return err
	}
	lc.RateLimit = l
	// Likewise built off (0) so that a reload can turn it on.
	if lc.RRL, err = transport.NewResponseRateLimiter(o.rrl.config()); err != nil {
		return err
	}
	return nil
}

func discardIfNil(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
