package main

// Discovery of Designated Resolvers (DDR, RFC 9462), published by serve
// itself from its listener configuration: a client that knows only our
// unencrypted address asks for _dns.resolver.arpa SVCB and learns our DoT,
// DoH and DoQ listeners (RFC 9461 says how each is described).

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/transport"
)

const (
	// ddrZone is the special-use name of RFC 9462 6.4: every resolver
	// answers it itself and never forwards it.
	ddrZone = "resolver.arpa."
	// ddrName is the name a client asks for (RFC 9462 4).
	ddrName = "_dns.resolver.arpa."
	// ddrTTL is the TTL of the SVCB records and of the NODATA SOA: the
	// listeners change only when serve restarts, and RFC 9462 6.5 lets
	// clients keep a designation for the TTL; five minutes lets a changed
	// certificate take effect soon.
	ddrTTL = 300
	// dohPathTemplate is the dohpath of RFC 9461 5.1: the URI template of
	// the DoH front end's path (transport's default "/dns-query").
	dohPathTemplate = "/dns-query{?dns}"
	// ddrEDNSSize is the buffer size advertised in answers to EDNS(0)
	// queries, the front ends' own default (DNS Flag Day 2020).
	ddrEDNSSize = 1232
)

// ddrOptions are the DDR flags of `sextant serve`.
type ddrOptions struct {
	noDDR  bool
	name   string
	caFile string
}

func (o *ddrOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.noDDR, "no-ddr", false, "do not answer _dns.resolver.arpa SVCB with the encrypted listeners (DDR, RFC 9462); NODATA instead")
	fs.StringVar(&o.name, "ddr-name", "", "the `NAME` DDR advertises as the encrypted resolver's (default: the first DNS name of --tls-cert); the certificate must be valid for it")
	fs.StringVar(&o.caFile, "ddr-ca", "", "CA certificates `FILE` (PEM) --tls-cert must chain to for DDR (default: the system's roots)")
}

// ddrListener is one encrypted listener as DDR describes it.
type ddrListener struct {
	alpn []string
	addr netip.AddrPort
	doh  bool
}

// ddrState is what DDR answers from: the advertised name and the
// encrypted listeners, or no designation at all (target ""). Until the
// first update (the front ends answer from the moment they bind, before
// their addresses and the certificate are known) there is none, and
// ready is false.
type ddrState struct {
	ready     bool
	target    string
	listeners []ddrListener
}

// ddrHandler answers every name at or below resolver.arpa itself, and
// passes every other query to next.
type ddrHandler struct {
	next transport.Handler
	// ready is next's fast path, if it has one, found once rather than
	// asserted on every cache hit.
	ready transport.ReadyAnswerer
	state atomic.Pointer[ddrState]
}

func newDDRHandler(next transport.Handler) *ddrHandler {
	h := &ddrHandler{next: next}
	h.ready, _ = next.(transport.ReadyAnswerer)
	h.state.Store(&ddrState{})
	return h
}

// ServeDNS answers resolver.arpa names, passing others on.
func (h *ddrHandler) ServeDNS(ctx context.Context, w transport.ResponseWriter, r *transport.Request) {
	if !inDDRZone(r.Msg.Question[0].Name) {
		h.next.ServeDNS(ctx, w, r)
		return
	}
	_ = w.WriteMsg(h.answer(r.Msg, r.Local.Addr()))
}

// inDDRZone reports whether the fully qualified name is resolver.arpa or
// below it. dnsname.IsAtOrBelow compares the suffix first, so every other
// query (all but a handful) costs one length check and one short compare.
func inDDRZone(name string) bool { return dnsname.IsAtOrBelow(name, ddrZone) }

// AnswerReady keeps the ready-answer fast path of next: a resolver.arpa
// name never reaches next's ServeDNS, so it never has a ready answer.
func (h *ddrHandler) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	if h.ready != nil {
		return h.ready.AnswerReady(dst, query, maxSize)
	}
	return dst, false
}

