package signer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

// checkInterval is how often the re-signing loop reads the DNS clock. The
// clock may jump (--clock-file), so the loop polls rather than sleeping
// until the computed refresh time; a clock read is cheap.
const checkInterval = time.Second

// Options configure a Signer.
type Options struct {
	KeyDir string      // keys live in KeyDir/<zone>/ (ZoneDir)
	Clock  clock.Clock // DNS time: signature inception and expiration
	Log    *slog.Logger
	// ParentDS checks the parent's DS while signing is turned off
	// (unsign=yes); nil: only unsign-wait ends it.
	ParentDS ParentDSFunc
}

// Signer signs one zone online.
type Signer struct {
	policy *Policy
	clock  clock.Clock
	log    *slog.Logger
	keys   *keyStore

	mu       sync.Mutex
	cache    authority.SignatureCache
	unsigned *authority.Zone // the last unsigned version published
	signed   *authority.Zone // the signed version made from it
	// signedWith is signConfig() when signed was made: a version made
	// with other keys or CDS records cannot be patched (Resign).
	signedWith string
	refresh    time.Time // DNS time at which the oldest signature needs renewing
	// keyTTL and maxTTL are the DNSKEY TTL and the largest TTL of the
	// last signed version (rollover waits).
	keyTTL, maxTTL  uint32
	parentDS        ParentDSFunc
	lastParentCheck time.Time     // wall clock
	parentSeen      []*dns.DS     // the parent's DS at the last good check
	parentDSTTL     uint32        // the largest DS TTL seen at the parent
	imported        *importedKeys // the other providers' keys (multi-signer), nil if none
	lastFetch       time.Time     // wall clock: the other provider last asked (import-dnskey-from)
	importChanged   bool          // a fetch changed the imported keys: sign again
	status          Status
}

// Status is what the signer last did, for logs and `sextant zone status`.
type Status struct {
	Zone         string    `json:"zone"`
	Policy       string    `json:"policy"`
	Keys         []KeyInfo `json:"keys"`
	DS           []string  `json:"ds"` // DS records of the SEP keys, for a registrar
	Serial       uint32    `json:"serial"`
	UnsignedSer  uint32    `json:"unsigned_serial"`
	LastSigned   time.Time `json:"last_signed"`
	NextRefresh  time.Time `json:"next_refresh"`
	SignedRRsets int       `json:"signed_rrsets"` // signed anew at the last signing
	ReusedRRsets int       `json:"reused_rrsets"` // signatures kept at the last signing
	Took         string    `json:"took"`
	// Incremental: the last signing patched the previous signed version
	// (only the change signed, authority.Resign) rather than signing the
	// whole zone.
	Incremental bool   `json:"incremental"`
	LastError   string `json:"last_error"`
	// Unsigned: signing was turned off (unsign=yes) and the zone is
	// served unsigned.
	Unsigned bool `json:"unsigned,omitempty"`
	// Roll is the key-set rollover under way: why, its stage and since
	// when ("" for none).
	Roll string `json:"roll,omitempty"`
	// Imported are the other providers' keys a multi-signer zone
	// publishes (import-dnskey).
	Imported []string `json:"imported,omitempty"`
}

// New loads (or, on first use, makes) the zone's keys: a problem with
// the key directory or the keys is an error here, before anything is
// served.
func New(p *Policy, o Options) (*Signer, error) {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.KeyDir == "" {
		return nil, fmt.Errorf("signer: no key directory")
	}
	ks, err := openKeyStore(o.KeyDir, p, o.Clock.Now())
	if err != nil {
		return nil, err
	}
	if p.Unsign && o.ParentDS == nil && p.UnsignWait == 0 {
		return nil, fmt.Errorf("zone %s: unsign=yes needs a way to see the parent's DS go (the co-located validating resolver) or unsign-wait", p.Zone)
	}
	if p.KSKLifetime != 0 && o.ParentDS == nil && p.KSKWait == 0 {
		return nil, fmt.Errorf("zone %s: ksk-lifetime needs a way to see the parent's new DS (the co-located validating resolver) or ksk-wait", p.Zone)
	}
	if o.ParentDS == nil && p.KSKWait == 0 {
		if p.CSKLifetime != 0 {
			return nil, fmt.Errorf("zone %s: csk-lifetime needs a way to see the parent's new DS (the co-located validating resolver) or ksk-wait", p.Zone)
		}
		if alg := ks.activeAlgorithm(); alg != 0 && alg != p.Algorithm {
			return nil, fmt.Errorf("zone %s: the keys are algorithm %d, the policy asks for %d: the algorithm rollover needs a way to see the parent's new DS (the co-located validating resolver) or ksk-wait",
				p.Zone, alg, p.Algorithm)
		}
	}
	s := &Signer{policy: p, clock: o.Clock, log: o.Log, keys: ks, parentDS: o.ParentDS}
	if p.ImportDNSKEY != "" {
		if s.imported, err = readImport(p.ImportDNSKEY, p, ks.ownDNSKEYs()); err != nil {
			return nil, fmt.Errorf("zone %s: %w", p.Zone, err)
		}
	}
	s.status = Status{Zone: p.Zone, Policy: p.String(), Keys: slices.Clone(ks.state.Keys), DS: s.dsStrings(),
		Unsigned: p.Unsign && ks.state.Unsign != nil && !ks.state.Unsign.Done.IsZero(), Roll: ks.rollDescription()}
	if s.imported != nil {
		s.status.Imported = s.imported.describe()
	}
	s.writeStatusLocked()
	return s, nil
}

