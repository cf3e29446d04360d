package transport

import (
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/dns"
)

// maxMsgLen is the largest DNS message any transport can carry (the 2-byte
// length prefix of RFC 1035 4.2.2).
const maxMsgLen = dns.MaxMsgSize

// errAlreadyWritten is returned by a ResponseWriter asked to send a second
// response to one query.
var errAlreadyWritten = errors.New("transport: response already written")

// bufPool hands out buffers big enough for any DNS message plus the 2-byte
// stream length prefix, so packing a response allocates no buffer.
type bufPool struct{ p sync.Pool }

func newBufPool() *bufPool {
	return &bufPool{p: sync.Pool{New: func() any {
		b := make([]byte, maxMsgLen+2)
		return &b
	}}}
}

func (p *bufPool) get() *[]byte  { return p.p.Get().(*[]byte) }
func (p *bufPool) put(b *[]byte) { p.p.Put(b) }

// packReply packs m, the answer to req, into buf and makes it fit
// req.MaxSize. A query with EDNS0 gets an OPT with ednsSize in the answer
// when the handler left it out (RFC 6891 7). An answer too big is truncated
// per RFC 2181 9 (records dropped from the end, TC set, OPT kept); m itself
// is never modified, since handlers may share it (a cache). Names are
// compressed (RFC 1035 4.1.4) whatever m.Compress says: an uncompressed
// answer is larger than every other server's and truncates sooner.
func packReply(m *dns.Msg, req *Request, ednsSize int, buf []byte) ([]byte, error) {
	c := *m
	c.Compress = true
	if req.Msg != nil && req.Msg.IsEdns0() != nil && m.IsEdns0() == nil {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: uint16(ednsSize)}}
		if req.Msg.IsEdns0().Do() {
			opt.SetDo()
		}
		c.Extra = append(m.Extra[:len(m.Extra):len(m.Extra)], opt)
	}
	m = &c
	b, err := m.PackBuffer(buf)
	if err != nil {
		return nil, fmt.Errorf("pack response: %w", err)
	}
	if len(b) <= req.MaxSize {
		return b, nil
	}
	return truncateReply(m, req.MaxSize, buf)
}

// truncateReply packs a copy of m cut down to size. When miekg's Truncate
// cannot get it small enough (it leaves TSIG-signed messages alone) the
// answer becomes the header, question and OPT with TC set, which always
// fits and sends the client to TCP.
func truncateReply(m *dns.Msg, size int, buf []byte) ([]byte, error) {
	c := *m
	c.Extra = append([]dns.RR(nil), m.Extra...)
	c.Truncate(size)
	b, err := c.PackBuffer(buf)
	if err == nil && len(b) <= size {
		return b, nil
	}
	bare := dns.Msg{MsgHdr: m.MsgHdr, Question: m.Question, Compress: true}
	bare.Truncated = true
	if opt := m.IsEdns0(); opt != nil {
		bare.Extra = []dns.RR{opt}
	}
	b, err = bare.PackBuffer(buf)
	if err != nil {
		return nil, fmt.Errorf("pack truncated response: %w", err)
	}
	return b, nil
}
