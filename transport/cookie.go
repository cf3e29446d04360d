package transport

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/siphash"
)

// Server cookies (RFC 7873, in the interoperable form of RFC 9018): a
// client that sends a Client Cookie gets back a Server Cookie that only
// its address can have been given, and a query that returns it proves the
// client saw our answers at that address, so it is not a spoofed source.
// Rate limiting (ratelimit.go) exempts such clients.

// Server Cookie layout (RFC 9018 4.2): Version (1), Reserved (3),
// Timestamp (4), Hash (8).
const (
	serverCookieLen     = 16
	serverCookieVersion = 1
	// fullCookieLen is the option we send: Client Cookie and Server Cookie.
	fullCookieLen = clientCookieLen + serverCookieLen
)

// Timestamp window (RFC 9018 4.3): a cookie stamped more than an hour ago,
// or more than five minutes ahead (clock skew between anycast servers
// sharing a secret), is not valid; one older than half an hour is valid
// but replaced by a fresh one.
const (
	cookieMaxAge   = 3600
	cookieMaxAhead = 300
	cookieRenewAge = 1800
)

// CookieSecretLen is the length of a server cookie secret: SipHash-2-4's
// 128-bit key (RFC 9018 4.4).
const CookieSecretLen = 16

// ServerCookies issues and checks Server Cookies. Its secret can be
// rotated (Rotate): cookies made with the previous secret stay valid until
// the next rotation, so rotating at least an hour apart (the cookies' own
// lifetime) breaks no client. Servers of one anycast address share a secret
// and their cookies interoperate (RFC 9018 3). Safe for concurrent use.
type ServerCookies struct {
	secrets atomic.Pointer[cookieSecrets]
	clock   clock.Clock

	clientOnly, valid, invalid, badCookie atomic.Uint64
}

type cookieSecrets struct {
	current, previous [CookieSecretLen]byte
	hasPrevious       bool
}

// CookieStats counts the cookies seen in queries: Client Cookies alone,
// valid Server Cookies, invalid ones (wrong hash, address, version or
// age), and the BADCOOKIE answers sent (ratelimit.go).
type CookieStats struct {
	ClientOnly, Valid, Invalid, BadCookie uint64
}

// NewServerCookies returns cookies made with secret, stamped by clk (nil
// for the system clock).
func NewServerCookies(secret [CookieSecretLen]byte, clk clock.Clock) *ServerCookies {
	if clk == nil {
		clk = clock.System{}
	}
	c := &ServerCookies{clock: clk}
	c.secrets.Store(&cookieSecrets{current: secret})
	return c
}

// RandomCookieSecret returns a fresh secret from the system's random
// source.
func RandomCookieSecret() [CookieSecretLen]byte {
	var s [CookieSecretLen]byte
	rand.Read(s[:]) // never fails (crypto/rand)
	return s
}

// ParseCookieSecret reads a secret written as 32 hex digits.
func ParseCookieSecret(s string) ([CookieSecretLen]byte, error) {
	var out [CookieSecretLen]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != CookieSecretLen {
		return out, errBadCookieSecret
	}
	copy(out[:], b)
	return out, nil
}

// Rotate makes next the secret new cookies are made with; cookies of the
// secret it replaces are still accepted until the next Rotate.
func (c *ServerCookies) Rotate(next [CookieSecretLen]byte) {
	old := c.secrets.Load()
	c.secrets.Store(&cookieSecrets{current: next, previous: old.current, hasPrevious: true})
}

// Stats returns the counters.
func (c *ServerCookies) Stats() CookieStats {
	return CookieStats{
		ClientOnly: c.clientOnly.Load(),
		Valid:      c.valid.Load(),
		Invalid:    c.invalid.Load(),
		BadCookie:  c.badCookie.Load(),
	}
}

// cookieState is what a query's COOKIE option says about its client.
type cookieState uint8

const (
	cookieNone       cookieState = iota // no COOKIE option
	cookieClientOnly                    // a Client Cookie alone
	cookieInvalid                       // a Server Cookie we did not make, or too old
	cookieValid                         // a Server Cookie we made for this client
)

// cookieCheck is the outcome of checking one query: the state and the
// COOKIE option to answer with (hex, as miekg/dns holds it; empty for
// cookieNone).
type cookieCheck struct {
	state cookieState
	reply string
}

// check looks at q's COOKIE option from client and prepares the option of
// the answer: the query's own cookie when it is valid and less than half
// an hour old (RFC 9018 4.3 lets it be reused), else a fresh Server Cookie
// (RFC 7873 5.2.3 and 5.2.4). Malformed lengths never get here (screen
// answers FORMERR).
func (c *ServerCookies) check(q *dns.Msg, client netip.Addr) cookieCheck {
	opt := q.IsEdns0()
	if opt == nil {
		return cookieCheck{}
	}
	for _, o := range opt.Option {
		co, ok := o.(*dns.EDNS0_COOKIE)
		if !ok {
			continue
		}
		var raw [maxServerCookies]byte
		n, err := hex.Decode(raw[:], []byte(co.Cookie))
		if err != nil || (n != clientCookieLen && (n < minServerCookies || n > maxServerCookies)) {
			return cookieCheck{} // screen answers these FORMERR first
		}
		return c.checkRaw(raw[:n], client)
	}
	return cookieCheck{}
}

