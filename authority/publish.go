package authority

import "github.com/sextant-dns/sextant/internal/dnsname"

// PublishHook sees each new version of one zone (from Set, LoadFile or
// Reload) before it is served, and returns the version to serve instead:
// online signing turns the unsigned zone into a signed one here, so that
// signatures are made once per version and never per query. Returning nil
// keeps the version serving now (none, if there is none). Hooks run with
// the Server's writer lock held: they must not call back into the Server.
// Unavailable zones (UnavailableZone) pass through untouched.
type PublishHook func(z *Zone) *Zone

// SetPublishHook installs h for origin (nil removes it) and passes the
// version served now, if any, through it at once (if h returns nil, that
// version keeps serving).
func (s *Server) SetPublishHook(origin string, h PublishHook) {
	origin = dnsname.Canonical(origin)
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.hooks, origin)
		return
	}
	if s.hooks == nil {
		s.hooks = make(map[string]PublishHook)
	}
	s.hooks[origin] = h
	cur := s.zones.Load().byOrigin[origin]
	if cur == nil || cur.unavailable != nil {
		return
	}
	if f := s.fileZoneLocked(origin); f != nil {
		cur = f // the file's unsigned version, not one a hook made
	}
	if out := h(cur); out != nil {
		s.storeLocked(origin, out)
	}
}

// storeLocked serves z for origin, without hooks.
func (s *Server) storeLocked(origin string, z *Zone) {
	cur := s.zones.Load()
	m := make(map[string]*Zone, len(cur.byOrigin)+1)
	for k, v := range cur.byOrigin {
		m[k] = v
	}
	m[origin] = z
	s.publishLocked(&zoneSet{byOrigin: m})
}

// Replace serves next in place of old, if old is still what is served for
// its origin; it reports whether it did. Hooks are not applied: this is how
// their owner publishes a version it made itself (e.g. fresh signatures)
// without racing a newer version published meanwhile.
func (s *Server) Replace(old, next *Zone) bool {
	if old == nil || next == nil || old.origin != next.origin {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.zones.Load().byOrigin[old.origin] != old {
		return false
	}
	s.storeLocked(old.origin, next)
	return true
}

// fileZoneLocked is the zone a loaded file serves for origin, or nil.
func (s *Server) fileZoneLocked(origin string) *Zone {
	for _, f := range s.files {
		if f.zone != nil && f.zone.origin == origin {
			return f.zone
		}
	}
	return nil
}

// applyHooksLocked passes each zone of next that differs from prev through
// its origin's hook.
func (s *Server) applyHooksLocked(prev, next map[string]*Zone) {
	for origin, h := range s.hooks {
		z := next[origin]
		if z == nil || z == prev[origin] || z.unavailable != nil {
			continue
		}
		switch out := h(z); {
		case out != nil:
			next[origin] = out
		case prev[origin] != nil:
			next[origin] = prev[origin]
		default:
			delete(next, origin)
		}
	}
}
