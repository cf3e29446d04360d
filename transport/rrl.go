package transport

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/siphash"
)

// Response rate limiting (RRL, as BIND's, https://kb.isc.org/docs/aa-00994,
// and Knot's rrl module) of the answers of the co-located authoritative
// zones. A spoofed-source flood asking one name of a local zone makes the
// server send the same answer, many times the query's size, at the forged
// address; the per-prefix limiter (ratelimit.go) lets 1000 a second
// through, enough for a resolver's clients and too many identical answers
// for a victim. RRL limits identical responses: same client prefix, same
// kind (answer, NODATA, NXDOMAIN, error) and same imputed name (the
// question's name and type for an answer; the zone, from the authority
// section's SOA, for NODATA and NXDOMAIN, so random names under a zone
// share one bucket; none for errors). Real clients asking many names are
// untouched; a victim gets RRLConfig.Rate of each answer a second, and
// every Slip-th limited one truncated (TC=1) so a real client asking over
// UDP retries over TCP.
//
// It judges the response's wire just before a UDP write, on the ready path
// and the full path alike (cache.Answers serves local answers too), and
// only responses with AA set: the resolver's answers (AA clear) never are.
// TCP, DoT, DoH and DoQ are not limited (the handshake proves the address),
// nor are clients returning a valid Server Cookie.

// RRLConfig configures a ResponseRateLimiter.
type RRLConfig struct {
	// Rate is the identical responses per second a client prefix gets;
	// 0 turns RRL off (Disabled).
	Rate int
	// Slip: every Slip-th limited response goes out truncated, the others
	// are dropped; 0 means 2 (BIND's and Knot's default), -1 drops all.
	Slip int
	// IPv4Prefix and IPv6Prefix group clients; default 24 and 56 (BIND's).
	IPv4Prefix, IPv6Prefix int
	// Slots is the size of the bucket table; default 65536.
	Slots int
}

// ResponseRateLimiter limits identical authoritative UDP responses per
// client prefix. Safe for concurrent use; share one between front ends
// (ListenerConfig.RRL).
type ResponseRateLimiter struct {
	table  *RateLimiter // the GCRA buckets, keyed by response (rrlKey)
	key    [16]byte     // SipHash key: response keys cannot be aimed at each other
	exempt atomic.Uint64
}

// RRLStats counts the authoritative UDP responses RRL judged: Passed,
// Exempt (a valid Server Cookie), and of the limited ones Slipped (sent
// truncated) and Dropped.
type RRLStats struct {
	Passed, Exempt, Slipped, Dropped uint64
}

// rateConfig is c as the GCRA table's configuration: one second of
// responses may come at once (BIND's account never holds more than a
// second's credit).
func (c RRLConfig) rateConfig() RateLimitConfig {
	return RateLimitConfig{Rate: c.Rate, Burst: c.Rate, Slip: c.Slip, IPv4Prefix: c.IPv4Prefix,
		IPv6Prefix: c.IPv6Prefix, Slots: c.Slots, Disabled: c.Rate == 0}
}

// Validate reports what is wrong with c.
func (c RRLConfig) Validate() error {
	if c.Rate < 0 {
		return errors.New("rrl: responses per second must not be negative")
	}
	rc := c.rateConfig()
	return rc.Validate()
}

// NewResponseRateLimiter returns a limiter configured by c; with Rate 0
// it passes everything until Reconfigure turns it on.
func NewResponseRateLimiter(c RRLConfig) (*ResponseRateLimiter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	t, err := NewRateLimiter(c.rateConfig())
	if err != nil {
		return nil, err
	}
	return &ResponseRateLimiter{table: t, key: RandomCookieSecret()}, nil
}

// Reconfigure changes the rate and slip of a running limiter (0 turns it
// off); the prefix lengths and table size cannot change.
func (r *ResponseRateLimiter) Reconfigure(c RRLConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return r.table.Reconfigure(c.rateConfig())
}

// Enabled reports whether the limiter limits.
func (r *ResponseRateLimiter) Enabled() bool { return r.table.Enabled() }

// Stats returns the counters.
func (r *ResponseRateLimiter) Stats() RRLStats {
	t := r.table.Stats()
	return RRLStats{Passed: t.Passed, Exempt: r.exempt.Load(), Slipped: t.Slipped, Dropped: t.Dropped}
}

// judge decides on resp, the UDP response to client (exempt: it
// returned a valid Server Cookie). A nil limiter passes everything. It
// allocates nothing.
func (r *ResponseRateLimiter) judge(resp []byte, client netip.Addr, exempt bool) rateVerdict {
	if r == nil {
		return ratePass
	}
	p := r.table.params.Load()
	if p.disabled {
		return ratePass
	}
	key, ok := r.responseKey(resp, client)
	if !ok {
		return ratePass // not authoritative, or not a response RRL judges
	}
	if exempt {
		r.exempt.Add(1)
		return ratePass
	}
	return r.table.admitKey(p, key)
}

// limit judges resp as judge does and returns what to send: resp itself,
// resp cut in place to a truncated answer (resp must be the caller's own
// buffer), or nothing (empty).
func (r *ResponseRateLimiter) limit(resp []byte, client netip.Addr, exempt bool) []byte {
	switch r.judge(resp, client, exempt) {
	case ratePass:
		return resp
	case rateSlip:
		if t, ok := appendTruncated(resp[:0], resp); ok {
			return t
		}
	}
	return resp[:0]
}

// rrlKind is what a response is, for RRL.
type rrlKind uint8

const (
	rrlAnswer rrlKind = iota + 1
	rrlNoData
	rrlNXDomain
	rrlError
)

// maxNameWire is the longest name in wire form (RFC 1035 3.1).
const maxNameWire = 255

