package signer

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
)

// This file turns signing off safely (RFC 8078 4, RFC 6781 4.3.2): the
// zone stays signed and publishes the "delete DS" CDS/CDNSKEY until the
// parent has removed the DS and the DS has left caches (its TTL after the
// removal is seen), or until unsign-wait has passed; only then is it
// served unsigned. Serving it unsigned while a DS remains would make it
// bogus everywhere.

// ParentDSFunc asks the parent for zone's DS RRset (through the co-located
// validating resolver). It returns the DS records (none when the parent
// securely says there are none) or an error when the answer is not
// trustworthy (SERVFAIL, bogus, unreachable).
type ParentDSFunc func(ctx context.Context, zone string) ([]*dns.DS, error)

// parentCheckInterval is how often the parent's DS is asked for while
// signing is being turned off: answers come from the resolver's cache
// until the DS TTL runs out, so asking more often costs nothing upstream.
const parentCheckInterval = 5 * time.Second

// defaultDSTTL is the wait after the DS is gone when no DS TTL was ever
// seen (e.g. the DS was gone before the first check): a day covers the
// common parent TTLs.
const defaultDSTTL = 24 * 60 * 60

// unsignState is the progress of turning signing off, kept in keys.json.
type unsignState struct {
	Started time.Time `json:"started"`           // CDS/CDNSKEY delete first published
	DSGone  time.Time `json:"ds_gone,omitzero"`  // parent first seen without DS
	DSTTL   uint32    `json:"ds_ttl,omitempty"`  // largest DS TTL seen at the parent
	Done    time.Time `json:"unsigned,omitzero"` // served unsigned since
}

// unsignDue reports whether the parent should be asked now: while
// signing is turned off, or a KSK rollover waits for the parent's DS.
func (s *Signer) unsignDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parentDS == nil || s.signed == nil || time.Since(s.lastParentCheck) < parentCheckInterval {
		return false
	}
	if _, pending := s.keys.cdsKeys(); pending {
		return true
	}
	u := s.keys.state.Unsign
	return s.policy.Unsign && (u == nil || u.Done.IsZero())
}

// checkParent asks the parent for the DS (outside the lock: it is I/O).
func (s *Signer) checkParent(ctx context.Context) {
	ds, err := s.parentDS(ctx, s.policy.Zone)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastParentCheck = time.Now()
	if err != nil {
		s.log.Debug("parent DS check failed; asking again later", "zone", s.policy.Zone, "err", err)
		return
	}
	s.parentSeen = ds
	for _, d := range ds {
		s.parentDSTTL = max(s.parentDSTTL, d.Hdr.Ttl)
	}
	u := s.keys.state.Unsign
	if u == nil || !u.Done.IsZero() {
		return
	}
	now := s.clock.Now()
	for _, d := range ds {
		u.DSTTL = max(u.DSTTL, d.Hdr.Ttl)
	}
	switch {
	case len(ds) > 0 && !u.DSGone.IsZero():
		s.log.Warn("turning signing off: the parent has a DS again; waiting for its removal", "zone", s.policy.Zone)
		u.DSGone = time.Time{}
	case len(ds) == 0 && u.DSGone.IsZero():
		u.DSGone = now.UTC()
		s.log.Info("turning signing off: the parent no longer has a DS; signing stops once it has left caches",
			"zone", s.policy.Zone, "wait", s.dsTTLLocked())
	default:
		return
	}
	if err := s.keys.save(); err != nil {
		s.log.Error("key state not saved", "zone", s.policy.Zone, "err", err)
	}
}

func (s *Signer) dsTTLLocked() time.Duration {
	ttl := s.keys.state.Unsign.DSTTL
	if ttl == 0 {
		ttl = defaultDSTTL
	}
	return time.Duration(ttl)*time.Second + retireSafety
}

// unsignLocked moves turning signing off on at now; it returns the
// unsigned version to serve once signing has stopped, nil before.
func (s *Signer) unsignLocked(now time.Time) *authority.Zone {
	if !s.policy.Unsign {
		return nil
	}
	u := s.keys.state.Unsign
	if u == nil {
		s.keys.state.Unsign = &unsignState{Started: now.UTC()}
		s.log.Info("turning signing off: publishing the delete CDS/CDNSKEY (RFC 8078); the zone stays signed until the parent's DS is gone",
			"zone", s.policy.Zone)
		if err := s.keys.save(); err != nil {
			s.log.Error("key state not saved", "zone", s.policy.Zone, "err", err)
		}
		return nil
	}
	if !u.Done.IsZero() {
		return s.unsigned
	}
	dsGone := !u.DSGone.IsZero() && !now.Before(u.DSGone.Add(s.dsTTLLocked()))
	timeUp := s.policy.UnsignWait > 0 && !now.Before(u.Started.Add(s.policy.UnsignWait))
	if !dsGone && !timeUp {
		return nil
	}
	u.Done = now.UTC()
	why := "the parent's DS is gone and its TTL has passed"
	if !dsGone {
		why = "unsign-wait has passed"
	}
	s.log.Info("turning signing off: the zone is now served unsigned", "zone", s.policy.Zone, "because", why)
	if err := s.keys.save(); err != nil {
		s.log.Error("key state not saved", "zone", s.policy.Zone, "err", err)
	}
	s.status.Unsigned = true
	s.writeStatusLocked()
	return s.unsigned
}
