package secondary

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Limits bound what one transfer may bring in; a transfer over either is
// rejected whole.
type Limits struct {
	MaxRecords int // records received in one transfer
	MaxBytes   int // DNS message bytes received in one transfer
}

// DefaultLimits hold zones of a million records: far beyond what a
// co-located secondary is for, and small enough that a hostile primary
// cannot exhaust memory (a built zone costs a few hundred bytes a record).
var DefaultLimits = Limits{MaxRecords: 1_000_000, MaxBytes: 256 << 20}

// tsigFudge is the TSIG time window (RFC 8945 10 recommends 300 s).
const tsigFudge = 300

// client talks to the primaries of one zone.
type client struct {
	zone    *Zone
	limits  Limits
	timeout time.Duration // per network step (dial, each read)
}

// transferResult is what a transfer brought.
type transferResult struct {
	// upToDate: the primary's IXFR answer was the single SOA that says
	// the zone has not changed (RFC 1995 4).
	upToDate bool
	// incremental: rrs were built by applying IXFR differences.
	incremental bool
	soa         *dns.SOA
	rrs         []dns.RR // the whole new zone, its SOA once
	records     int      // records received
	bytes       int      // message bytes received
}

// querySOA asks primary for the zone's SOA over UDP, and again over TCP
// when the answer is truncated.
func (c *client) querySOA(ctx context.Context, primary netip.AddrPort) (*dns.SOA, error) {
	q := new(dns.Msg)
	q.SetQuestion(c.zone.Origin, dns.TypeSOA)
	resp, err := c.exchange(ctx, "udp", primary, q)
	if err == nil && resp.Truncated {
		resp, err = c.exchange(ctx, "tcp", primary, q)
	}
	if err != nil {
		return nil, err
	}
	if resp.Rcode != dns.RcodeSuccess {
		return nil, &rcodeError{op: "SOA query", rcode: resp.Rcode}
	}
	for _, rr := range resp.Answer {
		if soa, ok := rr.(*dns.SOA); ok && dnsname.Canonical(soa.Hdr.Name) == c.zone.Origin {
			return soa, nil
		}
	}
	if !resp.Authoritative {
		return nil, &rcodeError{op: "SOA query", rcode: dns.RcodeNotAuth}
	}
	return nil, errors.New("the answer to the SOA query holds no SOA for the zone")
}

// exchange sends q (TSIG-signed when the zone has a key) and returns the
// verified answer.
func (c *client) exchange(ctx context.Context, network string, primary netip.AddrPort, q *dns.Msg) (*dns.Msg, error) {
	q = q.Copy()
	q.Id = dns.Id()
	conn, closeConn, err := c.dial(ctx, network, primary)
	if err != nil {
		return nil, err
	}
	defer closeConn()
	ts, err := c.send(conn, q)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, dns.MaxMsgSize)
	// One deadline for the whole wait: datagrams that are not the answer
	// (spoofed, late) must not extend it.
	_ = conn.SetReadDeadline(time.Now().Add(c.timeout))
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(buf[:n]); err != nil {
			if network == "udp" {
				continue // spoofed or broken datagram: wait for the real one
			}
			return nil, fmt.Errorf("malformed answer: %v", err)
		}
		if resp.Id != q.Id || !resp.Response || !sameQuestion(resp, q) {
			if network == "udp" {
				continue
			}
			return nil, errors.New("the answer does not match the question")
		}
		if err := c.verify(buf[:n], resp, ts, false); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

func sameQuestion(a, b *dns.Msg) bool {
	if len(a.Question) != 1 || len(b.Question) != 1 {
		return false
	}
	qa, qb := a.Question[0], b.Question[0]
	return qa.Qtype == qb.Qtype && qa.Qclass == qb.Qclass && dnsname.Canonical(qa.Name) == dnsname.Canonical(qb.Name)
}

// dial connects to primary from the zone's source address.
func (c *client) dial(ctx context.Context, network string, primary netip.AddrPort) (*dns.Conn, func(), error) {
	d := net.Dialer{Timeout: c.timeout}
	if c.zone.Source.IsValid() {
		if network == "udp" {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.zone.Source, 0))
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(c.zone.Source, 0))
		}
	}
	nc, err := d.DialContext(ctx, network, primary.String())
	if err != nil {
		return nil, nil, err
	}
	// Cancelling ctx interrupts a read in progress.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	return &dns.Conn{Conn: nc}, func() { stop(); nc.Close() }, nil
}