// responseKey is the non-zero bucket key of resp to client: SipHash of
// the client's prefix, the response's kind and its imputed name (and the
// question's type for answers), lowercased. False when RRL does not judge
// resp: not an authoritative response to one question, or unparseable.
func (r *ResponseRateLimiter) responseKey(resp []byte, client netip.Addr) (uint64, bool) {
	if len(resp) < headerLen || resp[2]&0x80 == 0 || resp[2]&0x04 == 0 || // QR, AA
		binary.BigEndian.Uint16(resp[4:6]) != 1 {
		return 0, false
	}
	qend, ok := questionEnd(resp)
	if !ok {
		return 0, false
	}
	var in [8 + 1 + 2 + maxNameWire]byte
	binary.BigEndian.PutUint64(in[:8], r.table.key(client))
	nameAt := headerLen
	switch rcode := resp[3] & 0x0F; {
	case rcode == dns.RcodeSuccess && binary.BigEndian.Uint16(resp[6:8]) > 0:
		in[8] = byte(rrlAnswer)
		copy(in[9:11], resp[qend-4:qend-2]) // QTYPE
	case rcode == dns.RcodeSuccess || rcode == dns.RcodeNameError:
		in[8] = byte(rrlNoData)
		if rcode == dns.RcodeNameError {
			in[8] = byte(rrlNXDomain)
		}
		if soa, ok := authoritySOA(resp, qend); ok {
			nameAt = soa
		}
	default:
		in[8] = byte(rrlError)
		nameAt = -1
	}
	n := 11
	if nameAt >= 0 {
		l, ok := lowerName(in[n:], resp, nameAt)
		if !ok {
			return 0, false
		}
		n += l
	}
	return siphash.Sum64(&r.key, in[:n]) | 1, true
}

// authoritySOA returns the offset of the owner name of the SOA record in
// resp's authority section (the zone of a NODATA or NXDOMAIN answer);
// qend is the end of the question.
func authoritySOA(resp []byte, qend int) (int, bool) {
	off := qend
	an := int(binary.BigEndian.Uint16(resp[6:8]))
	ns := int(binary.BigEndian.Uint16(resp[8:10]))
	for i := range an + ns {
		owner := off
		if off = skipName(resp, off); off < 0 || off+10 > len(resp) {
			return 0, false
		}
		if i >= an && binary.BigEndian.Uint16(resp[off:off+2]) == dns.TypeSOA {
			return owner, true
		}
		off += 10 + int(binary.BigEndian.Uint16(resp[off+8:off+10]))
	}
	return 0, false
}

// maxPointers bounds the compression pointers followed in one name: a
// name has at most 127 labels, so more pointers than that is a loop.
const maxPointers = 127

// lowerName writes the name at off in msg, compression pointers followed,
// in uncompressed wire form and lowercase into dst (room for 255 octets)
// and returns its length.
func lowerName(dst, msg []byte, off int) (int, bool) {
	n, hops := 0, 0
	for {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if n >= len(dst) {
				return 0, false
			}
			dst[n] = 0
			return n + 1, true
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) || hops >= maxPointers {
				return 0, false
			}
			hops++
			off = int(binary.BigEndian.Uint16(msg[off:off+2]) & 0x3FFF)
			continue
		case l&0xC0 != 0:
			return 0, false
		}
		if off+1+l > len(msg) || n+1+l >= len(dst) {
			return 0, false
		}
		dst[n] = byte(l)
		for i, c := range msg[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst[n+1+i] = c
		}
		n += 1 + l
		off += 1 + l
	}
}

// appendTruncated appends to dst resp's header and question, and its OPT
// record when that is its last record (the client's EDNS state and cookie
// stay), with TC set: a real client retries over TCP, a forged address
// gets no more than the query's size (RFC 1035 4.2.1, BIND's slip). dst
// may be resp[:0]: the parts only move towards the start.
func appendTruncated(dst, resp []byte) ([]byte, bool) {
	qend, ok := questionEnd(resp)
	if !ok {
		return dst, false
	}
	opt := -1
	if last, ok := lastRecord(resp); ok && binary.BigEndian.Uint16(resp[10:12]) > 0 && len(resp)-last >= optNoOptionsLen &&
		resp[last] == 0 && binary.BigEndian.Uint16(resp[last+1:last+3]) == dns.TypeOPT {
		opt = last
	}
	start := len(dst)
	dst = append(dst, resp[:qend]...)
	arcount := uint16(0)
	if opt >= 0 {
		dst = append(dst, resp[opt:]...)
		arcount = 1
	}
	h := dst[start:]
	h[2] |= 0x02 // TC
	binary.BigEndian.PutUint16(h[6:8], 0)
	binary.BigEndian.PutUint16(h[8:10], 0)
	binary.BigEndian.PutUint16(h[10:12], arcount)
	return dst, true
}

// sendLimited sends b, the answer to j's query with rcode, as RRL
// decides: b itself, b truncated (in a pooled buffer when b is not j's
// own: a handler's buffer may be a cached answer), or nothing; and counts
// what it sends.
func (j *udpJob) sendLimited(b []byte, own bool, rcode int) error {
	switch j.sock.eng.rrl.judge(b, j.remote.Addr(), j.cookieValid) {
	case ratePass:
		j.sock.eng.responses.count(UDP, rcode)
		return j.send(b)
	case rateDrop:
		j.sent = true
		return nil
	}
	bp := j.sock.eng.bufs.get()
	defer j.sock.eng.bufs.put(bp)
	dst := (*bp)[:0]
	if own {
		dst = b[:0]
	}
	t, ok := appendTruncated(dst, b) // never longer than b: fits the pooled buffer
	if !ok {
		j.sent = true
		return nil
	}
	j.sock.eng.responses.count(UDP, rcode)
	return j.send(t)
}
