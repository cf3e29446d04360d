package transport

import (
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// extras are the EDNS(0) options a front end adds to answers on its own,
// whatever the Handler wrote.
type extras struct {
	// keepalive, when non-zero, is the idle timeout in units of 100 ms
	// that stream front ends (TCP, DoT) announce in an edns-tcp-keepalive
	// option to queries that carried one (RFC 7828 3.3.2). Zero on UDP
	// (the option is ignored there, RFC 7828 3.3.1), DoH and DoQ (RFC 9250
	// 5.5.2 forbids it).
	keepalive uint16
	// padAll pads the answer to every EDNS(0) query, not only to padded
	// ones (RFC 7830 4 allows it; DoQ uses it to meet RFC 9250 5.4).
	padAll bool
}

// keepaliveUnits turns an idle timeout into the option's 100 ms units.
func keepaliveUnits(idle time.Duration) uint16 {
	u := idle / (100 * time.Millisecond)
	switch {
	case u < 1:
		return 1
	case u > 0xFFFF:
		return 0xFFFF
	}
	return uint16(u)
}

// pads reports whether the answer to q gets a Padding option: always when
// q was padded (RFC 7830 4: responders MUST), and to any EDNS(0) query with
// padAll; never without EDNS(0) (RFC 7830 4: MUST NOT).
func (x extras) pads(q *dns.Msg) bool {
	if q == nil || q.IsEdns0() == nil {
		return false
	}
	return x.padAll || wantsPadding(q)
}

// rewrites reports whether an answer to q needs more than packing: an
// option added or padding. Write([]byte) answers then take the WriteMsg way.
func (x extras) rewrites(req *Request) bool {
	q := req.Msg
	return req.cookie != "" || x.pads(q) || (x.keepalive != 0 && hasTCPKeepalive(q))
}

// packAnswer packs m, the answer to req, the way every front end sends it:
// with our edns-tcp-keepalive option where x asks for it, cut to
// req.MaxSize (packReply), and padded to a 468-byte block where x.pads. A
// padded answer that would pass req.MaxSize (UDP) goes out unpadded, the
// exception RFC 7830 4 makes. m is never modified.
func packAnswer(m *dns.Msg, req *Request, ednsSize int, x extras, buf []byte) ([]byte, error) {
	if x.keepalive != 0 && req.Msg != nil && hasTCPKeepalive(req.Msg) {
		m = withOption(m, req.Msg, ednsSize, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE, Timeout: x.keepalive})
	}
	if req.cookie != "" {
		m = withOption(m, req.Msg, ednsSize, cookieOption(req.cookie))
	}
	if !x.pads(req.Msg) {
		return packReply(m, req, ednsSize, buf)
	}
	b, err := packPadded(m, req.Msg, ednsSize, req.MaxSize, buf)
	if err == nil && len(b) <= req.MaxSize {
		return b, nil
	}
	return packReply(m, req, ednsSize, buf)
}

// unpackAnswer parses an already packed answer so that packAnswer can add
// to it.
func unpackAnswer(b []byte) (*dns.Msg, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return nil, fmt.Errorf("handler's packed answer: %w", err)
	}
	return m, nil
}

// withOption returns a copy of m whose OPT carries option o (an
// edns-tcp-keepalive or COOKIE option: any of that code the handler put
// there is replaced). An OPT is added when m has none, as packReply would.
func withOption(m *dns.Msg, q *dns.Msg, ednsSize int, add dns.EDNS0) *dns.Msg {
	c := *m
	c.Extra = make([]dns.RR, 0, len(m.Extra)+1)
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: uint16(ednsSize)}}
	if qo := q.IsEdns0(); qo != nil && qo.Do() {
		opt.SetDo()
	}
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt.Hdr = o.Hdr
			for _, e := range o.Option {
				if e.Option() != add.Option() {
					opt.Option = append(opt.Option, e)
				}
			}
			continue
		}
		c.Extra = append(c.Extra, rr)
	}
	opt.Option = append(opt.Option, add)
	c.Extra = append(c.Extra, opt)
	return &c
}
