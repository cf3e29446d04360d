package authority

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestResignMatchesFullSigning: for each change, the version Resign
// patches holds the same records (signatures aside) as a full signing of
// the new version, passes NewZone's checks, has every signature valid, and
// answers every question as the fully signed version does. Changes that
// move the zone's structure are refused with ErrNotIncremental.
func TestResignMatchesFullSigning(t *testing.T) {
	const origin = "z.test."
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ksk, zsk := signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsKSK), signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsZSK)
	type edit struct{ old, new string }
	cases := []struct {
		name        string
		edits       []edit
		add         string
		incremental bool
	}{
		{name: "address changed", edits: []edit{{"www      A    192.0.2.2\n", "www      A    192.0.2.22\n"}}, incremental: true},
		{name: "leaf added", add: "new TXT \"added\"", incremental: true},
		{name: "name under new empty non-terminals", add: "a.b.newent A 192.0.2.30", incremental: true},
		{name: "name under an empty non-terminal", add: "c.ent A 192.0.2.31", incremental: true},
		{name: "name removed", edits: []edit{{"Upper    TXT  \"case\"\n", ""}}, incremental: true},
		{name: "name and its empty non-terminals removed", edits: []edit{{"a.b.ent  A    192.0.2.3\n", ""}}, incremental: true},
		{name: "type added", add: "www TXT \"t\"", incremental: true},
		{name: "TTL changed", edits: []edit{{"alias    CNAME www", "alias 60 CNAME www"}}, incremental: true},
		{name: "apex RRset added", add: "@ MX 10 www", incremental: true},
		{name: "empty non-terminal gets data", add: "b.ent TXT \"x\"", incremental: true},
		{name: "name before the first one", add: "0 TXT \"first\"", incremental: true},
		{name: "name after the last one", add: "zzzz TXT \"last\"", incremental: true},
		{name: "delegation added", add: "deleg NS ns.other.test."},
		{name: "wildcard changed", edits: []edit{{"*.wild   TXT  \"wild\"", "*.wild   TXT  \"tame\""}}},
		{name: "glue changed", edits: []edit{{"ns.secure A   192.0.2.4", "ns.secure A   192.0.2.44"}}},
		{name: "DS added", add: "secure DS 12345 13 2 " + strings.Repeat("ab", 32)},
		{name: "SOA minimum changed", edits: []edit{{"1209600 300", "1209600 200"}}},
		{name: "addresses removed", edits: []edit{{"www      A    192.0.2.2\nwww      AAAA 2001:db8::2\nWWW      A    192.0.2.2\n", "www TXT \"gone\"\n"}}, incremental: true},
		{name: "name server address changed", edits: []edit{{"ns1      A    192.0.2.1\n", "ns1      A    192.0.2.11\n"}}, incremental: true},
		{name: "name server address removed", edits: []edit{{"ns1      A    192.0.2.1\n", "ns1 TXT \"no address\"\n"}, {"@        NS   ns1\n", "@        NS   ns2.other.test.\n"}}},
		{name: "DNAME changed", edits: []edit{{"d        DNAME other.test.", "d        DNAME else.test."}}},
		{name: "most names changed", add: manyNames(40)},
	}
	for _, mode := range []string{"nsec", "nsec3", "nsec3-optout"} {
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				opts := SignOptions{Keys: []*Key{ksk, zsk}, Inception: now.Add(-time.Hour), Expiration: now.Add(14 * 24 * time.Hour),
					Cache: &SignatureCache{}, ReuseUntil: now.Add(5 * 24 * time.Hour)}
				switch mode {
				case "nsec3":
					opts.NSEC3 = &NSEC3Options{}
				case "nsec3-optout":
					opts.NSEC3 = &NSEC3Options{OptOut: true}
				}
				text := incTestZone
				for _, e := range c.edits {
					if !strings.Contains(text, e.old) {
						t.Fatalf("edit %q does not apply", e.old)
					}
					text = strings.Replace(text, e.old, e.new, 1)
				}
				text = replaceSerial(text, "1", "2") + c.add + "\n"
				prevUnsigned := mustZone(t, origin, parseRecords(t, origin, incTestZone))
				prevSigned, err := Sign(origin, parseRecords(t, origin, incTestZone), opts)
				if err != nil {
					t.Fatal(err)
				}
				prev := mustZone(t, origin, prevSigned)
				next := mustZone(t, origin, parseRecords(t, origin, text))
				later := now.Add(time.Minute)
				opts.Inception, opts.Expiration = later.Add(-time.Hour), later.Add(14*24*time.Hour)
				changed := ChangedNames(prevUnsigned, next)
				if len(changed) == 0 {
					t.Fatal("no changed names")
				}
				got, err := Resign(ResignInput{Prev: prev, PrevUnsigned: prevUnsigned, Next: next, Changed: changed, Serial: 2}, opts)
				wantIncremental := c.incremental
				if mode == "nsec3-optout" {
					// Opt-out patches only changes to names with data in
					// both versions.
					for _, name := range changed {
						pn, nn := prevUnsigned.nodes[name], next.nodes[name]
						if pn == nil || nn == nil || pn.empty() || nn.empty() {
							wantIncremental = false
						}
					}
				}
				if !wantIncremental {
					if !errors.Is(err, ErrNotIncremental) {
						t.Fatalf("Resign: %v, want ErrNotIncremental", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Resign: %v", err)
				}
				if st := opts.Cache.Stats(); st.Signed > 8 {
					t.Errorf("signed %d RRsets anew for a one-name change", st.Signed)
				}
				fullRRs, err := Sign(origin, parseRecords(t, origin, text), SignOptions{Keys: opts.Keys, Inception: opts.Inception,
					Expiration: opts.Expiration, NSEC3: opts.NSEC3})
				if err != nil {
					t.Fatal(err)
				}
				full := mustZone(t, origin, fullRRs)
				gotRRs := got.Records()
				if a, b := unsignedStrings(gotRRs), unsignedStrings(fullRRs); !slices.Equal(a, b) {
					t.Errorf("records differ from a full signing:\npatched: %s\nfull:    %s", strings.Join(a, "\n         "), strings.Join(b, "\n         "))
				}
				mustZone(t, origin, gotRRs)
				signCheckSignatures(t, origin, gotRRs, map[signSetKey]bool{
					{"secure.z.test.", dns.TypeNS}: true, {"insecure.z.test.", dns.TypeNS}: true,
					{"ns.secure.z.test.", dns.TypeA}: true, {"ns.insecure.z.test.", dns.TypeA}: true,
				}, later)
				compareAnswers(t, origin, got, full, prevUnsigned, next)
			})
		}
	}
}