// tsigState follows the TSIG chain of one exchange (RFC 8945 5.3.1: each
// answer's MAC covers the previous MAC).
type tsigState struct {
	mac string
}

// send writes q, signed when the zone has a key.
func (c *client) send(conn *dns.Conn, q *dns.Msg) (*tsigState, error) {
	_ = conn.SetWriteDeadline(time.Now().Add(c.timeout))
	key := c.zone.Key
	if key == nil {
		out, err := q.Pack()
		if err != nil {
			return nil, err
		}
		_, err = conn.Write(out)
		return nil, err
	}
	q.SetTsig(key.Name, key.Algorithm, tsigFudge, time.Now().Unix())
	out, mac, err := dns.TsigGenerate(q, key.Secret, "", false)
	if err != nil {
		return nil, fmt.Errorf("TSIG signing with key %s: %v", key.Name, err)
	}
	if _, err := conn.Write(out); err != nil {
		return nil, err
	}
	return &tsigState{mac: mac}, nil
}

// verify checks the TSIG of one answer message raw (parsed as m): an error
// the primary reports in its TSIG record comes first, then a missing or
// wrong signature. Without a key there is nothing to check.
func (c *client) verify(raw []byte, m *dns.Msg, ts *tsigState, timersOnly bool) error {
	t := m.IsTsig()
	if t != nil && t.Error != dns.RcodeSuccess {
		return &tsigError{code: int(t.Error), theirs: true, key: t.Hdr.Name}
	}
	if ts == nil {
		return nil
	}
	if t == nil {
		if m.Rcode != dns.RcodeSuccess {
			return nil // an unsigned error answer: the rcode says more
		}
		return &tsigError{code: dns.RcodeBadSig, unsigned: true, key: c.zone.Key.Name}
	}
	if dnsname.Canonical(t.Hdr.Name) != c.zone.Key.Name {
		return &tsigError{code: dns.RcodeBadKey, key: t.Hdr.Name}
	}
	if err := dns.TsigVerify(raw, c.zone.Key.Secret, ts.mac, timersOnly); err != nil {
		code := dns.RcodeBadSig
		if errors.Is(err, dns.ErrTime) {
			code = dns.RcodeBadTime
		}
		return &tsigError{code: code, key: t.Hdr.Name}
	}
	ts.mac = t.MAC
	return nil
}

// transfer runs an IXFR from have (or an AXFR when have is nil) and returns
// the complete new zone. A received record outside the zone, a transfer
// over the limits, one that does not end with the SOA it started with, an
// IXFR difference that does not apply, or any TSIG failure fails it whole.
func (c *client) transfer(ctx context.Context, primary netip.AddrPort, have []dns.RR, haveSOA *dns.SOA) (*transferResult, error) {
	q := new(dns.Msg)
	op := "AXFR"
	if haveSOA != nil {
		op = "IXFR"
		q.SetIxfr(c.zone.Origin, haveSOA.Serial, haveSOA.Ns, haveSOA.Mbox)
	} else {
		q.SetAxfr(c.zone.Origin)
	}
	q.Id = dns.Id()
	conn, closeConn, err := c.dial(ctx, "tcp", primary)
	if err != nil {
		return nil, err
	}
	defer closeConn()
	ts, err := c.send(conn, q)
	if err != nil {
		return nil, err
	}
	p := &xfrParser{zone: c.zone.Origin, limits: c.limits, op: op}
	if haveSOA != nil {
		p.haveSerial = haveSOA.Serial
	}
	buf := make([]byte, dns.MaxMsgSize)
	for first := true; !p.done; first = false {
		_ = conn.SetReadDeadline(time.Now().Add(c.timeout))
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if p.started {
				return nil, &incompleteError{op: op, records: p.res.records, err: err}
			}
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		p.res.bytes += n
		if p.res.bytes > c.limits.MaxBytes {
			return nil, &limitError{what: "bytes", limit: c.limits.MaxBytes}
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			return nil, fmt.Errorf("malformed %s message: %v", op, err)
		}
		if m.Id != q.Id {
			return nil, fmt.Errorf("%s message with ID %d, asked with %d", op, m.Id, q.Id)
		}
		if err := c.verify(buf[:n], m, ts, !first); err != nil {
			return nil, err
		}
		if m.Rcode != dns.RcodeSuccess {
			return nil, &rcodeError{op: op, rcode: m.Rcode}
		}
		if first && !sameQuestion(m, q) && len(m.Question) != 0 {
			return nil, fmt.Errorf("the %s answer is for another question", op)
		}
		if err := p.add(m.Answer); err != nil {
			return nil, err
		}
	}
	return p.finish(have)
}

