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
	*bp = out[:0]
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
// verdict is kept in j for the full path.
func (s *udpSocket) readyAnswer(j *udpJob, dst, raw []byte) ([]byte, bool) {
	ra, ok := s.eng.handler.(ReadyAnswerer)
	if !ok {
		return dst, false
	}
	maxSize, ok := readySize(raw, s.eng.ednsSize)
	if !ok {
		return dst, false
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
	return ra.AnswerReady(dst[:0], raw, maxSize)
}
