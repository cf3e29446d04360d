package authority

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/transport"
)

const parentText = `
$ORIGIN example.
$TTL 3600
@     SOA ns1 hostmaster 1 7200 3600 1209600 300
@     NS  ns1
ns1   A   192.0.2.1
sub   NS  ns1.sub
sub   DS  12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns1.sub A 192.0.2.7
`

const childText = `
$ORIGIN sub.example.
$TTL 3600
@     SOA ns1 hostmaster 1 7200 3600 1209600 300
@     NS  ns1
ns1   A   192.0.2.7
www   A   192.0.2.8
`

func TestServerZoneSelection(t *testing.T) {
	parent := makeTestZone(t, "example.", parentText, nsecZone)
	child := makeTestZone(t, "sub.example.", childText, nsecZone)
	s := NewServer(parent.zone, child.zone)

	cases := []struct {
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer uint16 // first answer type, 0 for none
		nsOwn  string // owner of the first authority record ("" unchecked)
	}{
		{"www.sub.example.", dns.TypeA, dns.RcodeSuccess, true, dns.TypeA, ""},
		{"sub.example.", dns.TypeDNSKEY, dns.RcodeSuccess, true, dns.TypeDNSKEY, ""},
		{"sub.example.", dns.TypeDS, dns.RcodeSuccess, true, dns.TypeDS, ""},          // parent side of the cut
		{"example.", dns.TypeDS, dns.RcodeSuccess, true, 0, "example."},               // no parent served: the zone itself
		{"nope.sub.example.", dns.TypeA, dns.RcodeNameError, true, 0, "sub.example."}, // child's SOA
		{"www.example.org.", dns.TypeA, dns.RcodeRefused, false, 0, ""},
		{"org.", dns.TypeA, dns.RcodeRefused, false, 0, ""},
		{".", dns.TypeNS, dns.RcodeRefused, false, 0, ""},
	}
	for _, tc := range cases {
		m := s.Answer(query(tc.qname, tc.qtype, true))
		if m.Rcode != tc.rcode || m.Authoritative != tc.aa {
			t.Errorf("%s/%s: rcode %s aa %v, want %s %v", tc.qname, dns.TypeToString[tc.qtype],
				dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[tc.rcode], tc.aa)
		}
		if tc.answer != 0 && (len(m.Answer) == 0 || m.Answer[0].Header().Rrtype != tc.answer) {
			t.Errorf("%s/%s: answer %v", tc.qname, dns.TypeToString[tc.qtype], m.Answer)
		}
		if tc.answer == 0 && len(m.Answer) != 0 {
			t.Errorf("%s/%s: unexpected answer %v", tc.qname, dns.TypeToString[tc.qtype], m.Answer)
		}
		if tc.nsOwn != "" && (len(m.Ns) == 0 || m.Ns[0].Header().Name != tc.nsOwn) {
			t.Errorf("%s/%s: authority %v", tc.qname, dns.TypeToString[tc.qtype], m.Ns)
		}
	}

	if !s.Covers("a.b.sub.example") || !s.Covers("EXAMPLE.") || s.Covers("example.org.") {
		t.Errorf("Covers wrong")
	}
	if s.Zone("Sub.Example") != child.zone {
		t.Errorf("Zone lookup wrong")
	}

	s.Remove("sub.example")
	m := s.Answer(query("www.sub.example.", dns.TypeA, false))
	if m.Authoritative || len(m.Ns) == 0 || m.Ns[0].Header().Rrtype != dns.TypeNS {
		t.Errorf("after Remove the parent should refer: %v", m)
	}
	s.Set(child.zone)
	if m := s.Answer(query("www.sub.example.", dns.TypeA, false)); !m.Authoritative {
		t.Errorf("Set did not add the zone back")
	}
}

func TestRootZone(t *testing.T) {
	root := makeTestZone(t, ".", `
$TTL 86400
.     SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400
.     NS  a.root-servers.net.
net.  NS  a.root-servers.net.
a.root-servers.net. A 198.41.0.4
example. NS ns.example.
ns.example. A 192.0.2.53
`, nsec3Zone)
	s := NewServer(root.zone)
	m := s.Answer(query("www.example.", dns.TypeA, true))
	if m.Authoritative || len(m.Ns) == 0 || m.Ns[0].Header().Name != "example." {
		t.Fatalf("root referral: %v", m)
	}
	checkProof(t, root, "www.example.", m, expect{kind: "referral-insecure"})
	m = s.Answer(query("nope.", dns.TypeA, true))
	if m.Rcode != dns.RcodeNameError {
		t.Fatalf("root NXDOMAIN: %v", m)
	}
	checkProof(t, root, "nope.", m, expect{kind: "nxdomain"})
	verifySignatures(t, root, m)
	if !s.Covers("anything.at.all.") {
		t.Errorf("root zone covers everything")
	}
}