// xfrParser follows the record stream of an AXFR or IXFR answer.
type xfrParser struct {
	zone       string
	op         string
	limits     Limits
	haveSerial uint32
	res        transferResult
	done       bool

	started bool
	mode    int // modeUnknown until the second record
	// Incremental: the differences in order, each deleting then adding.
	diffs   []*ixfrDiff
	adding  bool
	pending []dns.RR // AXFR-style body
}

const (
	modeUnknown = iota
	modeAXFR
	modeIXFR
)

// ixfrDiff is one version step of an IXFR (RFC 1995 4).
type ixfrDiff struct {
	from, to *dns.SOA
	del, add []dns.RR
}

func (p *xfrParser) add(rrs []dns.RR) error {
	for _, rr := range rrs {
		if p.done {
			return fmt.Errorf("%s: records after the closing SOA (%s)", p.op, rr.Header().Name)
		}
		p.res.records++
		if p.res.records > p.limits.MaxRecords {
			return &limitError{what: "records", limit: p.limits.MaxRecords}
		}
		if !dnsname.IsAtOrBelow(dnsname.Canonical(rr.Header().Name), p.zone) {
			return &outOfZoneError{rr: rr, zone: p.zone}
		}
		if err := p.step(rr); err != nil {
			return err
		}
	}
	return nil
}

func (p *xfrParser) step(rr dns.RR) error {
	soa, isSOA := rr.(*dns.SOA)
	if isSOA && dnsname.Canonical(soa.Hdr.Name) != p.zone {
		return fmt.Errorf("%s: SOA for %s inside the transfer of %s", p.op, soa.Hdr.Name, p.zone)
	}
	if !p.started {
		if !isSOA {
			return &soaFrameError{op: p.op, msg: "does not start with the zone's SOA"}
		}
		p.started = true
		p.res.soa = soa
		return nil
	}
	if p.mode == modeUnknown {
		// RFC 1995 4: a second record that is an SOA starts the
		// differences; anything else makes it an AXFR-style answer.
		if isSOA && p.op == "IXFR" {
			p.mode = modeIXFR
		} else {
			p.mode = modeAXFR
		}
	}
	if p.mode == modeAXFR {
		if isSOA {
			if !dns.IsDuplicate(soa, p.res.soa) || soa.Serial != p.res.soa.Serial {
				return &soaFrameError{op: p.op, msg: fmt.Sprintf("starts with SOA serial %d and ends with serial %d", p.res.soa.Serial, soa.Serial)}
			}
			p.done = true
			return nil
		}
		p.pending = append(p.pending, rr)
		return nil
	}
	return p.stepIXFR(rr, soa, isSOA)
}

func (p *xfrParser) stepIXFR(rr dns.RR, soa *dns.SOA, isSOA bool) error {
	var cur *ixfrDiff
	if len(p.diffs) > 0 {
		cur = p.diffs[len(p.diffs)-1]
	}
	switch {
	case !isSOA:
		if cur == nil {
			return errors.New("IXFR: record before the first difference")
		}
		if p.adding {
			cur.add = append(cur.add, rr)
		} else {
			cur.del = append(cur.del, rr)
		}
	case cur == nil:
		p.diffs = append(p.diffs, &ixfrDiff{from: soa})
		p.adding = false
	case !p.adding:
		cur.to = soa
		p.adding = true
	case cur.to.Serial == p.res.soa.Serial:
		// The last difference reached the new version: this SOA closes.
		if !dns.IsDuplicate(soa, p.res.soa) {
			return &soaFrameError{op: p.op, msg: fmt.Sprintf("starts with SOA serial %d and ends with serial %d", p.res.soa.Serial, soa.Serial)}
		}
		p.done = true
	default:
		if soa.Serial != cur.to.Serial {
			return fmt.Errorf("IXFR: difference from serial %d follows one to serial %d", soa.Serial, cur.to.Serial)
		}
		p.diffs = append(p.diffs, &ixfrDiff{from: soa})
		p.adding = false
	}
	return nil
}

