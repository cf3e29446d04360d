package signer

import (
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// This file replaces a zone's whole key set: an algorithm rollover (the
// policy names another algorithm than the keys', RFC 6781 4.1.4, RFC 7583
// 3.3.5) or a CSK rollover (csk-lifetime), by the "double-signature,
// signatures first" method, with the DNS clock:
//
//	new-rrsigs: the new keys sign every RRset beside the old ones, but
//	their DNSKEYs are not published yet: a validator that finds a DNSKEY
//	of an algorithm must find signatures of it on every RRset (RFC 4035
//	2.2; Unbound insists), so the signatures go first. After the zone's
//	largest TTL (plus publishSafety) every cache holds doubly signed data;
//	new-dnskey: the new DNSKEYs join the DNSKEY RRset; CDS/CDNSKEY still
//	name the old KSK. After the DNSKEY TTL (plus publishSafety) every
//	cache knows both sets;
//	new-ds: CDS/CDNSKEY name the new KSK alone, for the parent to swap the
//	DS. Once the parent is seen with the new DS (or ksk-wait has passed)
//	and its DS TTL plus publishSafety later (no cache holds the old DS
//	alone);
//	dnskey-removed: the old DNSKEYs leave the DNSKEY RRset; the old ZSK
//	(or CSK) keeps signing, unpublished, until the DNSKEY TTL (plus
//	retireSafety) later no cache holds the DNSKEY RRset that named it;
//	then the old keys are dropped and the new ones are the active keys.
//
// The same steps roll a CSK within one algorithm: a CSK cannot be rolled
// by pre-publication (as a ZSK) or double-DS (as a KSK) alone, since it is
// both.

// RollStage is where a key-set rollover is.
type RollStage string

const (
	RollNewRRSIGs     RollStage = "new-rrsigs"
	RollNewDNSKEY     RollStage = "new-dnskey"
	RollNewDS         RollStage = "new-ds"
	RollDNSKEYRemoved RollStage = "dnskey-removed"
)

// rollState is the progress of a key-set rollover, kept in keys.json.
type rollState struct {
	Why   string    `json:"why"`   // "algorithm 8 to 13", "csk-lifetime"
	Stage RollStage `json:"stage"` // what the zone publishes now
	Since time.Time `json:"since"` // DNS time the stage began
	// DSSeen: when the parent was first seen with the new DS (or
	// ksk-wait passed), in the new-ds stage.
	DSSeen time.Time `json:"ds_seen,omitzero"`
}

// rollStage is the stage of the key-set rollover under way, "" for none.
func (ks *keyStore) rollStage() RollStage {
	if ks.state.Roll == nil {
		return ""
	}
	return ks.state.Roll.Stage
}

// rollNeeded says why the keys must be replaced now ("" if they need not
// be, or cannot yet: another rollover is under way).
func (s *Signer) rollNeeded(now time.Time) string {
	ks := s.keys
	if ks.state.Roll != nil {
		return ""
	}
	var active []KeyInfo
	for _, k := range ks.state.Keys {
		switch k.state() {
		case StateActive:
			active = append(active, k)
		default:
			return "" // a ZSK or KSK rollover first finishes
		}
	}
	if len(active) == 0 {
		return ""
	}
	if alg := active[0].Algorithm; alg != s.policy.Algorithm {
		return fmt.Sprintf("algorithm %d to %d", alg, s.policy.Algorithm)
	}
	if s.policy.CSKLifetime != 0 && active[0].Role == RoleCSK && !now.Before(active[0].Active.Add(s.policy.CSKLifetime)) {
		return "csk-lifetime"
	}
	return ""
}

// keySetRolloverLocked starts or moves on a key-set rollover at now and
// reports whether the keys changed (the zone must then be signed again).
func (s *Signer) keySetRolloverLocked(now time.Time) bool {
	if s.signed == nil || s.policy.Unsign {
		return false
	}
	r := s.keys.state.Roll
	if r == nil {
		why := s.rollNeeded(now)
		if why == "" {
			return false
		}
		return s.startRollLocked(why, now)
	}
	ipub := time.Duration(s.keyTTL)*time.Second + publishSafety
	changed := false
	switch r.Stage {
	case RollNewRRSIGs:
		if now.Before(r.Since.Add(time.Duration(s.maxTTL)*time.Second + publishSafety)) {
			return false
		}
		s.setStage(RollNewDNSKEY, now, "key rollover: the new DNSKEYs are published")
		changed = true
	case RollNewDNSKEY:
		if now.Before(r.Since.Add(ipub)) {
			return false
		}
		s.setStage(RollNewDS, now, "key rollover: CDS/CDNSKEY name the new KSK; the parent needs its DS")
		for _, ds := range s.rollDS() {
			s.log.Info("key rollover: DS for the parent", "zone", s.policy.Zone, "ds", ds.String())
		}
		changed = true
	case RollNewDS:
		if r.DSSeen.IsZero() {
			switch {
			case s.parentHasAny(s.rollDS()):
				s.log.Info("key rollover: the parent has the new DS", "zone", s.policy.Zone)
			case s.policy.KSKWait > 0 && !now.Before(r.Since.Add(s.policy.KSKWait)):
				s.log.Info("key rollover: ksk-wait has passed without the new DS seen at the parent; going on", "zone", s.policy.Zone)
			default:
				return false
			}
			r.DSSeen = now.UTC()
			s.saveKeysLocked()
			return false
		}
		ttl := s.parentDSTTL
		if ttl == 0 {
			ttl = defaultDSTTL
		}
		if now.Before(r.DSSeen.Add(time.Duration(ttl)*time.Second + publishSafety)) {
			return false
		}
		s.setStage(RollDNSKEYRemoved, now, "key rollover: the old DNSKEYs are removed; the old DS can leave the parent")
		changed = true
	case RollDNSKEYRemoved:
		if now.Before(r.Since.Add(time.Duration(s.keyTTL)*time.Second + retireSafety)) {
			return false
		}
		s.finishRollLocked(now)
		changed = true
	}
	return changed
}

// startRollLocked makes the new key set and starts signing with it.
func (s *Signer) startRollLocked(why string, now time.Time) bool {
	ks := s.keys
	roles := []Role{RoleKSK, RoleZSK}
	if s.policy.CSK {
		roles = []Role{RoleCSK}
	}
	n := len(ks.state.Keys)
	for _, role := range roles {
		if _, err := ks.addKey(s.policy, role, StateIncoming, now); err != nil {
			// Drop what was made: the rollover starts again later.
			for len(ks.state.Keys) > n {
				ks.remove(len(ks.state.Keys) - 1)
			}
			s.status.LastError = "key rollover: " + err.Error()
			s.log.Error("key rollover: cannot make the new keys; the current ones keep signing", "zone", s.policy.Zone, "err", err)
			return false
		}
	}
	for i := range ks.state.Keys[:n] {
		ks.state.Keys[i].State = StateOutgoing
	}
	for i := n; i < len(ks.state.Keys); i++ {
		ks.state.Keys[i].Active = now.UTC()
	}
	ks.state.Roll = &rollState{Why: why, Stage: RollNewRRSIGs, Since: now.UTC()}
	s.log.Info("key rollover: the new keys sign beside the old ones, not yet published", "zone", s.policy.Zone, "why", why,
		"algorithm", s.policy.Algorithm)
	s.saveKeysLocked()
	return true
}

func (s *Signer) setStage(st RollStage, now time.Time, msg string) {
	r := s.keys.state.Roll
	r.Stage, r.Since = st, now.UTC()
	s.log.Info(msg, "zone", s.policy.Zone, "why", r.Why, "stage", st)
	s.saveKeysLocked()
}

// finishRollLocked drops the old keys: the new ones are the active set.
func (s *Signer) finishRollLocked(now time.Time) {
	ks := s.keys
	for i := len(ks.state.Keys) - 1; i >= 0; i-- {
		switch ks.state.Keys[i].state() {
		case StateOutgoing:
			s.logKey("key rollover: old key dropped", ks.state.Keys[i])
			ks.remove(i)
		case StateIncoming:
			// Lifetimes (zsk-lifetime, csk-lifetime) count from here.
			ks.state.Keys[i].State, ks.state.Keys[i].Active = StateActive, now.UTC()
		}
	}
	s.log.Info("key rollover: done", "zone", s.policy.Zone, "why", ks.state.Roll.Why)
	ks.state.Roll = nil
	s.saveKeysLocked()
}

// rollDS are the DS records (SHA-256) of the new set's SEP keys.
func (s *Signer) rollDS() []*dns.DS {
	var out []*dns.DS
	for i, k := range s.keys.keys {
		if s.keys.state.Keys[i].state() == StateIncoming && k.IsSEP() {
			out = append(out, k.DNSKEY.ToDS(dns.SHA256))
		}
	}
	return out
}

// parentHasAny reports whether the parent, at the last check, had one of
// ds.
func (s *Signer) parentHasAny(ds []*dns.DS) bool {
	for _, d := range ds {
		for _, seen := range s.parentSeen {
			if seen.KeyTag == d.KeyTag && seen.Algorithm == d.Algorithm && seen.DigestType == d.DigestType && strings.EqualFold(seen.Digest, d.Digest) {
				return true
			}
		}
	}
	return false
}

// saveKeysLocked writes keys.json and refreshes the status's keys.
func (s *Signer) saveKeysLocked() {
	if err := s.keys.save(); err != nil {
		s.log.Error("key state not saved", "zone", s.policy.Zone, "err", err)
	}
	s.status.Keys = append(s.status.Keys[:0], s.keys.state.Keys...)
	s.status.DS = s.dsStrings()
	s.status.Roll = s.keys.rollDescription()
}

// rollDescription says where a key-set rollover is, for the status.
func (ks *keyStore) rollDescription() string {
	r := ks.state.Roll
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%s: %s since %s", r.Why, r.Stage, r.Since.UTC().Format(time.RFC3339))
}
