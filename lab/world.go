package lab

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
)

// This file describes the lab's internet: its servers and its zones. The
// builder (build.go) turns it into signed zones; delegations, DS records and
// glue are derived from it, not written by hand.

// serverDef is one name server: its host name, its address offset in the
// lab's block and how it misbehaves from the start.
type serverDef struct {
	host   string
	offset int
	drop   bool
	refuse bool
	slow   bool
}

// labServers lists the lab's servers in address order.
func labServers() []serverDef {
	return []serverDef{
		{host: HostRootA, offset: 1},
		{host: HostRootB, offset: 2},
		{host: HostNIC1, offset: 3},
		{host: HostNIC2, offset: 4},
		{host: HostZones1, offset: 5},
		{host: HostZones2, offset: 6},
		{host: HostSub, offset: 7},
		{host: HostDead, offset: 8, drop: true},
		{host: HostRefused, offset: 9, refuse: true},
		{host: HostSlow, offset: 10, slow: true},
	}
}

// hostAliases are further NS host names that point at a server above.
func hostAliases() map[string]string {
	return map[string]string{
		HostSecure8A:  HostZones1,
		HostSecure8B:  HostZones2,
		HostSecure15A: HostZones1,
		HostSecure15B: HostZones2,
		HostGlueless1: HostZones1,
		HostGlueless2: HostZones2,
	}
}

// dsMode says what the parent publishes for a zone.
type dsMode int

const (
	dsFromKSK       dsMode = iota // DS of the zone's SEP keys (none if unsigned)
	dsWrong                       // DS of a key the zone does not use
	dsUnknownDigest               // DS of the KSK with digest type DigestUnknown
	dsNone                        // no DS: a signed island below an unsigned parent
)

// signDef says how a zone is signed.
type signDef struct {
	alg     uint8
	split   bool // KSK+ZSK; false = one CSK
	nsec3   *authority.NSEC3Options
	expired bool // signature window wholly in the past
	future  bool // signature window starting tomorrow
	cds     bool // publish CDS/CDNSKEY
}

// breakage damages a signed zone after signing.
type breakage int

const (
	breakNone           breakage = iota
	breakSigWWW                  // corrupt the RRSIG of www A; remove the one of nosig A
	breakUnsignedDNSKEY          // remove the RRSIGs of the DNSKEY RRset
	breakUnknownAlg              // relabel keys and signatures as algorithm 253
	breakNoDenial                // remove the NSEC records and their RRSIGs
)

// zoneDef is one zone of the lab.
type zoneDef struct {
	origin string
	ns     []string // NS host names; the zone is served where they point
	sign   *signDef // nil: unsigned
	ds     dsMode
	brk    breakage
	// body is zone-file text below the SOA and NS, relative to origin.
	body string
	// bulk adds h0..h<bulk-1> A records.
	bulk int
	// delegationOnly: the parent delegates, no server serves the zone.
	delegationOnly bool
}