// finish returns the whole zone the transfer describes.
func (p *xfrParser) finish(have []dns.RR) (*transferResult, error) {
	r := &p.res
	if p.mode == modeUnknown {
		// A lone SOA answering an IXFR: up to date (RFC 1995 4), as
		// long as it is not newer than ours.
		if p.op == "IXFR" && !serialNewer(r.soa.Serial, p.haveSerial) {
			r.upToDate = true
			return r, nil
		}
		return nil, &soaFrameError{op: p.op, msg: "is a lone SOA"}
	}
	if p.mode == modeAXFR {
		r.rrs = append([]dns.RR{r.soa}, p.pending...)
		return r, nil
	}
	if p.diffs[0].from.Serial != p.haveSerial {
		return nil, fmt.Errorf("IXFR: the differences start at serial %d, ours is %d", p.diffs[0].from.Serial, p.haveSerial)
	}
	rrs, err := applyDiffs(have, p.diffs)
	if err != nil {
		return nil, err
	}
	if len(rrs) > p.limits.MaxRecords {
		return nil, &limitError{what: "records", limit: p.limits.MaxRecords}
	}
	r.rrs = rrs
	r.incremental = true
	return r, nil
}

// rrKey identifies a record for IXFR deletion: owner (case-insensitive),
// class, type and RDATA; the TTL does not count (RFC 1995 and RFC 2181 5.2).
func rrKey(rr dns.RR) string {
	c := dns.Copy(rr)
	h := c.Header()
	h.Name = dnsname.Canonical(h.Name)
	h.Ttl = 0
	return c.String()
}

// ownerType is the cheap part of rrKey, to find the few records of a large
// zone that a difference can touch without keying all of them.
type ownerType struct {
	name  string
	rtype uint16
}

func ownerTypeOf(rr dns.RR) ownerType {
	return ownerType{dnsname.Canonical(rr.Header().Name), rr.Header().Rrtype}
}

// applyDiffs applies IXFR differences to the zone have (which holds one
// SOA). Only the records at an owner and type some difference touches are
// keyed and matched; the rest of the zone is carried over as it is, so a
// small change to a large zone costs one pass over it.
func applyDiffs(have []dns.RR, diffs []*ixfrDiff) ([]dns.RR, error) {
	touched := make(map[ownerType]bool)
	for _, d := range diffs {
		for _, rr := range d.del {
			touched[ownerTypeOf(rr)] = true
		}
		for _, rr := range d.add {
			touched[ownerTypeOf(rr)] = true
		}
	}
	out := make([]dns.RR, 0, len(have)+1)
	out = append(out, diffs[len(diffs)-1].to)
	set := make(map[string]dns.RR)
	var order []string // touched records in a stable order
	for _, rr := range have {
		if rr.Header().Rrtype == dns.TypeSOA {
			continue
		}
		if !touched[ownerTypeOf(rr)] {
			out = append(out, rr)
			continue
		}
		k := rrKey(rr)
		if _, dup := set[k]; !dup {
			order = append(order, k)
		}
		set[k] = rr
	}
	for _, d := range diffs {
		for _, rr := range d.del {
			k := rrKey(rr)
			if _, ok := set[k]; !ok {
				return nil, fmt.Errorf("IXFR from serial %d deletes a record this copy does not hold (%s): the copies differ", d.from.Serial, rr.String())
			}
			delete(set, k)
		}
		for _, rr := range d.add {
			k := rrKey(rr)
			if _, dup := set[k]; !dup {
				order = append(order, k)
			}
			set[k] = rr
		}
	}
	for _, k := range order {
		if rr, ok := set[k]; ok {
			out = append(out, rr)
			delete(set, k) // a key deleted and added again is listed twice
		}
	}
	return out, nil
}
