package transport

import (
	"encoding/binary"
	"sync/atomic"
)

// numProtos is the number of Proto values (UDP through QUIC).
const numProtos = int(QUIC) + 1

// rcodeSlots counts rcodes 0 to 23, which covers every rcode a front end
// or a resolver sends (BADVERS 16 and BADCOOKIE 23 included); anything
// higher shares the last slot (RcodeOther).
const rcodeSlots = 25

// RcodeOther is the rcode under which ResponseCounters.Each reports
// responses whose rcode is beyond BADCOOKIE.
const RcodeOther = rcodeSlots - 1

// ResponseCounters counts the DNS responses the front ends send, by
// protocol and rcode: a fixed array of atomic counters, so that counting
// costs one atomic add and no allocation on every path, the ready answers
// included. Share one between front ends (ListenerConfig.Responses); nil
// counts nothing. Queries dropped (rate limit, malformed) send nothing and
// are not counted here.
type ResponseCounters struct {
	n [numProtos][rcodeSlots]atomic.Uint64
}

// NewResponseCounters makes zeroed counters.
func NewResponseCounters() *ResponseCounters { return new(ResponseCounters) }

// count adds one response with rcode sent over p; nil counts nothing.
func (c *ResponseCounters) count(p Proto, rcode int) {
	if c == nil || int(p) >= numProtos {
		return
	}
	c.n[p][min(max(rcode, 0), RcodeOther)].Add(1)
}

// add adds n responses with rcode sent over p; nil counts nothing.
func (c *ResponseCounters) add(p Proto, rcode int, n uint64) {
	if c == nil || int(p) >= numProtos || n == 0 {
		return
	}
	c.n[p][min(max(rcode, 0), RcodeOther)].Add(n)
}

// countWire adds the packed response b, by the rcode in its header (the
// low four bits: the extended rcode bits of an OPT are not looked for;
// packed answers handed to Write are the cache's NOERROR and NXDOMAIN).
func (c *ResponseCounters) countWire(p Proto, b []byte) {
	if c == nil || len(b) < headerLen {
		return
	}
	c.count(p, int(binary.BigEndian.Uint16(b[2:4])&0xF))
}

// Each calls f for every protocol and rcode with a non-zero count.
func (c *ResponseCounters) Each(f func(p Proto, rcode int, n uint64)) {
	for p := range c.n {
		for rc := range c.n[p] {
			if n := c.n[p][rc].Load(); n > 0 {
				f(Proto(p), rc, n)
			}
		}
	}
}
