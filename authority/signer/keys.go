package signer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// StateFile is the per-zone file, in the zone's key directory, that lists
// the zone's keys with their roles and the serial last served.
const StateFile = "keys.json"

// maxStateBytes bounds the state file read at start.
const maxStateBytes = 1 << 20

// Role is what a key signs.
type Role string

const (
	RoleKSK Role = "ksk" // signs the DNSKEY RRset (and CDS/CDNSKEY); its DS is at the parent
	RoleZSK Role = "zsk" // signs everything else
	RoleCSK Role = "csk" // signs everything; its DS is at the parent
)

// KeyState is where a key is in its life (RFC 7583 terms, simplified).
type KeyState string

const (
	// StatePublished: in the DNSKEY RRset, not signing yet (a ZSK
	// pre-published before a rollover, RFC 6781 4.1.1.1).
	StatePublished KeyState = "published"
	// StateActive: in the DNSKEY RRset and signing. "" in a state file
	// means active.
	StateActive KeyState = "active"
	// StateRetired: in the DNSKEY RRset, no longer signing, until the
	// signatures it made have left every cache.
	StateRetired KeyState = "retired"
	// StateDSPending: a KSK of a double-DS rollover (RFC 6781 4.1.2) whose
	// DS is offered to the parent (CDS/CDNSKEY) but that is not yet in
	// the DNSKEY RRset.
	StateDSPending KeyState = "ds-pending"
	// StateIncoming: a key of the new set of a key-set rollover (an
	// algorithm change or a CSK rollover, keyroll.go); what it does
	// follows the rollover's stage.
	StateIncoming KeyState = "incoming"
	// StateOutgoing: a key of the old set of a key-set rollover.
	StateOutgoing KeyState = "outgoing"
)

// KeyInfo is one key of the state file.
type KeyInfo struct {
	File      string    `json:"file"` // K<zone>+<alg>+<tag>, without .key/.private
	Role      Role      `json:"role"`
	Algorithm uint8     `json:"algorithm"`
	Tag       uint16    `json:"tag"`
	Created   time.Time `json:"created"`
	State     KeyState  `json:"state,omitempty"`
	// Published, Active and Retired are the DNS times the key entered
	// each state.
	Published time.Time `json:"published,omitzero"`
	Active    time.Time `json:"active,omitzero"`
	Retired   time.Time `json:"retired,omitzero"`
	// DSSeen: when the parent was first seen with this key's DS (or the
	// configured wait passed), in a KSK rollover.
	DSSeen time.Time `json:"ds_seen,omitzero"`
}

// state returns the key's state, "" read as active.
func (k *KeyInfo) state() KeyState {
	if k.State == "" {
		return StateActive
	}
	return k.State
}

// state is the state file's content.
type state struct {
	Zone   string    `json:"zone"`
	Keys   []KeyInfo `json:"keys"`
	Serial uint32    `json:"serial"` // last served (SerialIncrement); 0 before the first signing
	// Unsign is the progress of turning signing off (unsign.go).
	Unsign *unsignState `json:"unsign,omitempty"`
	// Roll is the progress of a key-set rollover (keyroll.go).
	Roll *rollState `json:"roll,omitempty"`
}

// keyStore is one zone's directory of keys.
type keyStore struct {
	dir   string
	state state
	keys  []*authority.Key // in the order of state.Keys
}

// ZoneDir is the directory of zone's keys under keyDir: the zone name
// without its final dot ("root" for the root), path separators escaped.
func ZoneDir(keyDir, zone string) string {
	name := strings.TrimSuffix(dnsname.Canonical(zone), ".")
	if name == "" {
		name = "root"
	}
	name = strings.NewReplacer("/", "%2F", "\\", "%5C").Replace(name)
	if name == "." || name == ".." {
		name = "%2E" + name[1:]
	}
	return filepath.Join(keyDir, name)
}

