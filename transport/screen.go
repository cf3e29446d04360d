package transport

import (
	"github.com/miekg/dns"
)

// headerLen is the fixed size of a DNS message header.
const headerLen = 12

// verdict is what a front end does with a received message before any
// handler sees it.
type verdict uint8

const (
	serve  verdict = iota // well-formed query from an allowed client
	drop                  // not worth an answer (too short, or a response)
	reject                // answer with screened.rcode ourselves
)

// screened is the outcome of screening one received message.
type screened struct {
	verdict verdict
	// msg is the parsed message; nil when it could not be parsed.
	msg *dns.Msg
	// rcode is the (possibly extended) error code for verdict reject.
	rcode int
}

// screen parses raw and applies the checks every front end makes before a
// query reaches the Handler (RFC 1035 4.1.1, RFC 6891 6.1.1 and 6.1.3):
// responses and runts are dropped, unparseable input gets FORMERR, opcodes
// other than QUERY get NOTIMP, anything but one question gets FORMERR, a
// second OPT gets FORMERR, an EDNS version above 0 gets BADVERS, a COOKIE
// option of a malformed length gets FORMERR (RFC 7873 5.2.2), and clients
// outside the acl get REFUSED. With notify (a NotifyHandler on Do53) opcode
// NOTIFY (RFC 1996) is let through to the Handler like QUERY: primaries send
// it to a secondary's port 53.
func screen(raw []byte, allowed, notify bool) screened {
	if len(raw) < headerLen {
		return screened{verdict: drop}
	}
	if raw[2]&0x80 != 0 { // QR: a response, never answer it (loops, reflection)
		return screened{verdict: drop}
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		return screened{verdict: reject, rcode: dns.RcodeFormatError}
	}
	if !allowed {
		return screened{verdict: reject, msg: m, rcode: dns.RcodeRefused}
	}
	if m.Opcode != dns.OpcodeQuery && (m.Opcode != dns.OpcodeNotify || !notify) {
		return screened{verdict: reject, msg: m, rcode: dns.RcodeNotImplemented}
	}
	if len(m.Question) != 1 {
		return screened{verdict: reject, msg: m, rcode: dns.RcodeFormatError}
	}
	var opt *dns.OPT
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil || o.Hdr.Name != "." {
				return screened{verdict: reject, msg: m, rcode: dns.RcodeFormatError}
			}
			opt = o
		}
	}
	if opt != nil && opt.Version() != 0 {
		return screened{verdict: reject, msg: m, rcode: dns.RcodeBadVers}
	}
	if opt != nil && malformedCookie(opt) {
		return screened{verdict: reject, msg: m, rcode: dns.RcodeFormatError}
	}
	return screened{verdict: serve, msg: m}
}

// COOKIE option lengths (RFC 7873 4): a Client Cookie alone is 8 octets; with
// a Server Cookie (8 to 32 octets) the option is 16 to 40 octets.
const (
	clientCookieLen  = 8
	minServerCookies = clientCookieLen + 8
	maxServerCookies = clientCookieLen + 32
)

// malformedCookie reports a COOKIE option of any other length, which RFC
// 7873 5.2.2 answers with FORMERR. The cookies themselves are not checked:
// Sextant does not issue Server Cookies yet.
func malformedCookie(opt *dns.OPT) bool {
	for _, o := range opt.Option {
		c, ok := o.(*dns.EDNS0_COOKIE)
		if !ok {
			continue
		}
		n := len(c.Cookie) / 2 // miekg/dns holds the option's octets as hex
		if n != clientCookieLen && (n < minServerCookies || n > maxServerCookies) {
			return true
		}
	}
	return false
}

// maxUDPResponse is the largest response a UDP client takes: its EDNS0
// buffer size clamped to [512, advertised] (RFC 6891 6.2.5), 512 without
// EDNS0 (RFC 1035 4.2.1).
func maxUDPResponse(q *dns.Msg, advertised int) int {
	opt := q.IsEdns0()
	if opt == nil {
		return dns.MinMsgSize
	}
	size := int(opt.UDPSize())
	if size < dns.MinMsgSize {
		size = dns.MinMsgSize
	}
	if size > advertised {
		size = advertised
	}
	return size
}

// appendErrorReply appends to buf the packed answer to a rejected message.
// When the message could not be parsed it is the bare header: the ID, opcode
// and RD echoed, no question (RFC 1035 4.1.1 leaves nothing else to trust).
// Otherwise the question is echoed when there is exactly one, and an OPT
// with our buffer size is added when the query had one (RFC 6891 7), which
// is also what carries BADVERS's upper bits.
func appendErrorReply(buf []byte, raw []byte, q *dns.Msg, rcode int, ednsSize int) ([]byte, error) {
	if q == nil {
		var h [headerLen]byte
		h[0], h[1] = raw[0], raw[1]
		h[2] = 0x80 | raw[2]&0x79 // QR, opcode, RD
		h[3] = byte(rcode & 0xF)
		return append(buf[:0], h[:]...), nil
	}
	r := errorReply(q, rcode, ednsSize)
	return r.PackBuffer(buf)
}

// errorReply builds the answer carrying rcode to the parsed query q.
func errorReply(q *dns.Msg, rcode int, ednsSize int) *dns.Msg {
	r := new(dns.Msg)
	r.Id = q.Id
	r.Response = true
	r.Opcode = q.Opcode
	r.RecursionDesired = q.RecursionDesired
	r.CheckingDisabled = q.CheckingDisabled
	r.Rcode = rcode
	if len(q.Question) == 1 && rcode != dns.RcodeFormatError {
		r.Question = q.Question
	}
	if opt := q.IsEdns0(); opt != nil {
		r.SetEdns0(uint16(ednsSize), opt.Do())
	}
	return r
}
