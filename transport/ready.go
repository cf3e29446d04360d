package transport

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// optNoOptionsLen is the wire size of an OPT record for the root with no
// options: name (1), type (2), class (2), TTL (4), RDLENGTH (2).
const optNoOptionsLen = 11

// readySize reports whether raw may take the ReadyAnswerer fast path, and
// the largest response its client takes over UDP (as maxUDPResponse). Only
// queries of one question and no other record, or one question and a lone
// option-less OPT right after it, qualify: EDNS options (padding,
// keepalive, cookies, which screening may answer with FORMERR) need the
// full path. The OPT is found by walking the question, not by looking at
// the last bytes, so option data shaped like an OPT cannot pass for one.
// Everything else about the query is the ReadyAnswerer's to check.
func readySize(raw []byte, advertised int) (int, bool) {
	if len(raw) < headerLen {
		return 0, false
	}
	if binary.BigEndian.Uint16(raw[4:6]) != 1 || binary.BigEndian.Uint32(raw[6:10]) != 0 { // QDCOUNT 1, ANCOUNT and NSCOUNT 0
		return 0, false
	}
	end, ok := questionEnd(raw)
	if !ok {
		return 0, false
	}
	switch binary.BigEndian.Uint16(raw[10:12]) { // ARCOUNT
	case 0:
		return dns.MinMsgSize, end == len(raw)
	case 1:
		if len(raw)-end != optNoOptionsLen {
			return 0, false
		}
		opt := raw[end:]
		if opt[0] != 0 || binary.BigEndian.Uint16(opt[1:3]) != dns.TypeOPT || binary.BigEndian.Uint16(opt[9:11]) != 0 {
			return 0, false
		}
		size := int(binary.BigEndian.Uint16(opt[3:5]))
		return min(max(size, dns.MinMsgSize), advertised), true
	}
	return 0, false
}

// questionEnd returns the offset just past raw's first question, whose name
// must be uncompressed (as in every query). Each step moves forward, so it
// ends within len(raw) steps.
func questionEnd(raw []byte) (int, bool) {
	off := headerLen
	for {
		if off >= len(raw) {
			return 0, false
		}
		l := int(raw[off])
		if l&0xC0 != 0 { // compression pointer or extended label type
			return 0, false
		}
		off += 1 + l
		if l == 0 {
			break
		}
	}
	off += 4 // QTYPE, QCLASS
	return off, off <= len(raw)
}

// answerReady tries the Handler's ReadyAnswerer on j's query and sends the
// answer if there is one.
func (s *udpSocket) answerReady(j *udpJob, raw []byte) bool {
	bp := s.eng.bufs.get()
	defer s.eng.bufs.put(bp)
	out, ok := s.readyAnswer(j, *bp, raw)
	if !ok {
		return false
	}
	if len(out) == 0 {
		return true // rate limited: dropped
	}
	*bp = out[:cap(out)] // keep a grown buffer, at full length as the pool hands them out
	s.eng.responses.countWire(UDP, out)
	if err := s.writeTo(j, out); err != nil {
		s.eng.log.Debug("udp ready answer", "remote", j.remote, "err", err)
	}
	return true
}

// readyAnswer asks the Handler's ReadyAnswerer for the answer to raw, j's
// query, written over dst. It reports false, and the query takes the full
// path, when there is no ReadyAnswerer, the query does not qualify
// (readySize), the answer is not ready, or the rate limiter slips it (the
// full path sends the truncated answer). A query the rate limiter drops is
// reported answered with nothing to send. Queries that qualify carry no
// COOKIE option, so none is exempt by a Server Cookie: the limiter's
// verdict is kept in j for the full path. The caller counts the answer
// (ResponseCounters): the batch reader once per batch.
func (s *udpSocket) readyAnswer(j *udpJob, dst, raw []byte) ([]byte, bool) {
	ra, ok := s.eng.handler.(ReadyAnswerer)
	if !ok {
		return dst, false
	}
	maxSize, ok := readySize(raw, s.eng.ednsSize)
	if !ok {
		if s.eng.cookies == nil {
			return dst, false
		}
		return s.readyCookieAnswer(j, ra, dst, raw)
	}
	if l := s.eng.limiter; l != nil {
		j.rate, j.rated = l.admit(j.remote.Addr()), true
		switch j.rate {
		case rateDrop:
			return dst[:0], true
		case rateSlip:
			return dst, false
		}
	}
	out, ok := s.eng.answerReady(ra, dst[:0], raw, maxSize, j.remote)
	if ok {
		if out = s.eng.rrl.limit(out, j.remote.Addr(), false); len(out) == 0 {
			return out, true // RRL dropped it
		}
	}
	return out, ok
}

// cookieOptLen is the size of the COOKIE option we add to an answer:
// code, length, Client Cookie and our 16-octet Server Cookie.
const cookieOptLen = 4 + fullCookieLen