// openKeyStore loads the zone's keys, or makes them for p when the
// directory holds none. Keys that cannot be read, do not match their
// state, or do not fit the policy are errors naming the file and reason.
func openKeyStore(keyDir string, p *Policy, now time.Time) (*keyStore, error) {
	ks := &keyStore{dir: ZoneDir(keyDir, p.Zone)}
	if err := os.MkdirAll(ks.dir, 0o700); err != nil {
		return nil, fmt.Errorf("key directory: %w", err)
	}
	b, err := readLimited(filepath.Join(ks.dir, StateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if stray, _ := filepath.Glob(filepath.Join(ks.dir, "K*.private")); len(stray) > 0 {
			return nil, fmt.Errorf("%s holds key files (%s) but no %s: Sextant does not know their roles", ks.dir, filepath.Base(stray[0]), StateFile)
		}
		if err := ks.generate(p, now); err != nil {
			return nil, err
		}
		return ks, nil
	case err != nil:
		return nil, fmt.Errorf("key state: %w", err)
	}
	if err := json.Unmarshal(b, &ks.state); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(ks.dir, StateFile), err)
	}
	if err := ks.load(p); err != nil {
		return nil, err
	}
	return ks, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxStateBytes)
	}
	return b, nil
}

// generate makes the policy's keys and records them.
func (ks *keyStore) generate(p *Policy, now time.Time) error {
	roles := []Role{RoleKSK, RoleZSK}
	if p.CSK {
		roles = []Role{RoleCSK}
	}
	ks.state = state{Zone: p.Zone}
	for _, role := range roles {
		flags := authority.FlagsKSK
		if role == RoleZSK {
			flags = authority.FlagsZSK
		}
		k, err := authority.GenerateKey(p.Zone, p.Algorithm, flags)
		if err != nil {
			return err
		}
		if _, _, err := k.Save(ks.dir); err != nil {
			return fmt.Errorf("zone %s: %w", p.Zone, err)
		}
		ks.keys = append(ks.keys, k)
		ks.state.Keys = append(ks.state.Keys, KeyInfo{File: k.FileBase(), Role: role, Algorithm: p.Algorithm, Tag: k.Tag(),
			Created: now.UTC(), State: StateActive, Published: now.UTC(), Active: now.UTC()})
	}
	return ks.save()
}

// addKey makes a new key of role in state st and records it (not saved).
func (ks *keyStore) addKey(p *Policy, role Role, st KeyState, now time.Time) (*KeyInfo, error) {
	flags := authority.FlagsKSK
	if role == RoleZSK {
		flags = authority.FlagsZSK
	}
	k, err := authority.GenerateKey(p.Zone, p.Algorithm, flags)
	if err != nil {
		return nil, err
	}
	if _, _, err := k.Save(ks.dir); err != nil {
		return nil, fmt.Errorf("zone %s: %w", p.Zone, err)
	}
	ks.keys = append(ks.keys, k)
	ks.state.Keys = append(ks.state.Keys, KeyInfo{File: k.FileBase(), Role: role, Algorithm: p.Algorithm, Tag: k.Tag(),
		Created: now.UTC(), State: st, Published: now.UTC()})
	return &ks.state.Keys[len(ks.state.Keys)-1], nil
}

// remove drops key i from the state (its files stay, for the record).
func (ks *keyStore) remove(i int) {
	ks.keys = append(ks.keys[:i], ks.keys[i+1:]...)
	ks.state.Keys = append(ks.state.Keys[:i], ks.state.Keys[i+1:]...)
}