func TestAnswerMalformed(t *testing.T) {
	s := NewServer(makeTestZone(t, testOrigin, testZoneText, nsecZone).zone)
	if s.Answer(nil) != nil {
		t.Errorf("Answer(nil) should be nil")
	}
	mk := func(f func(q *dns.Msg)) *dns.Msg {
		q := query("www.example.", dns.TypeA, false)
		f(q)
		return q
	}
	cases := []struct {
		name  string
		q     *dns.Msg
		rcode int
	}{
		{"no question", mk(func(q *dns.Msg) { q.Question = nil }), dns.RcodeFormatError},
		{"two questions", mk(func(q *dns.Msg) { q.Question = append(q.Question, q.Question[0]) }), dns.RcodeFormatError},
		{"a response", mk(func(q *dns.Msg) { q.Response = true }), dns.RcodeFormatError},
		{"class CH", mk(func(q *dns.Msg) { q.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused},
		{"class ANY", mk(func(q *dns.Msg) { q.Question[0].Qclass = dns.ClassANY }), dns.RcodeRefused},
		{"opcode NOTIFY", mk(func(q *dns.Msg) { q.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented},
		{"EDNS version 1", mk(func(q *dns.Msg) { q.SetEdns0(1232, false); q.IsEdns0().SetVersion(1) }), dns.RcodeBadVers},
		{"AXFR", mk(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeAXFR }), dns.RcodeRefused},
		{"qtype OPT", mk(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeOPT }), dns.RcodeFormatError},
		{"name not FQDN", mk(func(q *dns.Msg) { q.Question[0].Name = "www.example" }), dns.RcodeSuccess},
		{"empty name", mk(func(q *dns.Msg) { q.Question[0].Name = "" }), dns.RcodeRefused},
		{"bad name", mk(func(q *dns.Msg) { q.Question[0].Name = "a..example." }), dns.RcodeFormatError},
		{"too long", mk(func(q *dns.Msg) { q.Question[0].Name = strings.Repeat("a.", 130) + "example." }), dns.RcodeFormatError},
	}
	for _, tc := range cases {
		m := s.Answer(tc.q)
		if m == nil || m.Rcode != tc.rcode {
			t.Errorf("%s: %v, want rcode %s", tc.name, m, dns.RcodeToString[tc.rcode])
			continue
		}
		if tc.rcode == dns.RcodeBadVers {
			if m.IsEdns0() == nil {
				t.Errorf("BADVERS without OPT")
			}
			if _, err := m.Pack(); err != nil {
				t.Errorf("BADVERS does not pack: %v", err)
			}
		}
	}
}

func TestAnswerDoesNotChangeTheZone(t *testing.T) {
	tz := makeTestZone(t, testOrigin, testZoneText, nsec3Zone)
	s := NewServer(tz.zone)
	sections := func(m *dns.Msg) string {
		m.Id = 0
		return m.String()
	}
	before := sections(s.Answer(query("x.wild.example.", dns.TypeA, true)))
	for _, qname := range []string{"x.wild.example.", "www.example.", "nope.example.", "a.insecure.example."} {
		m := s.Answer(query(qname, dns.TypeA, true))
		for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range sec {
				rr.Header().Ttl = 1
				rr.Header().Name = "changed.invalid."
			}
		}
	}
	if after := sections(s.Answer(query("x.wild.example.", dns.TypeA, true))); after != before {
		t.Errorf("changing a response changed the zone:\n%s\n%s", before, after)
	}
}

func TestNSEC3OwnerNamesDoNotExist(t *testing.T) {
	tz := makeTestZone(t, testOrigin, testZoneText, nsec3Zone)
	s := NewServer(tz.zone)
	var owner string
	for _, rr := range tz.zone.Records() {
		if rr.Header().Rrtype == dns.TypeNSEC3 {
			owner = rr.Header().Name
			break
		}
	}
	m := s.Answer(query(owner, dns.TypeNSEC3, true))
	if m.Rcode != dns.RcodeNameError {
		t.Fatalf("query for NSEC3 owner %s: %v", owner, m)
	}
	checkProof(t, tz, owner, m, expect{kind: "nxdomain"})
}

func TestLoadFileReloadKeepsOldZone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "example.db")
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	address := func(s *Server) string {
		m := s.Answer(query("www.example.", dns.TypeA, false))
		if len(m.Answer) != 1 {
			return m.String()
		}
		return m.Answer[0].(*dns.A).A.String()
	}
	s := NewServer()
	write(zoneHead + "www A 192.0.2.2\n")
	if err := s.LoadFile(path, "example."); err != nil {
		t.Fatal(err)
	}
	if got := address(s); got != "192.0.2.2" {
		t.Fatalf("v1: %s", got)
	}
	write(zoneHead + "www A 192.0.2.3\nwww CNAME ns1\n")
	err := s.LoadFile(path, "example.")
	if err == nil || !strings.Contains(err.Error(), path+":7:") {
		t.Fatalf("bad reload error %v", err)
	}
	if got := address(s); got != "192.0.2.2" {
		t.Fatalf("after a failed reload the old zone should serve, got %s", got)
	}
	if err := s.LoadFile(filepath.Join(dir, "missing.db"), "example."); err == nil {
		t.Fatalf("missing file loaded")
	}
	write(zoneHead + "www A 192.0.2.4\n")
	if err := s.LoadFile(path, "example."); err != nil {
		t.Fatal(err)
	}
	if got := address(s); got != "192.0.2.4" {
		t.Fatalf("v2: %s", got)
	}
}

