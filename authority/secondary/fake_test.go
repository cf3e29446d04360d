package secondary

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakePrimary is a primary under the test's control: it serves a zone
// version by SOA query and AXFR, and can be told to misbehave.
type fakePrimary struct {
	addr   netip.AddrPort
	origin string

	mu       sync.Mutex
	rrs      []dns.RR                    // the zone: SOA first
	axfr     func(q *dns.Msg) []*dns.Msg // nil: the zone in one message framed by its SOA
	refuseX  bool                        // REFUSED to AXFR and IXFR
	noIXFR   bool                        // NOTIMP to IXFR
	xfrCount int
	secret   string // TSIG secret by key name, when set
	keyName  string
	servers  []*dns.Server
}

func startFakePrimary(t *testing.T, addr, origin, text string) *fakePrimary {
	t.Helper()
	p := &fakePrimary{addr: netip.MustParseAddrPort(addr), origin: origin, noIXFR: true}
	p.setZone(t, text)
	return p
}

func (p *fakePrimary) useKey(name, secret string) { p.keyName, p.secret = name, secret }

// listen starts the UDP and TCP servers.
func (p *fakePrimary) listen(t *testing.T) {
	t.Helper()
	pc, err := net.ListenPacket("udp", p.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", p.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	var secrets map[string]string
	if p.keyName != "" {
		secrets = map[string]string{p.keyName: p.secret}
	}
	h := dns.HandlerFunc(p.serve)
	p.servers = []*dns.Server{{PacketConn: pc, Handler: h, TsigSecret: secrets}, {Listener: ln, Handler: h, TsigSecret: secrets}}
	for _, s := range p.servers {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
}

// restart listens again (after a change of key).
func (p *fakePrimary) restart(t *testing.T) {
	t.Helper()
	for _, s := range p.servers {
		_ = s.Shutdown()
	}
	p.listen(t)
}

func (p *fakePrimary) setZone(t *testing.T, text string) {
	t.Helper()
	rrs := parseText(t, text)
	p.mu.Lock()
	p.rrs = rrs
	p.mu.Unlock()
}

func (p *fakePrimary) set(f func(p *fakePrimary)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *fakePrimary) transfers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.xfrCount
}

func parseText(t *testing.T, text string) []dns.RR {
	t.Helper()
	var rrs []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return rrs
}

func (p *fakePrimary) serve(w dns.ResponseWriter, q *dns.Msg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sign := func(m *dns.Msg) {
		if t := q.IsTsig(); t != nil && w.TsigStatus() == nil {
			m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
		}
	}
	reply := func(m *dns.Msg) {
		sign(m)
		_ = w.WriteMsg(m)
	}
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative = true
	if p.keyName != "" && (q.IsTsig() == nil || w.TsigStatus() != nil) {
		// RFC 8945 5.2: NOTAUTH, and the TSIG error in the TSIG record.
		r.Rcode = dns.RcodeNotAuth
		if t := q.IsTsig(); t != nil {
			r.Extra = append(r.Extra, &dns.TSIG{Hdr: dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
				Algorithm: t.Algorithm, TimeSigned: uint64(time.Now().Unix()), Fudge: 300, OrigId: q.Id, Error: dns.RcodeBadSig})
		}
		_ = w.WriteMsg(r)
		return
	}
	switch q.Question[0].Qtype {
	case dns.TypeSOA:
		r.Answer = []dns.RR{p.rrs[0]}
		reply(r)
	case dns.TypeIXFR, dns.TypeAXFR:
		p.xfrCount++
		switch {
		case p.refuseX:
			r.Rcode = dns.RcodeRefused
			reply(r)
			return
		case p.noIXFR && q.Question[0].Qtype == dns.TypeIXFR:
			r.Rcode = dns.RcodeNotImplemented
			reply(r)
			return
		}
		msgs := []*dns.Msg{r}
		if p.axfr != nil {
			msgs = p.axfr(q)
		} else {
			r.Answer = append(append([]dns.RR{}, p.rrs...), p.rrs[0])
		}
		for i, m := range msgs {
			m.Id, m.Response, m.Authoritative = q.Id, true, true
			m.Question = q.Question
			sign(m)
			if err := w.WriteMsg(m); err != nil {
				return
			}
			if i == 0 {
				w.TsigTimersOnly(true)
			}
		}
	default:
		r.Rcode = dns.RcodeRefused
		reply(r)
	}
}