// answer is the reply to a query at or below resolver.arpa: the SVCB set
// at _dns.resolver.arpa, NODATA with the zone's SOA for everything else and
// whenever there is no designation (RFC 9462 4: a resolver without
// designated resolvers SHOULD answer NODATA). local is the address the
// query came to, the hint for a listener on an unspecified address.
func (h *ddrHandler) answer(query *dns.Msg, local netip.Addr) *dns.Msg {
	m := new(dns.Msg).SetReply(query)
	m.Authoritative = true // a locally served zone (RFC 6303 4)
	m.RecursionAvailable = true
	st := h.state.Load()
	if !st.ready {
		// Not NODATA, which a client would keep for ddrTTL: RFC 8914 4.15.
		m.Authoritative = false
		m.Rcode = dns.RcodeServerFailure
		addEDE(m, query, dns.ExtendedErrorCodeNotReady, "listeners starting")
		return m
	}
	q := query.Question[0]
	if dnsname.Canonical(q.Name) == ddrName && q.Qtype == dns.TypeSVCB {
		m.Answer = st.records(q.Name, local)
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{ddrSOA()}
	}
	if opt := query.IsEdns0(); opt != nil {
		m.SetEdns0(ddrEDNSSize, opt.Do())
	}
	return m
}

// addEDE adds an OPT record with an Extended DNS Error to m when the
// query had EDNS(0) (RFC 8914 3: only then).
func addEDE(m, query *dns.Msg, code uint16, text string) {
	opt := query.IsEdns0()
	if opt == nil {
		return
	}
	m.SetEdns0(ddrEDNSSize, opt.Do())
	out := m.IsEdns0()
	out.Option = append(out.Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: text})
}

// ddrSOA is the SOA of the local resolver.arpa zone, for negative answers
// (RFC 2308 3); its fields follow RFC 6303's locally served zones.
func ddrSOA() dns.RR {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: ddrZone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ddrTTL},
		Ns:      ddrZone,
		Mbox:    "nobody.invalid.",
		Serial:  1,
		Refresh: 3600, Retry: 1200, Expire: 604800, Minttl: ddrTTL,
	}
}

// records are one SVCB record per encrypted listener, in the order
// DoT, DoH, DoQ with increasing priority numbers (RFC 9460 2.4.1: lower is
// preferred). owner is the query's spelling of the name.
func (s *ddrState) records(owner string, local netip.Addr) []dns.RR {
	if s.target == "" {
		return nil
	}
	out := make([]dns.RR, 0, len(s.listeners))
	for i, l := range s.listeners {
		rr := &dns.SVCB{
			Hdr:      dns.RR_Header{Name: owner, Rrtype: dns.TypeSVCB, Class: dns.ClassINET, Ttl: ddrTTL},
			Priority: uint16(i + 1),
			Target:   s.target,
		}
		rr.Value = append(rr.Value,
			&dns.SVCBAlpn{Alpn: l.alpn},
			&dns.SVCBPort{Port: l.addr.Port()})
		ip := l.addr.Addr().Unmap()
		if ip.IsUnspecified() {
			ip = local.Unmap()
		}
		if ip.Is4() {
			rr.Value = append(rr.Value, &dns.SVCBIPv4Hint{Hint: []net.IP{ip.AsSlice()}})
		} else if ip.IsValid() {
			rr.Value = append(rr.Value, &dns.SVCBIPv6Hint{Hint: []net.IP{ip.AsSlice()}})
		}
		if l.doh {
			rr.Value = append(rr.Value, &dns.SVCBDoHPath{Template: dohPathTemplate})
		}
		out = append(out, rr)
	}
	return out
}

