package xfrout

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
)

// The journal keeps the differences between the versions of a zone that
// Check saw, so that IXFR clients get only what changed (RFC 1995). It is
// bounded in steps and in records; older steps are dropped, and a client
// older than the oldest kept gets the whole zone.
const (
	maxJournalSteps   = 16
	maxJournalRecords = 100_000
)

type journal struct {
	zone    *authority.Zone // the version last seen, to diff the next against
	diffs   []*outDiff      // a chain, oldest first, ending at zone's serial
	records int
}

// outDiff is one version step: immutable once made.
type outDiff struct {
	from, to *dns.SOA
	del, add []dns.RR
}

// record notes the version cur of origin (s.mu held): the difference from
// the version seen before joins the journal.
func (s *Server) record(origin string, cur *authority.Zone) {
	j := s.journals[origin]
	if j == nil {
		s.journals[origin] = &journal{zone: cur}
		return
	}
	prev := j.zone
	j.zone = cur
	if prev == nil || prev.SOA() == nil {
		j.diffs, j.records = nil, 0
		return
	}
	d := diffZones(prev, cur)
	if n := len(j.diffs); n > 0 && j.diffs[n-1].to.Serial != d.from.Serial {
		j.diffs, j.records = nil, 0 // a gap (an expired zone in between): start again
	}
	j.diffs = append(j.diffs, d)
	j.records += len(d.del) + len(d.add)
	for len(j.diffs) > maxJournalSteps || (j.records > maxJournalRecords && len(j.diffs) > 0) {
		j.records -= len(j.diffs[0].del) + len(j.diffs[0].add)
		j.diffs = j.diffs[1:]
	}
}

// diffsFrom returns the chain of steps from serial from to serial to, or
// nil when the journal does not hold it.
func (s *Server) diffsFrom(origin string, from, to uint32) []*outDiff {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.journals[origin]
	if j == nil {
		return nil
	}
	for i, d := range j.diffs {
		if d.from.Serial == from {
			chain := j.diffs[i:]
			if chain[len(chain)-1].to.Serial != to {
				return nil // the served version is newer than the journal: whole zone
			}
			return append([]*outDiff(nil), chain...)
		}
	}
	return nil
}

// diffZones lists what to delete from a and add to reach b. Records are
// compared whole, TTL included: a TTL change is a deletion and an addition.
func diffZones(a, b *authority.Zone) *outDiff {
	d := &outDiff{from: a.SOA(), to: b.SOA()}
	old := make(map[string]dns.RR)
	for _, rr := range a.Records() {
		if rr.Header().Rrtype != dns.TypeSOA {
			old[rr.String()] = rr
		}
	}
	for _, rr := range b.Records() {
		if rr.Header().Rrtype == dns.TypeSOA {
			continue
		}
		k := rr.String()
		if _, ok := old[k]; ok {
			delete(old, k)
			continue
		}
		d.add = append(d.add, rr)
	}
	for _, rr := range old {
		d.del = append(d.del, rr)
	}
	return d
}