func TestConcurrentReloadAndAnswer(t *testing.T) {
	a := makeTestZone(t, testOrigin, testZoneText, nsecZone).zone
	b := makeTestZone(t, testOrigin, testZoneText, nsec3Zone).zone
	s := NewServer(a)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := s.Answer(query("nope.example.", dns.TypeA, true))
				if m.Rcode != dns.RcodeNameError {
					t.Errorf("rcode %d", m.Rcode)
					return
				}
			}
		}()
	}
	for i := 0; i < 200; i++ {
		if i%2 == 0 {
			s.Set(b)
		} else {
			s.Set(a)
		}
	}
	close(stop)
	wg.Wait()
}

// recordingWriter is a transport.ResponseWriter that keeps what it is given.
type recordingWriter struct {
	msgs []*dns.Msg
	raw  [][]byte
}

func (w *recordingWriter) WriteMsg(m *dns.Msg) error { w.msgs = append(w.msgs, m); return nil }
func (w *recordingWriter) Write(b []byte) error      { w.raw = append(w.raw, b); return nil }

func TestServeDNS(t *testing.T) {
	s := NewServer(makeTestZone(t, testOrigin, testZoneText, nsecZone).zone)
	var h transport.Handler = s
	w := &recordingWriter{}
	q := query("www.example.", dns.TypeA, true)
	h.ServeDNS(context.Background(), w, &transport.Request{Msg: q, Proto: transport.UDP, MaxSize: 1232})
	if len(w.msgs) != 1 || len(w.raw) != 0 {
		t.Fatalf("ServeDNS wrote %d messages and %d raw", len(w.msgs), len(w.raw))
	}
	if m := w.msgs[0]; m.Id != q.Id || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 2 {
		t.Errorf("ServeDNS response %v", m)
	}
	w = &recordingWriter{}
	h.ServeDNS(context.Background(), w, &transport.Request{})
	if len(w.msgs) != 0 {
		t.Errorf("a request without a message should be dropped")
	}
}