// Zone is the signed zone's origin.
func (s *Signer) Zone() string { return s.policy.Zone }

// DS returns the DS records (SHA-256) the parent should hold.
func (s *Signer) DS() []*dns.DS {
	var out []*dns.DS
	keys, _ := s.cdsKeys()
	for _, k := range keys {
		out = append(out, k.ToDS(dns.SHA256))
	}
	return out
}

func (s *Signer) dsStrings() []string {
	var out []string
	for _, ds := range s.DS() {
		out = append(out, ds.String())
	}
	return out
}

// Status reports the signer's state.
func (s *Signer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Publish is the zone's authority.PublishHook: it returns the signed
// version of z, signing only what changed since the last version. An
// unchanged z (a SIGHUP that changed nothing) gets the version already
// made. On failure it logs and returns nil: the previous version keeps
// serving.
func (s *Signer) Publish(z *authority.Zone) *authority.Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z.Origin() != s.policy.Zone {
		return nil
	}
	if u := s.keys.state.Unsign; s.policy.Unsign && u != nil && !u.Done.IsZero() {
		s.unsigned, s.signed = z, z
		return z // signing is off
	}
	if !s.policy.Unsign && s.keys.state.Unsign != nil {
		// Signing turned back on: start afresh.
		s.keys.state.Unsign = nil
		if err := s.keys.save(); err != nil {
			s.log.Error("key state not saved", "zone", s.policy.Zone, "err", err)
		}
	}
	if s.policy.Unsign && s.keys.state.Unsign == nil {
		s.unsignLocked(s.clock.Now()) // records the start
	}
	now := s.clock.Now()
	if s.unsigned != nil && s.signed != nil && s.signed.Signed() && now.Before(s.refresh) && s.signedWith == s.signConfig() {
		changed := authority.ChangedNames(s.unsigned, z)
		if len(changed) == 0 {
			s.unsigned = z
			return s.signed
		}
		out, err := s.resignLocked(z, changed)
		if err == nil {
			s.unsigned, s.signed = z, out
			return out
		}
		if !errors.Is(err, authority.ErrNotIncremental) {
			s.log.Warn("incremental signing failed; signing the whole zone", "zone", s.policy.Zone, "err", err)
		}
	}
	out, err := s.signLocked(unsignedRecords(z), z.Flatten(), "zone signed")
	if err != nil {
		s.status.LastError = err.Error()
		s.writeStatusLocked()
		s.log.Error("zone signing failed; the previous version keeps serving", "zone", s.policy.Zone, "err", err)
		return nil
	}
	s.unsigned, s.signed = z, out
	return out
}

// Err is the last signing error ("" after a success).
func (s *Signer) Err() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.LastError
}

// Run re-signs the zone before signatures reach their refresh point, and
// moves key rollovers on, until
// ctx ends, publishing through srv.Replace (a version published meanwhile
// wins).
func (s *Signer) Run(ctx context.Context, srv *authority.Server) {
	t := time.NewTicker(checkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.unsignDue() {
			s.checkParent(ctx)
		}
		if s.fetchDue() {
			s.fetchImport(ctx)
		}
		s.resignIfDue(srv)
	}
}

// resignIfDue signs the current version again when its refresh time has
// come.
func (s *Signer) resignIfDue(srv *authority.Server) {
	s.mu.Lock()
	if s.unsigned == nil || s.signed == nil {
		s.mu.Unlock()
		return
	}
	now := s.clock.Now()
	if u := s.keys.state.Unsign; s.policy.Unsign && u != nil && !u.Done.IsZero() {
		s.mu.Unlock()
		return // signing is off
	}
	if plain := s.unsignLocked(now); plain != nil {
		old := s.signed
		s.signed = plain
		s.mu.Unlock()
		srv.Replace(old, plain)
		return
	}
	keysChanged := s.reimportLocked() || s.importChanged
	s.importChanged = false
	keysChanged = s.keySetRolloverLocked(now) || keysChanged
	keysChanged = s.rolloverLocked(now) || keysChanged
	keysChanged = s.kskRolloverLocked(now) || keysChanged
	if !keysChanged && now.Before(s.refresh) {
		s.mu.Unlock()
		return
	}
	why := "zone re-signed before its signatures' refresh point"
	if keysChanged {
		why = "zone re-signed for a key change"
	}
	old := s.signed
	out, err := s.signLocked(unsignedRecords(s.unsigned), s.unsigned.Flatten(), why)
	if err != nil {
		s.status.LastError = err.Error()
		s.writeStatusLocked()
		s.mu.Unlock()
		s.log.Error("zone re-signing failed; the signatures served keep ageing", "zone", s.policy.Zone, "err", err)
		return
	}
	s.signed = out
	s.mu.Unlock()
	if !srv.Replace(old, out) {
		s.log.Debug("re-signed version not served: a newer version came first", "zone", s.policy.Zone)
	}
}