// signing returns the keys that sign, those of them whose DNSKEYs stay
// out of the DNSKEY RRset, and the DNSKEY records of keys published
// without signing (before use or kept after it).
func (ks *keyStore) signing() (sign, unpublished []*authority.Key, others []dns.RR) {
	stage := ks.rollStage()
	for i, k := range ks.keys {
		info := ks.state.Keys[i]
		switch info.state() {
		case StateActive:
			sign = append(sign, k)
		case StateDSPending: // only its CDS/CDNSKEY are published
		case StateIncoming:
			sign = append(sign, k)
			if stage == RollNewRRSIGs {
				unpublished = append(unpublished, k)
			}
		case StateOutgoing:
			switch {
			case stage != RollDNSKEYRemoved:
				sign = append(sign, k)
			case info.Role != RoleKSK:
				// Its signatures stay until no cache holds the DNSKEY
				// RRset that named it (RFC 6781 4.1.4).
				sign = append(sign, k)
				unpublished = append(unpublished, k)
			}
		default:
			others = append(others, dns.Copy(k.DNSKEY))
		}
	}
	return sign, unpublished, others
}

// cdsKeys are the KSKs the parent should have a DS for: the active ones
// and, during a double-DS rollover, the successor; during a key-set
// rollover the old set's until the new DNSKEYs are known everywhere, the
// new set's after. custom: the CDS/CDNSKEY RRsets name keys other than
// the SEP keys of the DNSKEY RRset, so the signer makes them itself.
func (ks *keyStore) cdsKeys() (keys []*dns.DNSKEY, custom bool) {
	stage := ks.rollStage()
	wantRoll := StateOutgoing
	if stage == RollNewDS || stage == RollDNSKEYRemoved {
		wantRoll = StateIncoming
	}
	for i, k := range ks.keys {
		switch st := ks.state.Keys[i].state(); {
		case !k.IsSEP():
		case st == StateActive:
			keys = append(keys, k.DNSKEY)
		case st == StateDSPending:
			keys = append(keys, k.DNSKEY)
			custom = true
		case stage != "" && st == wantRoll:
			keys = append(keys, k.DNSKEY)
			custom = true
		}
	}
	return keys, custom
}