// labZones describes every zone. bulk is the number of bulk host names.
func labZones(bulk int) []zoneDef {
	rootNS := []string{HostRootA, HostRootB}
	nicNS := []string{HostNIC1, HostNIC2}
	zonesNS := []string{HostZones1, HostZones2}
	alg13 := &signDef{alg: dns.ECDSAP256SHA256}
	return []zoneDef{
		{origin: Root, ns: rootNS, sign: &signDef{alg: dns.ECDSAP256SHA256, split: true}},
		{origin: TLDTest, ns: nicNS, sign: &signDef{alg: dns.ECDSAP256SHA256, split: true}, body: "www A 127.0.2.1\n"},
		{origin: TLDExample, ns: nicNS, sign: &signDef{alg: dns.ECDSAP256SHA256, nsec3: &authority.NSEC3Options{}},
			body: "www A 127.0.2.10\n"},
		{origin: TLDUnsigned, ns: nicNS, body: "www A 127.0.2.45\n"},
		{origin: Island, ns: zonesNS, sign: alg13, ds: dsNone, body: "www A 127.0.2.43\n"},
		{origin: InsecureNSEC3, ns: zonesNS, body: "www A 127.0.2.44\n"},

		{origin: SecureAlg8, ns: []string{HostSecure8A, HostSecure8B}, sign: &signDef{alg: dns.RSASHA256, split: true},
			body: "www A 127.0.2.8\nchain CNAME www.nsec3.test.\n"},
		{origin: SecureAlg13, ns: zonesNS, sign: &signDef{alg: dns.ECDSAP256SHA256, cds: true}, body: secure13Body()},
		{origin: SecureAlg15, ns: []string{HostSecure15A, HostSecure15B}, sign: &signDef{alg: dns.ED25519, split: true},
			body: "www A 127.0.2.15\nloop CNAME loop.secure13.test.\nback CNAME x.dname.secure13.test.\nx A 127.0.2.151\ndloop DNAME dloop.secure13.test.\n"},
		{origin: SecureAlg16, ns: zonesNS, sign: &signDef{alg: dns.ED448}, body: "www A 127.0.2.16\n"},
		{origin: NSEC3Zone, ns: zonesNS, sign: &signDef{alg: dns.ECDSAP256SHA256, nsec3: &authority.NSEC3Options{}},
			body: "www A 127.0.2.3\n*.wild TXT \"nsec3 wildcard\"\na.b.ent A 127.0.2.33\n"},
		{origin: OptOut, ns: zonesNS, sign: &signDef{alg: dns.ECDSAP256SHA256, nsec3: &authority.NSEC3Options{OptOut: true}},
			body: "www A 127.0.2.4\n"},
		{origin: OptOutSecureChild, ns: []string{HostSub}, sign: alg13, body: "www A 127.0.2.41\n"},
		{origin: OptOutInsecureChild, ns: []string{HostSub}, body: "www A 127.0.2.42\n"},
		{origin: Insecure, ns: zonesNS, body: "www A 127.0.2.5\ncname-back CNAME www.secure13.test.\n"},
		{origin: BogusSig, ns: zonesNS, sign: alg13, brk: breakSigWWW,
			body: "www A 127.0.2.6\nok A 127.0.2.61\nnosig A 127.0.2.62\n"},
		{origin: Expired, ns: zonesNS, sign: &signDef{alg: dns.ECDSAP256SHA256, expired: true}, body: "www A 127.0.2.7\n"},
		{origin: BadDS, ns: zonesNS, sign: alg13, ds: dsWrong, body: "www A 127.0.2.9\n"},
		{origin: UnsignedDNSKEY, ns: zonesNS, sign: alg13, brk: breakUnsignedDNSKEY, body: "www A 127.0.2.11\n"},
		{origin: Wildcard, ns: zonesNS, sign: alg13,
			body: "* A 127.0.2.20\n* TXT \"wildcard\"\nexists A 127.0.2.21\n"},
		{origin: Glueless, ns: []string{HostGlueless1, HostGlueless2}, sign: alg13, body: "www A 127.0.2.22\n"},
		{origin: DeadNS, ns: []string{HostZones1, HostDead}, sign: alg13, body: "www A 127.0.2.23\n"},
		{origin: RefusedNS, ns: []string{HostRefused, HostZones1}, sign: alg13, body: "www A 127.0.2.24\n"},
		{origin: Lame, ns: []string{HostRefused}, delegationOnly: true},
		{origin: SlowNS, ns: []string{HostSlow, HostZones1}, sign: alg13, body: "www A 127.0.2.25\n"},
		{origin: Bulk, ns: zonesNS, sign: alg13, body: "www A 127.0.2.26\n", bulk: bulk},
		{origin: HighIterations, ns: zonesNS,
			sign: &signDef{alg: dns.ECDSAP256SHA256, nsec3: &authority.NSEC3Options{Iterations: 100, Salt: "aabbccdd"}},
			body: "www A 127.0.2.27\n"},
		{origin: UnknownAlgorithm, ns: zonesNS, sign: alg13, brk: breakUnknownAlg, body: "www A 127.0.2.28\n"},
		{origin: UnknownDigest, ns: zonesNS, sign: alg13, ds: dsUnknownDigest, body: "www A 127.0.2.29\n"},
		{origin: Future, ns: zonesNS, sign: &signDef{alg: dns.ECDSAP256SHA256, future: true}, body: "www A 127.0.2.30\n"},
		{origin: NoDenial, ns: zonesNS, sign: alg13, brk: breakNoDenial, body: "www A 127.0.2.31\n"},
	}
}

// BigTXTCount and BigTXTLen size the TXT RRset of big.secure13.test: well
// over 1232 bytes, so it needs TCP (or truncation) on the way.
const (
	BigTXTCount = 16
	BigTXTLen   = 200
)

func secure13Body() string {
	var b strings.Builder
	b.WriteString(`www A 127.0.2.13
www AAAA ::1
host.deep.ent A 127.0.2.131
cname-secure CNAME www.secure15.test.
cname-insecure CNAME www.insecure.test.
cname-example CNAME www.example.
cname-bogus CNAME www.bogus-sig.test.
chain CNAME chain.secure8.test.
loop CNAME loop.secure15.test.
dname DNAME secure15.test.
dloop DNAME dloop.secure15.test.
dname-insecure DNAME insecure.test.
a\128 TXT "octet 0x80"
a\255 TXT "octet 0xff"
`)
	for i := range BigTXTCount {
		fmt.Fprintf(&b, "big TXT \"%02d%s\"\n", i, strings.Repeat("x", BigTXTLen-2))
	}
	return b.String()
}

// BulkName is the i-th bulk host name: h<i>.bulk.test.
func BulkName(i int) string { return fmt.Sprintf("h%d.%s", i, Bulk) }

// bulkAddr is the address of the i-th bulk host, in 127.18.0.0/15:
// loopback, like every lab data address, and nothing listens there.
func bulkAddr(i int) string {
	return fmt.Sprintf("127.%d.%d.%d", 18+(i>>16)&1, (i>>8)&0xff, i&0xff)
}
