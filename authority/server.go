package authority

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/transport"
)

// Server answers authoritatively for a set of zones, choosing for each
// query the zone with the longest origin that encloses the name. Reads are
// lock-free: the zone set is an immutable map behind an atomic pointer that
// Set and Remove replace whole.
type Server struct {
	zones atomic.Pointer[zoneSet]
	mu    sync.Mutex // serialises writers; guards files
	// files are the zone files loaded with LoadFile, in the order first
	// loaded, for Reload.
	files []*zoneFile
	// hooks transform new versions of some zones before they are served
	// (publish.go).
	hooks map[string]PublishHook
	// onChange are told after each change of what is served (OnChange).
	onChange []func(zonesAdded bool)
	// flat remembers flattened CNAME targets (flatten_cache.go); nil until
	// SetFlattener or the first flattened answer.
	flat atomic.Pointer[flatCacheState]
	// flatten are the flattening modes of origins, for their zone files.
	flatten map[string]FlattenMode
}

// zoneFile is a zone file the Server serves and re-reads on Reload.
type zoneFile struct {
	path   string
	origin string // as given to LoadFile: "" takes it from the SOA
	zone   *Zone  // the version serving; nil while the file is gone
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
	s.updateLocked(change)
}

func (s *Server) updateLocked(change func(map[string]*Zone)) {
	old := s.zones.Load()
	next := make(map[string]*Zone, len(old.byOrigin)+1)
	for k, v := range old.byOrigin {
		next[k] = v
	}
	change(next)
	s.applyHooksLocked(old.byOrigin, next)
	s.publishLocked(&zoneSet{byOrigin: next})
}

// publishLocked serves set, then tells OnChange's functions.
func (s *Server) publishLocked(set *zoneSet) {
	old := s.zones.Swap(set)
	if c := s.flat.Load(); c != nil {
		c.purge()
	}
	added := false
	for origin := range set.byOrigin {
		if _, ok := old.byOrigin[origin]; !ok {
			added = true
			break
		}
	}
	for _, f := range s.onChange {
		f(added)
	}
}

// OnChange has f called after every change of the served zones (Set,
// Remove, Reload, Replace and transfers in), once the new data answers:
// for those that keep answers made from it, such as a ready-to-send answer
// cache. zonesAdded says a zone is served that was not before: names it
// covers were answered by others until now. f runs with the Server's
// writers held off, so it must be quick and must not change the Server.
func (s *Server) OnChange(f func(zonesAdded bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, f)
}

// Set adds z, or atomically replaces the zone with the same origin.
func (s *Server) Set(z *Zone) {
	if z == nil {
		return
	}
	s.update(func(m map[string]*Zone) { m[z.origin] = z })
}

// Remove stops serving the zone with this origin; Reload does not bring it
// back from a file loaded earlier.
func (s *Server) Remove(origin string) {
	origin = dnsname.Canonical(origin)
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.files[:0]
	for _, f := range s.files {
		if f.zone == nil || f.zone.origin != origin {
			kept = append(kept, f)
		}
	}
	clear(s.files[len(kept):])
	s.files = kept
	s.updateLocked(func(m map[string]*Zone) { delete(m, origin) })
}

// SetFlatten has the zone files loaded afterwards for origin built with
// CNAME flattening in mode (FlattenOff turns it off); call it before
// LoadFile.
func (s *Server) SetFlatten(origin string, mode FlattenMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flatten == nil {
		s.flatten = make(map[string]FlattenMode)
	}
	s.flatten[dnsname.Canonical(dns.Fqdn(origin))] = mode
}

// zoneOptions are the build options of origin's zone files.
func (s *Server) zoneOptions(origin string) ZoneOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.zoneOptionsLocked(origin)
}

func (s *Server) zoneOptionsLocked(origin string) ZoneOptions {
	return ZoneOptions{Flatten: s.flatten[origin]}
}

// Zone returns the zone served with this origin, or nil.
func (s *Server) Zone(origin string) *Zone {
	return s.zones.Load().byOrigin[dnsname.Canonical(origin)]
}

