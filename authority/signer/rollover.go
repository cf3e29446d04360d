package signer

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// This file rolls ZSKs by pre-publication (RFC 6781 4.1.1.1), with the
// timings of RFC 7583 3.2 (Ipub and Iret), moved by the DNS clock:
//
//	published: the successor joins the DNSKEY RRset, the old ZSK still signs;
//	after Ipub (DNSKEY TTL + publishSafety) every cache that holds the
//	DNSKEY RRset knows the successor, so it
//	becomes active: the zone is signed with it, the old ZSK is retired but
//	stays in the DNSKEY RRset; after Iret (the zone's largest TTL +
//	retireSafety) no cache holds a signature of the old ZSK, so it is
//	removed.
//
// The successor is published Ipub before the old ZSK's lifetime ends, so
// that it takes over on time.

// Safety margins of RFC 7583 (publish and retire safety): time for the
// change to reach every secondary and for clock differences.
const (
	publishSafety = time.Hour
	retireSafety  = time.Hour
)

// rolloverLocked moves the ZSK rollover on at now and reports whether the
// keys changed (the zone must then be signed again).
func (s *Signer) rolloverLocked(now time.Time) bool {
	if s.policy.ZSKLifetime == 0 || s.signed == nil || s.keys.state.Roll != nil {
		return false
	}
	ipub := time.Duration(s.keyTTL)*time.Second + publishSafety
	iret := time.Duration(s.maxTTL)*time.Second + retireSafety
	ks := s.keys
	var active, next, retired = -1, -1, -1
	for i := range ks.state.Keys {
		k := &ks.state.Keys[i]
		if k.Role != RoleZSK {
			continue
		}
		switch k.state() {
		case StateActive:
			active = i
		case StatePublished:
			next = i
		case StateRetired:
			retired = i
		}
	}
	changed := false
	if retired >= 0 && !now.Before(ks.state.Keys[retired].Retired.Add(iret)) {
		s.logKey("ZSK rollover: old ZSK removed from the DNSKEY RRset", ks.state.Keys[retired])
		ks.remove(retired)
		changed = true
		// Indexes after the removed one shift down.
		if active > retired {
			active--
		}
		if next > retired {
			next--
		}
	}
	switch {
	case active < 0:
		return changed
	case next < 0 && retired < 0 && ks.state.Keys[active].Algorithm == s.policy.Algorithm &&
		!now.Before(ks.state.Keys[active].Active.Add(s.policy.ZSKLifetime-ipub)):
		// (Another algorithm is reached by a key-set rollover, not here.)
		info, err := ks.addKey(s.policy, RoleZSK, StatePublished, now)
		if err != nil {
			s.status.LastError = "ZSK rollover: " + err.Error()
			s.log.Error("ZSK rollover: cannot make the successor ZSK; the current one keeps signing", "zone", s.policy.Zone, "err", err)
			return changed
		}
		s.logKey("ZSK rollover: successor ZSK published", *info)
		changed = true
	case next >= 0 && !now.Before(ks.state.Keys[next].Published.Add(ipub)):
		old, nk := &ks.state.Keys[active], &ks.state.Keys[next]
		old.State, old.Retired = StateRetired, now.UTC()
		nk.State, nk.Active = StateActive, now.UTC()
		s.logKey("ZSK rollover: successor ZSK now signs", *nk)
		s.logKey("ZSK rollover: old ZSK retired", *old)
		changed = true
	}
	if changed {
		if err := ks.save(); err != nil {
			s.log.Error("key state not saved", "zone", s.policy.Zone, "err", err)
		}
		s.status.Keys = append(s.status.Keys[:0], ks.state.Keys...)
	}
	return changed
}

func (s *Signer) logKey(msg string, k KeyInfo) {
	s.log.Info(msg, "zone", s.policy.Zone, "key", k.Tag, "algorithm", k.Algorithm, "file", k.File)
}

// recordTTLs notes the DNSKEY TTL and the largest TTL of a signed zone,
// which set the rollover's waits.
func (s *Signer) recordTTLs(rrs []dns.RR) {
	s.keyTTL, s.maxTTL = 0, 0
	for _, rr := range rrs {
		h := rr.Header()
		s.maxTTL = max(s.maxTTL, h.Ttl)
		if h.Rrtype == dns.TypeDNSKEY {
			s.keyTTL = max(s.keyTTL, h.Ttl)
		}
	}
}

