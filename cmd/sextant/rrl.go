package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/sextant-dns/sextant/transport"
)

// rrlOptions are the flags of response rate limiting for the local zones'
// answers (transport/rrl.go).
//
// Off by default, as in BIND and Knot: a resolver's local zones are
// mostly asked by its own clients, and an office behind one NAT address
// asking its intranet names can well send the same answer tens of times a
// second; the per-prefix limit (--rate-limit) already bounds what one
// forged /24 gets. RRL is for local zones a resolver also serves to the
// internet, where BIND's and Knot's examples start at 20 a second.
type rrlOptions struct {
	rate int
	slip int
}

func (o *rrlOptions) register(fs *flag.FlagSet) {
	fs.IntVar(&o.rate, "rrl-responses-per-second", 0, "identical authoritative answers of the local zones (same client /24 or /56, name and kind) per second over UDP, `N`; 0 turns response rate limiting off (TCP and clients with a valid server cookie are never limited)")
	fs.IntVar(&o.slip, "rrl-slip", 2, "every `N`th answer limited by --rrl-responses-per-second is sent truncated (TC=1) so real clients retry over TCP, the others dropped; 1 truncates all, 0 drops all")
}

func (o *rrlOptions) validate() error {
	if o.rate < 0 {
		return errors.New("--rrl-responses-per-second must not be negative")
	}
	if o.slip < 0 {
		return errors.New("--rrl-slip must not be negative")
	}
	return o.config().Validate()
}

func (o *rrlOptions) config() transport.RRLConfig {
	slip := o.slip
	if slip == 0 {
		slip = -1 // the flag's 0, as BIND's slip 0, drops all; transport's 0 is its default
	}
	return transport.RRLConfig{Rate: o.rate, Slip: slip}
}

// rrlSettings are the flags a reload applies to the running limiter.
var rrlSettings = []string{"rrl-responses-per-second", "rrl-slip"}

// writeRRLStats prints the RRL and cookie rotation lines of ctl stats.
func writeRRLStats(b *strings.Builder, lc transport.ListenerConfig, rot *cookieRotation) {
	if r := lc.RRL; r != nil {
		s := r.Stats()
		fmt.Fprintf(b, "rrl.enabled=%t\nrrl.passed=%d\nrrl.exempt=%d\nrrl.slipped=%d\nrrl.dropped=%d\n",
			r.Enabled(), s.Passed, s.Exempt, s.Slipped, s.Dropped)
	}
	if rot != nil {
		fmt.Fprintf(b, "cookies.secret_rotations=%d\n", rot.Rotations())
	}
}