// incTestZone is signTestZone without its dead data below the DNAME,
// which NewZone refuses.
var incTestZone = strings.Replace(signTestZone, "x.d      A    192.0.2.9\n", "", 1)

// manyNames is n new names: more than Resign patches for a small zone.
func manyNames(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "many%d A 192.0.2.%d\n", i, i)
	}
	return b.String()
}

func mustZone(t *testing.T, origin string, rrs []dns.RR) *Zone {
	t.Helper()
	z, err := NewZone(origin, rrs)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// unsignedStrings lists the records other than RRSIGs, sorted.
func unsignedStrings(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeRRSIG {
			out = append(out, strings.ToLower(rr.String()))
		}
	}
	slices.Sort(out)
	return out
}

// compareAnswers asks both zones about every name of both versions, their
// neighbours and some that do not exist, and wants the same answers,
// signatures aside.
func compareAnswers(t *testing.T, origin string, got, want *Zone, versions ...*Zone) {
	t.Helper()
	names := []string{origin, "nx." + origin, "zzzzzz." + origin, "x.wild." + origin, "0." + origin}
	for _, v := range versions {
		for name := range v.nodes {
			names = append(names, name, "x."+name, "a-"+name)
		}
	}
	gs, ws := NewServer(got), NewServer(want)
	for _, name := range names {
		for _, qt := range []uint16{dns.TypeA, dns.TypeTXT, dns.TypeDS, dns.TypeNS, dns.TypeSOA} {
			q := new(dns.Msg).SetQuestion(name, qt)
			q.SetEdns0(1232, true)
			a, b := answerStrings(gs.Answer(q)), answerStrings(ws.Answer(q))
			if a != b {
				t.Errorf("%s/%s: patched zone answers\n%s\nfull signing answers\n%s", name, dns.TypeToString[qt], a, b)
			}
		}
	}
}

func answerStrings(m *dns.Msg) string {
	var out []string
	out = append(out, dns.RcodeToString[m.Rcode], fmt.Sprint(m.Authoritative))
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		var s []string
		for _, rr := range sec {
			if sig, ok := rr.(*dns.RRSIG); ok {
				s = append(s, fmt.Sprintf("RRSIG %s %d", strings.ToLower(sig.Hdr.Name), sig.TypeCovered))
				continue
			}
			if rr.Header().Rrtype != dns.TypeOPT {
				s = append(s, strings.ToLower(rr.String()))
			}
		}
		slices.Sort(s)
		out = append(out, strings.Join(s, "\n"))
	}
	return strings.Join(out, "\n--\n")
}