// load reads the keys the state file lists and checks them against it
// and the policy.
func (ks *keyStore) load(p *Policy) error {
	where := filepath.Join(ks.dir, StateFile)
	if dnsname.Canonical(ks.state.Zone) != p.Zone {
		return fmt.Errorf("%s is for zone %q, not %s", where, ks.state.Zone, p.Zone)
	}
	for _, info := range ks.state.Keys {
		if strings.ContainsAny(info.File, `/\`) || !strings.HasPrefix(info.File, "K") {
			return fmt.Errorf("%s: bad key file name %q", where, info.File)
		}
		base := filepath.Join(ks.dir, info.File)
		k, err := authority.LoadKey(base+".key", base+".private")
		if err != nil {
			return fmt.Errorf("zone %s: %w", p.Zone, err)
		}
		if err := checkKey(k, info, p); err != nil {
			return fmt.Errorf("zone %s: key %s: %w", p.Zone, info.File, err)
		}
		if st, err := os.Stat(base + ".private"); err == nil && st.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("zone %s: %s.private is readable by others (mode %o): chmod 600 it", p.Zone, base, st.Mode().Perm())
		}
		ks.keys = append(ks.keys, k)
	}
	return ks.checkLayout(p, where)
}

// checkLayout checks that the keys form one set (csk or ksk+zsk) of one
// algorithm, or two during a key-set rollover, and that the policy asks
// for what they are or for what a key-set rollover can reach.
func (ks *keyStore) checkLayout(p *Policy, where string) error {
	sets := map[KeyState][]Role{}
	algs := map[KeyState]map[uint8]bool{}
	for _, info := range ks.state.Keys {
		st := info.state()
		switch st {
		case StateActive, StateIncoming, StateOutgoing:
			sets[st] = append(sets[st], info.Role)
			if algs[st] == nil {
				algs[st] = map[uint8]bool{}
			}
			algs[st][info.Algorithm] = true
		case StatePublished, StateRetired, StateDSPending:
		default:
			return fmt.Errorf("zone %s: key %s: unknown state %q", p.Zone, info.File, info.State)
		}
	}
	want := "ksk+zsk"
	if p.CSK {
		want = "csk"
	}
	for st, a := range algs {
		if len(a) > 1 {
			return fmt.Errorf("zone %s: %s: the %s keys are of more than one algorithm", p.Zone, where, st)
		}
	}
	if ks.state.Roll != nil {
		in, out := layout(sets[StateIncoming]), layout(sets[StateOutgoing])
		switch {
		case len(sets[StateActive]) > 0 || (out != "csk" && out != "ksk+zsk"):
			return fmt.Errorf("zone %s: %s: a key-set rollover with keys %s active and %s outgoing", p.Zone, where, layout(sets[StateActive]), out)
		case in != want || !algs[StateIncoming][p.Algorithm]:
			return fmt.Errorf("zone %s: %s: a key-set rollover to %s keys is under way; the policy asks for %s algorithm %d (let it finish first)",
				p.Zone, where, in, want, p.Algorithm)
		}
		return nil
	}
	if len(sets[StateIncoming])+len(sets[StateOutgoing]) > 0 {
		return fmt.Errorf("zone %s: %s: incoming or outgoing keys without a rollover under way", p.Zone, where)
	}
	got := layout(sets[StateActive])
	switch {
	case got != "csk" && got != "ksk+zsk":
		return fmt.Errorf("zone %s: %s holds active keys %s, the policy asks for %s", p.Zone, where, got, want)
	case algs[StateActive][p.Algorithm] && got != want:
		return fmt.Errorf("zone %s: %s holds active keys %s, the policy asks for %s (changing the key layout needs a change of algorithm too: a key-set rollover)",
			p.Zone, where, got, want)
	}
	return nil
}

// checkKey compares a loaded key with its state entry and the policy.
func checkKey(k *authority.Key, info KeyInfo, p *Policy) error {
	switch {
	case k.DNSKEY.Hdr.Name != p.Zone:
		return fmt.Errorf("belongs to %s", k.DNSKEY.Hdr.Name)
	case k.Tag() != info.Tag || k.DNSKEY.Algorithm != info.Algorithm:
		return fmt.Errorf("is algorithm %d tag %d, the state file says algorithm %d tag %d", k.DNSKEY.Algorithm, k.Tag(), info.Algorithm, info.Tag)
	case k.DNSKEY.Flags&dns.REVOKE != 0:
		return fmt.Errorf("is revoked")
	}
	wantSEP := info.Role == RoleKSK || info.Role == RoleCSK
	switch info.Role {
	case RoleKSK, RoleZSK, RoleCSK:
	default:
		return fmt.Errorf("unknown role %q", info.Role)
	}
	if k.IsSEP() != wantSEP {
		return fmt.Errorf("flags %d do not fit the role %s", k.DNSKEY.Flags, info.Role)
	}
	return nil
}

// layout names a set of roles: "csk", "ksk+zsk", or what else it is.
func layout(roles []Role) string {
	count := make(map[Role]int)
	for _, r := range roles {
		count[r]++
	}
	switch {
	case len(roles) == 1 && count[RoleCSK] == 1:
		return "csk"
	case len(roles) == 2 && count[RoleKSK] == 1 && count[RoleZSK] == 1:
		return "ksk+zsk"
	case len(roles) == 0:
		return "none"
	}
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = string(r)
	}
	return strings.Join(parts, ",")
}

// save writes the state file atomically.
func (ks *keyStore) save() error {
	b, err := json.MarshalIndent(ks.state, "", "  ")
	if err != nil {
		return err
	}
	if err := authority.WriteFileAtomic(filepath.Join(ks.dir, StateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("key state: %w", err)
	}
	return nil
}

// activeAlgorithm is the algorithm of the active keys (0 if none).
func (ks *keyStore) activeAlgorithm() uint8 {
	for _, k := range ks.state.Keys {
		if k.state() == StateActive {
			return k.Algorithm
		}
	}
	return 0
}