func TestApexWildcardBoundaries(t *testing.T) {
	tz := makeTestZone(t, "example.", `
$ORIGIN example.
$TTL 3600
@      SOA ns1 hostmaster 1 7200 3600 1209600 300
@      NS  ns1
ns1    A   192.0.2.1
*      A   192.0.2.99
sub    NS  ns.sub
ns.sub A   192.0.2.7
exists TXT "x"
`, nsec3Zone)
	s := NewServer(tz.zone)
	cases := []struct {
		qname string
		rcode int
		aa    bool
		kind  string
		addr  bool // answered from the wildcard
	}{
		{"other.example.", dns.RcodeSuccess, true, "wildcard", true},
		{"a.b.other.example.", dns.RcodeSuccess, true, "wildcard", true},
		{"x.sub.example.", dns.RcodeSuccess, false, "referral-insecure", false}, // not across the cut
		{"exists.example.", dns.RcodeSuccess, true, "nodata", false},
		{"y.exists.example.", dns.RcodeNameError, true, "nxdomain", false}, // not below an existing node
	}
	for _, tc := range cases {
		m := s.Answer(query(tc.qname, dns.TypeA, true))
		if m.Rcode != tc.rcode || m.Authoritative != tc.aa || (findType(m.Answer, dns.TypeA) != nil) != tc.addr {
			t.Errorf("%s: %v", tc.qname, m)
			continue
		}
		verifySignatures(t, tz, m)
		checkProof(t, tz, tc.qname, m, expect{kind: tc.kind})
	}
}

// A wildcard that only exists as an empty non-terminal ("*.w" above
// "a.*.w") still matches (RFC 4592 2.2.1): NODATA, whose proof must show
// the wildcard empty, with NSEC the record that covers it.
func TestWildcardEmptyNonTerminal(t *testing.T) {
	for _, mode := range []denialMode{nsecZone, nsec3Zone} {
		t.Run(mode.String(), func(t *testing.T) {
			tz := makeTestZone(t, "example.", `
$ORIGIN example.
$TTL 3600
@      SOA ns1 hostmaster 1 7200 3600 1209600 300
@      NS  ns1
ns1    A   192.0.2.1
a.*.w  TXT "below the wildcard"
`, mode)
			m := NewServer(tz.zone).Answer(query("q.w.example.", dns.TypeA, true))
			if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) != 0 {
				t.Fatalf("want an authoritative NODATA, got %v", m)
			}
			verifySignatures(t, tz, m)
			checkProof(t, tz, "q.w.example.", m, expect{kind: "wildnodata"})
		})
	}
}

// Zone files may spell octets outside ASCII raw ("ÄB"); queries carry them
// as \DDD escapes. Both must reach the same node, only ASCII letters are
// folded (RFC 4343: "ä" is not "Ä"), and a DNAME keeps the query's labels
// however they are spelt.
func TestNonASCIIOwnerNames(t *testing.T) {
	z, err := ParseZone(strings.NewReader(`$TTL 3600
@      SOA ns1 hostmaster 1 7200 3600 1209600 300
@      NS  ns1
ns1    A   192.0.2.1
ÄB     A   192.0.2.2
dn     DNAME example.net.
`), "example.", "utf8.zone")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(z)
	cases := []struct {
		qname  string
		rcode  int
		answer int
	}{
		{"\\195\\132B.example.", dns.RcodeSuccess, 1},   // as unpacked from the wire
		{"\\195\\132b.example.", dns.RcodeSuccess, 1},   // ASCII case folds
		{"ÄB.example.", dns.RcodeSuccess, 1},            // raw, from an in-process caller
		{"\\195\\164b.example.", dns.RcodeNameError, 0}, // "äb": another name
	}
	for _, tc := range cases {
		m := s.Answer(query(tc.qname, dns.TypeA, false))
		if m.Rcode != tc.rcode || len(m.Answer) != tc.answer {
			t.Errorf("%q: rcode %s, %d answers; want %s, %d", tc.qname, dns.RcodeToString[m.Rcode], len(m.Answer), dns.RcodeToString[tc.rcode], tc.answer)
		}
	}
	for _, qname := range []string{"Äx.dn.example.", "\\195\\132x.dn.example."} {
		m := s.Answer(query(qname, dns.TypeA, false))
		c, _ := findType(m.Answer, dns.TypeCNAME).(*dns.CNAME)
		if want := strings.TrimSuffix(qname, "dn.example.") + "example.net."; c == nil || c.Target != want {
			t.Errorf("%q: synthesised CNAME %v, want target %q", qname, c, want)
		}
	}
}