// readyCookie reports whether raw qualifies for the ready path but for a
// COOKIE option of 8 or 24 octets (a Client Cookie, perhaps with a Server
// Cookie of ours, whose form is 16 octets) as the OPT's only option; it
// returns the cookie and the offset of the OPT's RDLENGTH. Other cookie
// lengths and other options take the full path.
func readyCookie(raw []byte) (cookie []byte, rdlenAt int, ok bool) {
	if len(raw) < headerLen || binary.BigEndian.Uint16(raw[4:6]) != 1 || binary.BigEndian.Uint32(raw[6:10]) != 0 ||
		binary.BigEndian.Uint16(raw[10:12]) != 1 {
		return nil, 0, false
	}
	end, ok := questionEnd(raw)
	if !ok || len(raw)-end < optNoOptionsLen {
		return nil, 0, false
	}
	opt := raw[end:]
	if opt[0] != 0 || binary.BigEndian.Uint16(opt[1:3]) != dns.TypeOPT {
		return nil, 0, false
	}
	rdlen := int(binary.BigEndian.Uint16(opt[9:11]))
	data := opt[optNoOptionsLen:]
	if rdlen != len(data) || rdlen < 4 || binary.BigEndian.Uint16(data[0:2]) != dns.EDNS0COOKIE {
		return nil, 0, false
	}
	n := int(binary.BigEndian.Uint16(data[2:4]))
	if n != rdlen-4 || (n != clientCookieLen && n != fullCookieLen) {
		return nil, 0, false
	}
	return data[4:], end + 9, true
}

// readyCookieAnswer is the ready path for a query with a COOKIE option
// (readyCookie): the cookie is checked without allocating, a valid one
// exempts the client from the rate limit, the ReadyAnswerer answers the
// query with the option taken out (its contract: no EDNS options) in room
// left for ours, and our COOKIE option is appended to the answer's OPT.
// The query's bytes are restored before returning, for the full path.
func (s *udpSocket) readyCookieAnswer(j *udpJob, ra ReadyAnswerer, dst, raw []byte) ([]byte, bool) {
	cookie, rdlenAt, ok := readyCookie(raw)
	if !ok {
		return dst, false
	}
	var out [fullCookieLen]byte
	state := s.eng.cookies.peek(cookie, j.remote.Addr(), &out)
	if l := s.eng.limiter; l != nil {
		if state == cookieValid {
			l.exempted(j.remote.Addr())
			j.rate, j.rated = ratePass, true
		} else {
			j.rate, j.rated = l.admit(j.remote.Addr()), true
			switch j.rate {
			case rateDrop:
				return dst[:0], true
			case rateSlip:
				return dst, false // BADCOOKIE from the full path
			}
		}
	}
	size := int(binary.BigEndian.Uint16(raw[rdlenAt-6 : rdlenAt-4])) // the OPT's CLASS: UDP payload size
	maxSize := min(max(size, dns.MinMsgSize), s.eng.ednsSize)
	saved := [2]byte{raw[rdlenAt], raw[rdlenAt+1]}
	raw[rdlenAt], raw[rdlenAt+1] = 0, 0
	ans, ok := s.eng.answerReady(ra, dst[:0], raw[:rdlenAt+2], maxSize-cookieOptLen, j.remote)
	raw[rdlenAt], raw[rdlenAt+1] = saved[0], saved[1]
	if !ok {
		return dst, false
	}
	ans, ok = appendCookieOption(ans, &out)
	if !ok {
		return dst, false
	}
	s.eng.cookies.count(state)
	if ans = s.eng.rrl.limit(ans, j.remote.Addr(), state == cookieValid); len(ans) == 0 {
		return ans, true // RRL dropped it
	}
	return ans, true
}

// appendCookieOption appends a COOKIE option with cookie to msg's OPT,
// which must be its last record, and fixes the OPT's RDLENGTH.
func appendCookieOption(msg []byte, cookie *[fullCookieLen]byte) ([]byte, bool) {
	last, ok := lastRecord(msg)
	if !ok || len(msg)-last < optNoOptionsLen || msg[last] != 0 || binary.BigEndian.Uint16(msg[last+1:last+3]) != dns.TypeOPT {
		return msg, false
	}
	rdlen := binary.BigEndian.Uint16(msg[last+9 : last+11])
	binary.BigEndian.PutUint16(msg[last+9:last+11], rdlen+cookieOptLen)
	msg = binary.BigEndian.AppendUint16(msg, dns.EDNS0COOKIE)
	msg = binary.BigEndian.AppendUint16(msg, fullCookieLen)
	return append(msg, cookie[:]...), true
}

// lastRecord returns the offset of msg's last resource record, walking the
// question and every section; false when msg does not parse that far or
// has bytes after its records.
func lastRecord(msg []byte) (int, bool) {
	if len(msg) < headerLen {
		return 0, false
	}
	off := headerLen
	for range binary.BigEndian.Uint16(msg[4:6]) {
		if off = skipName(msg, off); off < 0 {
			return 0, false
		}
		off += 4
	}
	n := int(binary.BigEndian.Uint16(msg[6:8])) + int(binary.BigEndian.Uint16(msg[8:10])) + int(binary.BigEndian.Uint16(msg[10:12]))
	last := -1
	for range n {
		last = off
		if off = skipName(msg, off); off < 0 || off+10 > len(msg) {
			return 0, false
		}
		off += 10 + int(binary.BigEndian.Uint16(msg[off+8:off+10]))
	}
	return last, last >= 0 && off == len(msg)
}

// skipName returns the offset after the name at off, or -1. A compression
// pointer ends a name; every step moves forward, so it ends.
func skipName(msg []byte, off int) int {
	for {
		if off >= len(msg) {
			return -1
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) {
				return -1
			}
			return off + 2
		case l&0xC0 != 0:
			return -1
		}
		off += 1 + l
	}
}
