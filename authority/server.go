package authority

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/transport"
)

// Server answers authoritatively for a set of zones, choosing for each
// query the zone with the longest origin that encloses the name. Reads are
// lock-free: the zone set is an immutable map behind an atomic pointer that
// Set and Remove replace whole.
type Server struct {
	zones atomic.Pointer[zoneSet]
	mu    sync.Mutex // serialises writers
}

type zoneSet struct {
	byOrigin map[string]*Zone
}

var _ transport.Handler = (*Server)(nil)

// NewServer returns a Server for zones (later ones replace earlier ones
// with the same origin).
func NewServer(zones ...*Zone) *Server {
	s := &Server{}
	set := &zoneSet{byOrigin: make(map[string]*Zone, len(zones))}
	for _, z := range zones {
		if z != nil {
			set.byOrigin[z.origin] = z
		}
	}
	s.zones.Store(set)
	return s
}

// update applies change to a copy of the zone set and publishes it.
func (s *Server) update(change func(map[string]*Zone)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.zones.Load()
	next := make(map[string]*Zone, len(old.byOrigin)+1)
	for k, v := range old.byOrigin {
		next[k] = v
	}
	change(next)
	s.zones.Store(&zoneSet{byOrigin: next})
}

// Set adds z, or atomically replaces the zone with the same origin.
func (s *Server) Set(z *Zone) {
	if z == nil {
		return
	}
	s.update(func(m map[string]*Zone) { m[z.origin] = z })
}

// Remove stops serving the zone with this origin.
func (s *Server) Remove(origin string) {
	origin = canonicalName(dns.Fqdn(origin))
	s.update(func(m map[string]*Zone) { delete(m, origin) })
}

// Zone returns the zone served with this origin, or nil.
func (s *Server) Zone(origin string) *Zone {
	return s.zones.Load().byOrigin[canonicalName(dns.Fqdn(origin))]
}

// LoadFile parses and checks a zone file and then serves it. On any error
// the previous version of the zone (if any) keeps serving.
func (s *Server) LoadFile(path, origin string) error {
	z, err := LoadZoneFile(path, origin)
	if err != nil {
		return fmt.Errorf("load zone: %w", err)
	}
	s.Set(z)
	return nil
}

// Covers reports whether one of the zones encloses name.
func (s *Server) Covers(name string) bool {
	return s.zoneFor(canonicalName(dns.Fqdn(name)), 0) != nil
}

// zoneFor returns the zone with the longest origin enclosing cn. For a DS
// query at the apex of a zone whose parent zone is also served, the parent
// answers (the DS RRset lives on the parent side of the cut).
func (s *Server) zoneFor(cn string, qtype uint16) *Zone {
	set := s.zones.Load()
	if len(set.byOrigin) == 0 {
		return nil
	}
	var apexMatch *Zone
	for off, end := 0, false; !end; off, end = dns.NextLabel(cn, off) {
		if z := set.byOrigin[cn[off:]]; z != nil {
			if qtype == dns.TypeDS && off == 0 && cn != "." {
				apexMatch = z
				continue
			}
			return z
		}
	}
	if z := set.byOrigin["."]; z != nil && cn != "." {
		if !(qtype == dns.TypeDS && cn == ".") {
			return z
		}
	}
	return apexMatch
}

// Answer builds the full authoritative response to q without any I/O. It
// is safe on any message: no question gives FORMERR, a class other than IN
// REFUSED, a name outside the zones REFUSED. The response holds copies of
// the zone's records: the caller owns it. Answer(nil) is nil.
func (s *Server) Answer(q *dns.Msg) *dns.Msg {
	if q == nil {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(q)
	opt := q.IsEdns0()
	r := responder{m: m, do: opt != nil && opt.Do()}
	s.answer(&r, q, opt)
	if opt != nil {
		// RFC 6891 7: answer EDNS with EDNS, our size, DO echoed.
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(EDNSSize)
		if opt.Do() {
			o.SetDo()
		}
		m.Extra = append(m.Extra, o)
	}
	return m
}

func (s *Server) answer(r *responder, q *dns.Msg, opt *dns.OPT) {
	m := r.m
	switch {
	case q.Response || len(q.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return
	case q.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return
	case opt != nil && opt.Version() != 0:
		m.Rcode = dns.RcodeBadVers
		return
	}
	question := q.Question[0]
	if question.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeRefused
		return
	}
	switch question.Qtype {
	case dns.TypeOPT, dns.TypeNone:
		m.Rcode = dns.RcodeFormatError
		return
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeTSIG, dns.TypeTKEY:
		m.Rcode = dns.RcodeRefused
		return
	}
	name := dns.Fqdn(question.Name)
	if _, ok := dns.IsDomainName(name); !ok || nameTooLong(name) {
		m.Rcode = dns.RcodeFormatError
		return
	}
	cn := canonicalName(name)
	z := s.zoneFor(cn, question.Qtype)
	if z == nil {
		m.Rcode = dns.RcodeRefused
		return
	}
	z.answer(r, name, question.Qtype)
}

// ServeDNS answers r from the zones; it implements transport.Handler. The
// transport truncates over UDP when the answer exceeds the client's size.
func (s *Server) ServeDNS(ctx context.Context, w transport.ResponseWriter, r *transport.Request) {
	if r == nil || r.Msg == nil {
		return
	}
	resp := s.safeAnswer(r.Msg)
	if resp == nil {
		return
	}
	_ = w.WriteMsg(resp)
}

// safeAnswer is Answer with a last line of defence: a bug must cost one
// SERVFAIL, not the server.
func (s *Server) safeAnswer(q *dns.Msg) (resp *dns.Msg) {
	defer func() {
		if recover() != nil {
			resp = new(dns.Msg)
			resp.SetRcode(q, dns.RcodeServerFailure)
		}
	}()
	return s.Answer(q)
}
