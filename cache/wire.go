package cache

import "encoding/binary"

// Wire-format helpers for the ready-to-send path. They read raw, hostile
// bytes: every index is checked before use, and any doubt means "no".

const (
	headerLen   = 12
	maxNameWire = 255 // RFC 1035 2.3.4
	typeOPT     = 41
)

// question is what Answers needs from a raw client query.
type question struct {
	nameEnd  int    // the qname is query[headerLen:nameEnd]
	qtype    uint16 //
	qclass   uint16 //
	edns     bool   // an OPT record is present
	do       bool   // DNSSEC OK (RFC 3225)
	cd       bool   // checking disabled
	ad       bool   // the query's AD bit (RFC 6840 5.7)
	udpSize  uint16 // the OPT's advertised payload size
	lowerLen int    // bytes of the lower-cased qname written to the buffer
}

// parseQuestion reads a raw query without allocating: a header with QR
// clear, opcode QUERY, TC clear, one question and no answer or authority
// records, a qname of plain labels (no compression pointers, no extended
// labels, at most 255 bytes), and at most one additional record, which must
// be an EDNS version 0 OPT for the root, ending the message exactly. It
// writes the qname, lower-cased, into lower.
func parseQuestion(q []byte, lower *[maxNameWire]byte) (question, bool) {
	var qs question
	if len(q) < headerLen+1+4 {
		return qs, false
	}
	flags1, flags2 := q[2], q[3]
	if flags1&0x80 != 0 || (flags1>>3)&0x0f != 0 || flags1&0x02 != 0 {
		return qs, false // a response, not opcode QUERY, or truncated
	}
	qd := binary.BigEndian.Uint16(q[4:])
	an := binary.BigEndian.Uint16(q[6:])
	ns := binary.BigEndian.Uint16(q[8:])
	ar := binary.BigEndian.Uint16(q[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return qs, false
	}
	qs.ad = flags2&0x20 != 0
	qs.cd = flags2&0x10 != 0

	off := headerLen
	n := 0
	for {
		if off >= len(q) {
			return qs, false
		}
		l := int(q[off])
		if l&0xc0 != 0 { // compression pointer or extended label type
			return qs, false
		}
		if n+1+l > maxNameWire || off+1+l > len(q) {
			return qs, false
		}
		lower[n] = byte(l)
		n++
		off++
		if l == 0 {
			break
		}
		for _, c := range q[off : off+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[n] = c
			n++
		}
		off += l
	}
	qs.nameEnd = off
	qs.lowerLen = n
	if off+4 > len(q) {
		return qs, false
	}
	qs.qtype = binary.BigEndian.Uint16(q[off:])
	qs.qclass = binary.BigEndian.Uint16(q[off+2:])
	off += 4
	if ar == 0 {
		return qs, off == len(q)
	}
	// The OPT pseudo-RR: root owner, type, class = payload size,
	// TTL = extended rcode, version, flags; then the options.
	if off+11 > len(q) || q[off] != 0 || binary.BigEndian.Uint16(q[off+1:]) != typeOPT {
		return qs, false
	}
	qs.edns = true
	qs.udpSize = binary.BigEndian.Uint16(q[off+3:])
	if q[off+5] != 0 || q[off+6] != 0 { // extended rcode in a query, or EDNS version > 0 (BADVERS)
		return qs, false
	}
	qs.do = q[off+7]&0x80 != 0
	rdlen := int(binary.BigEndian.Uint16(q[off+9:]))
	off += 11
	if off+rdlen != len(q) {
		return qs, false
	}
	// The options must be well formed, though their content is not used.
	for end := off + rdlen; off < end; {
		if off+4 > end {
			return qs, false
		}
		off += 4 + int(binary.BigEndian.Uint16(q[off+2:]))
		if off > end {
			return qs, false
		}
	}
	return qs, true
}

// responseLayout is what Answers needs from a packed response.
type responseLayout struct {
	nameEnd int      // the question's qname is wire[headerLen:nameEnd]
	ttlOffs []uint16 // offset of every TTL field, OPT excluded
	ttls    []uint32 // the TTL at each offset
	minTTL  uint32   // the smallest of ttls
	edns    bool     // an OPT record is present
}

// layoutResponse walks a packed response (trusted: we packed it, but it is
// still bounds-checked) and finds the TTL fields to rewrite.
func layoutResponse(wire []byte) (responseLayout, bool) {
	var lay responseLayout
	if len(wire) < headerLen || len(wire) > 0xffff {
		return lay, false
	}
	if binary.BigEndian.Uint16(wire[4:]) != 1 {
		return lay, false
	}
	off, ok := skipName(wire, headerLen, false)
	if !ok || off+4 > len(wire) {
		return lay, false
	}
	lay.nameEnd = off
	off += 4
	count := int(binary.BigEndian.Uint16(wire[6:])) + int(binary.BigEndian.Uint16(wire[8:])) + int(binary.BigEndian.Uint16(wire[10:]))
	lay.minTTL = 1<<32 - 1
	for range count {
		off, ok = skipName(wire, off, true)
		if !ok || off+10 > len(wire) {
			return lay, false
		}
		rrtype := binary.BigEndian.Uint16(wire[off:])
		ttl := binary.BigEndian.Uint32(wire[off+4:])
		if ttl > 1<<31-1 { // RFC 2181 8: a TTL with the top bit set counts as 0
			ttl = 0
		}
		rdlen := int(binary.BigEndian.Uint16(wire[off+8:]))
		if rrtype == typeOPT {
			lay.edns = true
		} else {
			lay.ttlOffs = append(lay.ttlOffs, uint16(off+4))
			lay.ttls = append(lay.ttls, ttl)
			lay.minTTL = min(lay.minTTL, ttl)
		}
		off += 10 + rdlen
		if off > len(wire) {
			return lay, false
		}
	}
	if off != len(wire) || len(lay.ttls) == 0 {
		return lay, false
	}
	return lay, true
}

// skipName returns the offset after the name at off. A compression pointer
// ends a name; it is allowed only when pointers is set.
func skipName(wire []byte, off int, pointers bool) (int, bool) {
	n := 0
	for {
		if off >= len(wire) {
			return 0, false
		}
		l := int(wire[off])
		switch {
		case l&0xc0 == 0xc0:
			if !pointers || off+2 > len(wire) {
				return 0, false
			}
			return off + 2, true
		case l&0xc0 != 0:
			return 0, false
		case l == 0:
			return off + 1, true
		}
		n += l + 1
		off += l + 1
		if n > maxNameWire {
			return 0, false
		}
	}
}