// LoadFile parses and checks a zone file and then serves it; Reload reads
// it again. On any error the previous version of the zone (if any) keeps
// serving. Loading again a file that now holds another origin stops serving
// the old one, as Reload does.
func (s *Server) LoadFile(path, origin string) error {
	z, err := loadZoneFile(path, origin, s.zoneOptions)
	if err != nil {
		return fmt.Errorf("load zone: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fileLocked(path)
	if f == nil {
		f = &zoneFile{path: path}
		s.files = append(s.files, f)
	}
	f.origin = origin
	old := f.zone
	f.zone = z
	s.updateLocked(func(m map[string]*Zone) {
		if old != nil && old.origin != z.origin {
			s.unserveLocked(m, old.origin)
		}
		m[z.origin] = z
	})
	return nil
}

// ParseFile is LoadZoneFile with the options this Server builds the zone
// with (SetFlatten), without serving it.
func (s *Server) ParseFile(path, origin string) (*Zone, error) {
	return loadZoneFile(path, origin, s.zoneOptions)
}

func (s *Server) fileLocked(path string) *zoneFile {
	for _, f := range s.files {
		if f.path == path {
			return f
		}
	}
	return nil
}

// unserveLocked drops origin from m, unless another loaded file holds it:
// then that file's zone serves it.
func (s *Server) unserveLocked(m map[string]*Zone, origin string) {
	delete(m, origin)
	for _, f := range s.files {
		if f.zone != nil && f.zone.origin == origin {
			m[origin] = f.zone
		}
	}
}

// ZoneChange is what a Reload did with one zone file.
type ZoneChange struct {
	File string
	// Origin is the zone now served from File; "" if none.
	Origin string
	// Removed is a zone no longer served from File, and Reason says why:
	// the file is gone, or it now holds another origin.
	Removed, Reason string
	// Err: File failed to load, and its previous version keeps serving.
	Err error
}

// Reload reads again every file loaded with LoadFile and publishes the
// result in one step. A file that loads serves its new version; if its
// origin changed, the old origin is no longer served from it. A file that
// is gone stops serving its zone (it is served again once it is back). A
// file that fails to load keeps its previous version serving (an operator's
// typo must not take a zone down). A file that was and still is gone
// reports nothing.
func (s *Server) Reload() []ZoneChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	changes := make([]ZoneChange, 0, len(s.files))
	var unserved []string
	for _, f := range s.files {
		c := ZoneChange{File: f.path}
		z, err := loadZoneFile(f.path, f.origin, s.zoneOptionsLocked)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if f.zone == nil {
				continue
			}
			c.Removed, c.Reason = f.zone.origin, "zone file is gone"
			unserved = append(unserved, f.zone.origin)
			f.zone = nil
		case err != nil:
			c.Err = fmt.Errorf("load zone: %w", err)
			if f.zone != nil {
				c.Origin = f.zone.origin
			}
		default:
			if f.zone != nil && f.zone.origin != z.origin {
				c.Removed, c.Reason = f.zone.origin, "zone file now holds "+z.origin
				unserved = append(unserved, f.zone.origin)
			}
			f.zone = z
			c.Origin = z.origin
		}
		changes = append(changes, c)
	}
	s.updateLocked(func(m map[string]*Zone) {
		for _, origin := range unserved {
			s.unserveLocked(m, origin)
		}
		for _, f := range s.files {
			if f.zone != nil {
				m[f.zone.origin] = f.zone
			}
		}
	})
	return changes
}

// Covers reports whether one of the zones encloses name.
func (s *Server) Covers(name string) bool {
	return s.zoneFor(dnsname.Canonical(name), 0) != nil
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
	for n := cn; n != "."; n = dnsname.Parent(n) {
		if z := set.byOrigin[n]; z != nil {
			if qtype == dns.TypeDS && len(n) == len(cn) {
				apexMatch = z
				continue
			}
			return z
		}
	}
	if z := set.byOrigin["."]; z != nil {
		return z // the root has no parent side: it answers its own DS
	}
	return apexMatch
}

// Answer builds the full authoritative response to q without any I/O
// (but for a flattened CNAME whose target is not cached: AnswerVolatile). It
// is safe on any message: no question gives FORMERR, a class other than IN
// REFUSED, a name outside the zones REFUSED. The response holds copies of
// the zone's records: the caller owns it. Answer(nil) is nil.
func (s *Server) Answer(q *dns.Msg) *dns.Msg {
	m, _ := s.AnswerVolatile(q)
	return m
}

// AnswerVolatile is Answer, and reports whether the response holds data
// from outside the zones (a flattened CNAME's target, or the failure to
// resolve it): such a response lives by its own TTL, not until the zones
// change, so it must not be kept as the zones' answers are.
func (s *Server) AnswerVolatile(q *dns.Msg) (*dns.Msg, bool) {
	if q == nil {
		return nil, false
	}
	m := new(dns.Msg)
	m.SetReply(q)
	opt := q.IsEdns0()
	r := responder{m: m, do: opt != nil && opt.Do()}
	s.answer(&r, q, opt)
	volatile := r.flat != nil
	if volatile {
		s.finishFlattened(&r)
	}
	if opt != nil {
		// RFC 6891 7: answer EDNS with EDNS, our size, DO echoed.
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(EDNSSize)
		if opt.Do() {
			o.SetDo()
		}
		if r.ede != nil {
			o.Option = append(o.Option, r.ede)
		}
		m.Extra = append(m.Extra, o)
	}
	return m, volatile
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
	cn := dnsname.Canonical(name)
	z := s.zoneFor(cn, question.Qtype)
	if z == nil {
		m.Rcode = dns.RcodeRefused
		return
	}
	if z.unavailable != nil {
		z.answerUnavailable(r)
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