// TestReloadDropsRemovedZones: Reload serves each file's new version, stops
// serving a zone whose file is gone or now holds another origin (issue 8:
// such zones kept answering until a restart), keeps the old version of a
// file that fails to parse, and serves a file again once it is back.
func TestReloadDropsRemovedZones(t *testing.T) {
	dir := t.TempDir()
	zoneText := func(origin, addr string) string {
		return "$ORIGIN " + origin + "\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A " + addr + "\n"
	}
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s := NewServer()
	// served says what www.<origin> gets: its address, or the rcode.
	served := func(origin string) string {
		m := s.Answer(query("www."+origin, dns.TypeA, false))
		if m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1 {
			return m.Answer[0].(*dns.A).A.String()
		}
		return dns.RcodeToString[m.Rcode]
	}
	a := write("a.zone", zoneText("a.test.", "192.0.2.1"))
	b := write("b.zone", zoneText("b.test.", "192.0.2.2"))
	d1 := write("d1.zone", zoneText("d.test.", "192.0.2.41"))
	d2 := write("d2.zone", zoneText("d.test.", "192.0.2.42"))
	for _, p := range []string{a, b, d1, d2} {
		if err := s.LoadFile(p, ""); err != nil {
			t.Fatal(err)
		}
	}
	type want struct{ origin, got string }
	check := func(step string, wants ...want) {
		t.Helper()
		for _, w := range wants {
			if got := served(w.origin); got != w.got {
				t.Errorf("%s: www.%s gets %s, want %s", step, w.origin, got, w.got)
			}
			if covered := s.Covers("www." + w.origin); covered != (w.got != "REFUSED") {
				t.Errorf("%s: Covers(www.%s) = %v", step, w.origin, covered)
			}
		}
	}
	change := func(changes []ZoneChange, file string) ZoneChange {
		t.Helper()
		for _, c := range changes {
			if c.File == file {
				return c
			}
		}
		t.Fatalf("no change reported for %s in %+v", file, changes)
		return ZoneChange{}
	}
	check("loaded", want{"a.test.", "192.0.2.1"}, want{"b.test.", "192.0.2.2"}, want{"d.test.", "192.0.2.42"})

	// a.zone now holds c.test., b.zone is gone, d2.zone now holds e.test.
	write("a.zone", zoneText("c.test.", "192.0.2.3"))
	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	write("d2.zone", zoneText("e.test.", "192.0.2.5"))
	changes := s.Reload()
	check("after the reload",
		want{"a.test.", "REFUSED"}, want{"c.test.", "192.0.2.3"}, want{"b.test.", "REFUSED"},
		want{"d.test.", "192.0.2.41"}, // still in d1.zone
		want{"e.test.", "192.0.2.5"})
	if c := change(changes, a); c.Origin != "c.test." || c.Removed != "a.test." || !strings.Contains(c.Reason, "now holds c.test.") || c.Err != nil {
		t.Errorf("a.zone: %+v", c)
	}
	if c := change(changes, b); c.Origin != "" || c.Removed != "b.test." || !strings.Contains(c.Reason, "gone") || c.Err != nil {
		t.Errorf("b.zone: %+v", c)
	}

	// A file that fails to parse keeps its previous version; a gone file
	// that is still gone reports nothing.
	write("a.zone", "www A 192.0.2.9\n")
	changes = s.Reload()
	check("after a failed reload", want{"c.test.", "192.0.2.3"}, want{"a.test.", "REFUSED"})
	if c := change(changes, a); c.Err == nil || c.Origin != "c.test." || c.Removed != "" {
		t.Errorf("a.zone: %+v", c)
	}
	for _, c := range changes {
		if c.File == b {
			t.Errorf("b.zone, still gone, reported %+v", c)
		}
	}

	// A file that is back is served again.
	write("b.zone", zoneText("b.test.", "192.0.2.22"))
	if c := change(s.Reload(), b); c.Origin != "b.test." || c.Removed != "" {
		t.Errorf("b.zone back: %+v", c)
	}
	check("file back", want{"b.test.", "192.0.2.22"})

	// LoadFile of a file whose origin changed drops the old origin too.
	write("b.zone", zoneText("f.test.", "192.0.2.6"))
	if err := s.LoadFile(b, ""); err != nil {
		t.Fatal(err)
	}
	check("LoadFile with a new origin", want{"b.test.", "REFUSED"}, want{"f.test.", "192.0.2.6"})

	// Remove is not undone by a reload.
	s.Remove("c.test.")
	s.Reload()
	check("removed, then reloaded", want{"c.test.", "REFUSED"})
}