// kskRolloverLocked moves a double-DS KSK rollover (RFC 6781 4.1.2, RFC
// 7583 3.3.2) on at now and reports whether the keys changed:
//
//	ds-pending: a successor KSK is made and its DS offered to the parent
//	(CDS/CDNSKEY for both KSKs), while the old KSK keeps signing; once the
//	parent has the new DS (seen through the co-located resolver, or
//	ksk-wait has passed) and the parent's DS TTL plus publishSafety later
//	(every cache holds both DS), the successor replaces the old KSK in
//	the DNSKEY RRset at once; the old DS can then leave the parent.
func (s *Signer) kskRolloverLocked(now time.Time) bool {
	if s.policy.KSKLifetime == 0 || s.signed == nil || s.policy.Unsign || s.keys.state.Roll != nil {
		return false
	}
	ks := s.keys
	active, next := -1, -1
	for i := range ks.state.Keys {
		k := &ks.state.Keys[i]
		if k.Role != RoleKSK {
			continue
		}
		switch k.state() {
		case StateActive:
			active = i
		case StateDSPending:
			next = i
		}
	}
	if active < 0 {
		return false
	}
	changed, save := false, false
	switch {
	case next < 0:
		if now.Before(ks.state.Keys[active].Active.Add(s.policy.KSKLifetime)) || ks.state.Keys[active].Algorithm != s.policy.Algorithm {
			return false // (another algorithm is reached by a key-set rollover)
		}
		info, err := ks.addKey(s.policy, RoleKSK, StateDSPending, now)
		if err != nil {
			s.status.LastError = "KSK rollover: " + err.Error()
			s.log.Error("KSK rollover: cannot make the successor KSK; the current one keeps serving", "zone", s.policy.Zone, "err", err)
			return false
		}
		ds := ks.keys[len(ks.keys)-1].DNSKEY.ToDS(dns.SHA256)
		s.log.Info("KSK rollover: successor KSK made; the parent needs its DS (offered as CDS/CDNSKEY)",
			"zone", s.policy.Zone, "key", info.Tag, "ds", ds.String())
		changed, save = true, true
	case ks.state.Keys[next].DSSeen.IsZero():
		k := &ks.state.Keys[next]
		switch {
		case s.parentHas(ks.keys[next].DNSKEY):
			s.logKey("KSK rollover: the parent has the successor's DS", *k)
		case s.policy.KSKWait > 0 && !now.Before(k.Published.Add(s.policy.KSKWait)):
			s.logKey("KSK rollover: ksk-wait has passed without the successor's DS seen at the parent; going on", *k)
		default:
			return false
		}
		k.DSSeen = now.UTC()
		save = true
	default:
		k := &ks.state.Keys[next]
		ttl := s.parentDSTTL
		if ttl == 0 {
			ttl = defaultDSTTL
		}
		if now.Before(k.DSSeen.Add(time.Duration(ttl)*time.Second + publishSafety)) {
			return false
		}
		old := ks.state.Keys[active]
		k.State, k.Active = StateActive, now.UTC()
		s.logKey("KSK rollover: successor KSK now signs the DNSKEY RRset", *k)
		s.logKey("KSK rollover: old KSK removed; its DS can leave the parent", old)
		ks.remove(active)
		changed, save = true, true
	}
	if save {
		if err := ks.save(); err != nil {
			s.log.Error("key state not saved", "zone", s.policy.Zone, "err", err)
		}
		s.status.Keys = append(s.status.Keys[:0], ks.state.Keys...)
		s.status.DS = s.dsStrings()
	}
	return changed
}

// parentHas reports whether the parent's DS RRset, at the last check,
// names key.
func (s *Signer) parentHas(key *dns.DNSKEY) bool {
	for _, d := range s.parentSeen {
		if d.KeyTag != key.KeyTag() || d.Algorithm != key.Algorithm {
			continue
		}
		if want := key.ToDS(d.DigestType); want != nil && strings.EqualFold(want.Digest, d.Digest) {
			return true
		}
	}
	return false
}