// signOptions are the options of a signing at now with the active keys.
func (s *Signer) signOptions(active, unpublished []*authority.Key, now time.Time, publishCDS bool) authority.SignOptions {
	opts := authority.SignOptions{
		Keys:        active,
		Unpublished: unpublished,
		Inception:   now.Add(-inceptionSkew),
		Expiration:  now.Add(s.policy.Validity),
		PublishCDS:  publishCDS,
		CDSDelete:   s.policy.Unsign,
		Cache:       &s.cache,
		ReuseUntil:  now.Add(s.policy.Refresh),
		Unordered:   true,
	}
	if s.policy.NSEC3 {
		// RFC 9276 3.1: no extra iterations, no salt.
		opts.NSEC3 = &authority.NSEC3Options{OptOut: s.policy.OptOut}
	}
	return opts
}

// signConfig fingerprints what a signed version's keys and apex key
// records depend on: each key's role and state, and turning signing off.
func (s *Signer) signConfig() string {
	var b strings.Builder
	for _, k := range s.keys.state.Keys {
		fmt.Fprintf(&b, "%s/%d/%d/%s;", k.Role, k.Algorithm, k.Tag, k.state())
	}
	if s.policy.Unsign {
		b.WriteString("unsign")
	}
	b.WriteString(string(s.keys.rollStage()))
	b.WriteString(s.imported.fingerprint())
	return b.String()
}

// signLocked signs rrs (the unsigned records) with the zone's keys and
// builds the zone to serve, flattened as the unsigned one is (its
// flattened answers then signed online with the active keys); why is the
// log message.
func (s *Signer) signLocked(rrs []dns.RR, flatten authority.FlattenMode, why string) (*authority.Zone, error) {
	start := time.Now()
	now := s.clock.Now()
	soa := findSOA(rrs)
	if soa == nil {
		return nil, fmt.Errorf("no SOA")
	}
	unsignedSerial := soa.Serial
	serial := s.nextSerial(unsignedSerial)
	soa.Serial = serial
	active, unpublished, others := s.keys.signing()
	// Keys published before use or kept after it are in the DNSKEY
	// RRset without signing (Sign keeps input DNSKEYs).
	rrs = append(rrs, others...)
	if s.imported != nil {
		rrs = append(rrs, s.imported.zsks()...)
	}
	cdsKeys, custom := s.cdsKeys()
	publishCDS := !s.policy.Unsign
	if custom && publishCDS {
		// The successor KSK's DS is offered before the key is in the
		// DNSKEY RRset (double-DS), or a key-set rollover names one set
		// of two: CDS/CDNSKEY made here, not by Sign.
		rrs = append(rrs, authority.CDSRecords(cdsKeys, soa.Hdr.Ttl)...)
		publishCDS = false
	}
	signed, err := authority.Sign(s.policy.Zone, rrs, s.signOptions(active, unpublished, now, publishCDS))
	if err != nil {
		return nil, err
	}
	z, err := authority.NewZoneWith(s.policy.Zone, signed, authority.ZoneOptions{Flatten: flatten, FlattenKeys: active})
	if err != nil {
		return nil, fmt.Errorf("the signed zone fails the zone checks: %w", err)
	}
	s.refresh = earliestExpiration(signed).Add(-s.policy.Refresh)
	s.recordTTLs(signed)
	s.signedWith = s.signConfig()
	s.status.Incremental = false
	s.signedLocked(why, start, now, serial, unsignedSerial, "records", len(signed))
	return z, nil
}

// resignLocked signs z, whose changed names are changed, by patching the
// signed version of the last one (authority.Resign); the signatures'
// refresh point stays that of the version patched, the earliest.
func (s *Signer) resignLocked(z *authority.Zone, changed []string) (*authority.Zone, error) {
	start := time.Now()
	now := s.clock.Now()
	unsignedSerial := z.SOA().Serial
	serial := s.nextSerial(unsignedSerial)
	active, unpublished, _ := s.keys.signing()
	in := authority.ResignInput{Prev: s.signed, PrevUnsigned: s.unsigned, Next: z, Changed: changed, Serial: serial}
	out, err := authority.Resign(in, s.signOptions(active, unpublished, now, false))
	if err != nil {
		return nil, err
	}
	s.maxTTL = max(s.maxTTL, out.MaxTTL(changed))
	s.status.Incremental = true
	s.signedLocked("zone change signed", start, now, serial, unsignedSerial, "changed_names", len(changed))
	return out, nil
}