// checkRaw is check on the option's octets.
func (c *ServerCookies) checkRaw(cookie []byte, client netip.Addr) cookieCheck {
	var out [fullCookieLen]byte
	state := c.peek(cookie, client, &out)
	c.count(state)
	return cookieCheck{state: state, reply: hex.EncodeToString(out[:])}
}

// peek finds the state of cookie (the option's 8, or 16 to 40, octets)
// from client and writes the cookie of the answer into out: the query's
// own when valid and under half an hour old, else a fresh one. It counts
// nothing and allocates nothing (the ready path uses it, ready.go).
func (c *ServerCookies) peek(cookie []byte, client netip.Addr, out *[fullCookieLen]byte) cookieState {
	now := uint32(c.clock.Now().Unix())
	cc := cookie[:clientCookieLen]
	state := cookieClientOnly
	if len(cookie) > clientCookieLen {
		state = cookieInvalid
		if ts, ok := c.verify(cookie, client, now); ok {
			state = cookieValid
			if !cookieWorn(ts, now) {
				copy(out[:], cookie)
				return state
			}
		}
	}
	copy(out[:], cc)
	c.issue(out[clientCookieLen:], cc, client, now, &c.secrets.Load().current)
	return state
}

// count adds a query's cookie state to the counters.
func (c *ServerCookies) count(state cookieState) {
	switch state {
	case cookieClientOnly:
		c.clientOnly.Add(1)
	case cookieInvalid:
		c.invalid.Add(1)
	case cookieValid:
		c.valid.Add(1)
	}
}

// verify reports whether cookie (Client Cookie and Server Cookie) holds a
// Server Cookie of ours for client, of the current or the previous
// secret, stamped within the window of RFC 9018 4.3; and its timestamp.
func (c *ServerCookies) verify(cookie []byte, client netip.Addr, now uint32) (uint32, bool) {
	if len(cookie) != fullCookieLen || cookie[clientCookieLen] != serverCookieVersion {
		return 0, false
	}
	sc := cookie[clientCookieLen:]
	ts := binary.BigEndian.Uint32(sc[4:8])
	if !cookieUsable(ts, now) {
		return 0, false
	}
	s := c.secrets.Load()
	want := binary.LittleEndian.Uint64(sc[8:16]) // SipHash output octets, as RFC 9018 A shows
	if cookieHash(&s.current, cookie, client) == want {
		return ts, true
	}
	if s.hasPrevious && cookieHash(&s.previous, cookie, client) == want {
		return ts, true
	}
	return 0, false
}

// issue writes into dst (16 octets) the Server Cookie for Client Cookie cc
// and client at now, with secret (RFC 9018 4.2).
func (c *ServerCookies) issue(dst, cc []byte, client netip.Addr, now uint32, secret *[CookieSecretLen]byte) {
	var full [fullCookieLen]byte
	copy(full[:], cc)
	full[clientCookieLen] = serverCookieVersion
	binary.BigEndian.PutUint32(full[clientCookieLen+4:], now)
	binary.LittleEndian.PutUint64(full[clientCookieLen+8:], cookieHash(secret, full[:], client))
	copy(dst, full[clientCookieLen:])
}

// cookieHash is the Hash field (RFC 9018 4.4): SipHash-2-4 over Client
// Cookie | Version | Reserved | Timestamp | Client-IP, the first 16 octets
// of cookie followed by the client's 4 or 16 address octets. The Reserved
// octets are hashed as received (RFC 9018 Appendix A.3).
func cookieHash(secret *[CookieSecretLen]byte, cookie []byte, client netip.Addr) uint64 {
	var in [clientCookieLen + 8 + 16]byte
	n := copy(in[:], cookie[:clientCookieLen+8])
	client = client.Unmap()
	if client.Is4() {
		a := client.As4()
		n += copy(in[n:], a[:])
	} else {
		a := client.As16()
		n += copy(in[n:], a[:])
	}
	return siphash.Sum64(secret, in[:n])
}

// cookieUsable reports whether a cookie stamped ts is within RFC 9018
// 4.3's window at now: at most an hour old and at most five minutes
// ahead. The difference is taken modulo 2^32 (serial number arithmetic,
// RFC 1982), so the window holds across the timestamp's wrap in 2106.
func cookieUsable(ts, now uint32) bool {
	age := int32(now - ts)
	return age <= cookieMaxAge && age >= -cookieMaxAhead
}

// cookieWorn reports whether a cookie stamped ts is old enough at now
// that the answer carries a fresh one (RFC 9018 4.3: half an hour).
func cookieWorn(ts, now uint32) bool {
	return int32(now-ts) >= cookieRenewAge
}

// cookieOption returns the COOKIE option carrying hexCookie.
func cookieOption(hexCookie string) *dns.EDNS0_COOKIE {
	return &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hexCookie}
}

// errBadCookieSecret is ParseCookieSecret's error.
var errBadCookieSecret = errors.New("cookie secret must be 32 hex digits (16 octets)")
