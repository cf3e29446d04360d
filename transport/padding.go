package transport

import (
	"fmt"

	"github.com/miekg/dns"
)

// paddingBlock is the block length responses are padded to (RFC 8467 4.1).
const paddingBlock = 468

// wantsPadding reports whether the query carried an EDNS(0) Padding
// option: servers pad only responses to padded queries (RFC 7830 4).
func wantsPadding(q *dns.Msg) bool {
	opt := q.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		if o.Option() == dns.EDNS0PADDING {
			return true
		}
	}
	return false
}

// packPadded packs m with a Padding option that brings its length to a
// multiple of paddingBlock (or to the largest length that fits when the
// next block would pass limit). m is not modified.
func packPadded(m *dns.Msg, q *dns.Msg, ednsSize, limit int, buf []byte) ([]byte, error) {
	c := *m
	c.Extra = make([]dns.RR, 0, len(m.Extra)+1)
	opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: uint16(ednsSize)}}
	if qo := q.IsEdns0(); qo != nil && qo.Do() {
		opt.SetDo()
	}
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt.Hdr = o.Hdr // keeps size, DO, version and extended rcode bits
			for _, e := range o.Option {
				if e.Option() != dns.EDNS0PADDING {
					opt.Option = append(opt.Option, e)
				}
			}
			continue
		}
		c.Extra = append(c.Extra, rr)
	}
	pad := &dns.EDNS0_PADDING{}
	opt.Option = append(opt.Option, pad)
	c.Extra = append(c.Extra, opt)
	b, err := c.PackBuffer(buf)
	if err != nil {
		return nil, fmt.Errorf("pack padded response: %w", err)
	}
	target := (len(b) + paddingBlock - 1) / paddingBlock * paddingBlock
	if target > limit {
		target = limit
	}
	if target <= len(b) {
		return b, nil
	}
	pad.Padding = make([]byte, target-len(b))
	b, err = c.PackBuffer(buf)
	if err != nil {
		return nil, fmt.Errorf("pack padded response: %w", err)
	}
	return b, nil
}