// signedLocked records a signing in the status, the state file (serial)
// and the log.
func (s *Signer) signedLocked(why string, start, now time.Time, serial, unsignedSerial uint32, sizeKey string, size int) {
	if s.policy.Serial == SerialIncrement && s.keys.state.Serial != serial {
		s.keys.state.Serial = serial
		if err := s.keys.save(); err != nil {
			// Served anyway: a lost serial only matters across a restart.
			s.log.Error("signed serial not saved", "zone", s.policy.Zone, "err", err)
		}
	}
	st := s.cache.Stats()
	took := time.Since(start)
	s.status.Serial, s.status.UnsignedSer = serial, unsignedSerial
	s.status.LastSigned, s.status.NextRefresh = now, s.refresh
	s.status.SignedRRsets, s.status.ReusedRRsets = st.Signed, st.Reused
	s.status.Took = took.Round(time.Millisecond).String()
	s.status.LastError = ""
	s.writeStatusLocked()
	s.log.Info(why, "zone", s.policy.Zone, "serial", serial, "unsigned_serial", unsignedSerial,
		"signed_rrsets", st.Signed, "reused_rrsets", st.Reused, sizeKey, size,
		"next_refresh", s.refresh.UTC().Format(time.RFC3339), "took", took.Round(time.Millisecond))
}

// cdsKeys are the KSKs CDS/CDNSKEY name (keyStore.cdsKeys) and, in a
// multi-signer zone, the other providers' KSKs (RFC 8901 8): then the
// signer makes CDS/CDNSKEY itself (custom).
func (s *Signer) cdsKeys() (keys []*dns.DNSKEY, custom bool) {
	keys, custom = s.keys.cdsKeys()
	if s.imported != nil {
		if other := s.imported.ksks(); len(other) > 0 {
			keys, custom = append(keys, other...), true
		}
	}
	return keys, custom
}

// nextSerial is the serial of the next signed version.
func (s *Signer) nextSerial(unsigned uint32) uint32 {
	if s.policy.Serial == SerialKeep {
		return unsigned
	}
	last := s.keys.state.Serial
	if last == 0 && s.signed == nil {
		return unsigned
	}
	next := last + 1
	// RFC 1982: follow the unsigned serial when it is ahead.
	if int32(unsigned-next) > 0 {
		next = unsigned
	}
	return next
}

// unsignedRecords are z's records without any DNSSEC data of its own
// (signatures, denial chains, keys): the signer makes all of those.
func unsignedRecords(z *authority.Zone) []dns.RR {
	in := z.Records()
	out := in[:0]
	for _, rr := range in {
		switch rr.Header().Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
			continue
		}
		out = append(out, rr)
	}
	return out
}

func findSOA(rrs []dns.RR) *dns.SOA {
	for _, rr := range rrs {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

// earliestExpiration is the soonest RRSIG expiration in rrs.
func earliestExpiration(rrs []dns.RR) time.Time {
	var first uint32
	found := false
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && (!found || sig.Expiration < first) {
			first, found = sig.Expiration, true
		}
	}
	return time.Unix(int64(first), 0).UTC()
}

// StatusFile is the per-zone file, beside the keys, where the signer
// writes its Status after each signing for `sextant zone status`.
const StatusFile = "status.json"

func (s *Signer) writeStatusLocked() {
	b, err := json.MarshalIndent(s.status, "", "  ")
	if err == nil {
		err = authority.WriteFileAtomic(filepath.Join(s.keys.dir, StatusFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		s.log.Warn("signing status not written", "zone", s.policy.Zone, "err", err)
	}
}

// ReadStatus reads the status the signer of zone last wrote under keyDir.
func ReadStatus(keyDir, zone string) (Status, error) {
	var st Status
	b, err := readLimited(filepath.Join(ZoneDir(keyDir, zone), StatusFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", StatusFile, err)
	}
	return st, nil
}

// ReadAllStatus reads every zone's status under keyDir, by zone name.
func ReadAllStatus(keyDir string) ([]Status, error) {
	dirs, err := os.ReadDir(keyDir)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, d := range dirs {
		b, err := readLimited(filepath.Join(keyDir, d.Name(), StatusFile))
		if err != nil {
			continue
		}
		var st Status
		if json.Unmarshal(b, &st) == nil {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Zone, b.Zone) })
	return out, nil
}