// update sets what DDR answers from the running front ends and the
// certificate: at start and after every reload (the certificate may have
// changed). It logs why there is no designation when encrypted listeners
// exist but cannot be designated.
func (h *ddrHandler) update(o *ddrOptions, tlsCertFile string, fes []frontEnd, certs *transport.TLSCertificates, log *slog.Logger) {
	listeners := ddrListeners(fes)
	st := &ddrState{ready: true, listeners: listeners}
	if !o.noDDR && len(listeners) > 0 {
		target, err := ddrTarget(o, tlsCertFile, certs, time.Now())
		if err != nil {
			log.Warn("DDR: no designated resolver is advertised (NODATA for _dns.resolver.arpa)", "reason", err)
		} else {
			st.target = target
			log.Info("DDR: advertising the encrypted listeners", "name", target, "listeners", len(listeners))
		}
	}
	h.state.Store(st)
}

// ddrListeners lists the encrypted front ends' bound addresses, each
// address and port once (DoH binds TCP and UDP on the same port).
func ddrListeners(fes []frontEnd) []ddrListener {
	var out []ddrListener
	seen := make(map[string]bool)
	for _, fe := range fes {
		var alpn []string
		doh := false
		switch fe.(type) {
		case *transport.DoT:
			alpn = []string{"dot"}
		case *transport.DoH:
			alpn, doh = []string{"h2", "h3"}, true
		case *transport.DoQ:
			alpn = []string{"doq"}
		default:
			continue
		}
		for _, a := range fe.Addrs() {
			ap, err := netip.ParseAddrPort(a.String())
			key := alpn[0] + " " + a.String()
			if err != nil || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, ddrListener{alpn: alpn, addr: ap, doh: doh})
		}
	}
	return out
}

// ddrTarget is the name to advertise, or why none may be: RFC 9462 4.2
// (and 6.3) designate only a resolver whose certificate a client can
// verify, so a self-signed certificate, or one that does not chain to the
// trusted roots, has expired, or does not name the target, designates
// nothing.
func ddrTarget(o *ddrOptions, tlsCertFile string, certs *transport.TLSCertificates, now time.Time) (string, error) {
	if tlsCertFile == "" || certs == nil {
		return "", errors.New("no --tls-cert: a self-signed certificate cannot be verified by clients (RFC 9462 4.2)")
	}
	cert, err := certs.GetCertificate(nil)
	if err != nil || cert == nil || len(cert.Certificate) == 0 {
		return "", fmt.Errorf("no certificate: %v", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return "", fmt.Errorf("certificate: %w", err)
		}
	}
	target := dns.Fqdn(o.name)
	if o.name == "" {
		if target = firstDNSName(leaf); target == "" {
			return "", errors.New("the certificate names no DNS name to advertise (set --ddr-name)")
		}
	}
	roots, err := ddrRoots(o.caFile)
	if err != nil {
		return "", err
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		DNSName:       strings.TrimSuffix(target, "."),
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return "", fmt.Errorf("the certificate is not valid for %s: %w", target, err)
	}
	return dnsname.Canonical(target), nil
}

// firstDNSName is the certificate's first DNS name that is not a wildcard
// (a target must be one host name), as a fully qualified name.
func firstDNSName(c *x509.Certificate) string {
	for _, n := range c.DNSNames {
		if !strings.HasPrefix(n, "*") {
			if _, ok := dns.IsDomainName(n); ok {
				return dns.Fqdn(n)
			}
		}
	}
	return ""
}

// maxCAFileBytes bounds the --ddr-ca file: a CA bundle is a few hundred KiB.
const maxCAFileBytes = 4 << 20

// ddrRoots are the roots a designated resolver's certificate must chain
// to: --ddr-ca, or the system's.
func ddrRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			return nil, fmt.Errorf("system roots: %w", err)
		}
		return pool, nil
	}
	st, err := os.Stat(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ddr-ca: %w", err)
	}
	if st.Size() > maxCAFileBytes {
		return nil, fmt.Errorf("--ddr-ca: %s is larger than %d bytes", caFile, maxCAFileBytes)
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ddr-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--ddr-ca: no PEM certificate in %s", caFile)
	}
	return pool, nil
}
