// Package xfrout makes Sextant a primary for other servers: it answers
// zone transfers (AXFR, RFC 5936; IXFR answered with the whole zone, which
// RFC 1995 4 allows) of the zones an authority.Server serves, to the
// addresses and TSIG keys (RFC 8945) the operator allows and REFUSED to
// everyone else, and sends NOTIFY (RFC 1996) to the zone's secondaries when
// a zone's serial changes.
package xfrout

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Zone says who may transfer a zone and whom to tell of changes.
type Zone struct {
	Origin string
	// Allow are the addresses that may transfer; with Key set a transfer
	// must also be signed with it. One of them is required.
	Allow  []netip.Prefix
	Key    *secondary.Key
	Notify []netip.AddrPort // secondaries told of a new serial
	Source netip.Addr       // local address for NOTIFY; invalid: the system chooses
}

// ParseZone reads an --xfr-out declaration: whitespace-separated KEY=VALUE
// fields,
//
//	zone=example.com allow=192.0.2.0/24 key=xfr-key notify=192.0.2.2,192.0.2.3:5353 source=192.0.2.1
func ParseZone(s string, keys map[string]*secondary.Key) (*Zone, error) {
	z := &Zone{}
	for _, field := range strings.Fields(s) {
		k, v, ok := strings.Cut(field, "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE (zone=, allow=, key=, notify=, source=)", field)
		}
		if err := z.set(k, v, keys); err != nil {
			return nil, err
		}
	}
	if z.Origin == "" {
		return nil, fmt.Errorf("no zone=NAME in %q", s)
	}
	if len(z.Allow) == 0 && z.Key == nil {
		return nil, fmt.Errorf("zone %s: no allow=CIDR and no key=NAME: nobody could transfer it", z.Origin)
	}
	return z, nil
}

func (z *Zone) set(k, v string, keys map[string]*secondary.Key) error {
	switch k {
	case "zone":
		name := dnsname.Canonical(v)
		if _, ok := dns.IsDomainName(name); !ok || z.Origin != "" {
			return fmt.Errorf("zone %q: not a domain name, or given twice", v)
		}
		z.Origin = name
	case "allow":
		for _, a := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				addr, aerr := netip.ParseAddr(a)
				if aerr != nil {
					return fmt.Errorf("allow %q is neither an address nor a CIDR prefix", a)
				}
				p = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
			}
			z.Allow = append(z.Allow, p.Masked())
		}
	case "key":
		key := keys[dnsname.Canonical(v)]
		if key == nil {
			return fmt.Errorf("key %q is not defined (declare it with --tsig-key ALGORITHM:NAME:SECRET)", v)
		}
		z.Key = key
	case "notify":
		for _, a := range strings.Split(v, ",") {
			ap, err := parseAddrPort(a)
			if err != nil {
				return fmt.Errorf("notify %q: %w", a, err)
			}
			z.Notify = append(z.Notify, ap)
		}
	case "source":
		a, err := netip.ParseAddr(v)
		if err != nil {
			return fmt.Errorf("source %q is not an IP address", v)
		}
		z.Source = a.Unmap()
	default:
		return fmt.Errorf("unknown field %q (want zone=, allow=, key=, notify=, source=)", k)
	}
	return nil
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a.Unmap(), 53), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("want ADDR, ADDR:PORT or [IPV6]:PORT")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Options configure a Server.
type Options struct {
	Zones *authority.Server // the zones to transfer
	Log   *slog.Logger
	// NotifyRetries and NotifyInterval: a NOTIFY not answered is sent again
	// after the interval, doubled each time (RFC 1996 3.6).
	NotifyRetries  int
	NotifyInterval time.Duration
	// RefusedLogInterval: at most one log line per interval about refused
	// transfers (default a second); the others are counted in the next.
	RefusedLogInterval time.Duration
}

// Server answers transfers and sends NOTIFYs.
type Server struct {
	opts  Options
	zones map[string]*Zone
	keys  map[string]*secondary.Key

	// refusedLog limits the log lines of refused transfers.
	refusedLog secondary.RateLog

	mu       sync.Mutex
	serials  map[string]uint32 // last serial seen per zone (Check)
	journals map[string]*journal
	wg       sync.WaitGroup
}

// Defaults of Options.
const (
	defaultNotifyRetries  = 5
	defaultNotifyInterval = time.Second
	notifyTimeout         = 2 * time.Second
	ioTimeout             = 10 * time.Second
	// messageBytes is where a transfer message is cut: well under 64 KiB
	// so that a TSIG and the header always fit.
	messageBytes = 16 << 10
)

// New returns a Server for zones.
func New(zones []*Zone, o Options) (*Server, error) {
	if o.Zones == nil {
		return nil, fmt.Errorf("xfrout: no zones")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.NotifyRetries <= 0 {
		o.NotifyRetries = defaultNotifyRetries
	}
	if o.NotifyInterval <= 0 {
		o.NotifyInterval = defaultNotifyInterval
	}
	if o.RefusedLogInterval <= 0 {
		o.RefusedLogInterval = time.Second
	}
	s := &Server{opts: o, zones: make(map[string]*Zone), keys: make(map[string]*secondary.Key), serials: make(map[string]uint32), journals: make(map[string]*journal),
		refusedLog: secondary.RateLog{Interval: o.RefusedLogInterval}}
	for _, z := range zones {
		if s.zones[z.Origin] != nil {
			return nil, fmt.Errorf("--xfr-out: zone %s declared twice", z.Origin)
		}
		s.zones[z.Origin] = z
		if z.Key != nil {
			s.keys[z.Key.Name] = z.Key
		}
		if cur := o.Zones.Zone(z.Origin); cur != nil && cur.SOA() != nil {
			s.serials[z.Origin] = cur.SOA().Serial
			s.journals[z.Origin] = &journal{zone: cur}
		}
	}
	return s, nil
}

// Listener serves transfers on one address (TCP for AXFR and IXFR; UDP
// and TCP for the SOA queries secondaries send first).
type Listener struct {
	servers []*dns.Server
	wg      sync.WaitGroup
}

// Listen opens addr.
func (s *Server) Listen(addr string) (*Listener, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("transfer listener: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("transfer listener: %w", err)
	}
	secrets := make(map[string]string, len(s.keys))
	for n, k := range s.keys {
		secrets[n] = k.Secret
	}
	h := dns.HandlerFunc(s.serve)
	l := &Listener{servers: []*dns.Server{
		{PacketConn: pc, Handler: h, TsigSecret: secrets, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout},
		{Listener: ln, Handler: h, TsigSecret: secrets, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout, MaxTCPQueries: 16},
	}}
	for _, srv := range l.servers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = srv.ActivateAndServe()
		}()
	}
	return l, nil
}

// Close stops the listener.
func (l *Listener) Close() {
	for _, s := range l.servers {
		_ = s.Shutdown()
	}
	l.wg.Wait()
}

// serve answers one request on the transfer listener.
func (s *Server) serve(w dns.ResponseWriter, q *dns.Msg) {
	src := remoteAddr(w)
	if q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
		r := new(dns.Msg)
		r.SetRcode(q, dns.RcodeNotImplemented)
		_ = w.WriteMsg(r)
		return
	}
	origin := dnsname.Canonical(q.Question[0].Name)
	z := s.zones[origin]
	switch qt := q.Question[0].Qtype; {
	case qt != dns.TypeAXFR && qt != dns.TypeIXFR:
		// The SOA query before a transfer, or any query for the zones.
		s.reply(w, q, s.opts.Zones.Answer(q))
	case z == nil:
		s.refuse(w, q, origin, src, "zone not offered for transfer (no --xfr-out)")
	default:
		if why := z.refusal(q, src, w.TsigStatus()); why != "" {
			s.refuse(w, q, origin, src, why)
			return
		}
		s.transfer(w, q, z, src)
	}
}

// refusal says why src may not transfer z, or "".
func (z *Zone) refusal(q *dns.Msg, src netip.Addr, tsigStatus error) string {
	if len(z.Allow) > 0 {
		ok := false
		for _, p := range z.Allow {
			ok = ok || p.Contains(src)
		}
		if !ok {
			return fmt.Sprintf("%s is not in allow=", src)
		}
	}
	if z.Key != nil {
		t := q.IsTsig()
		switch {
		case t == nil:
			return "not TSIG-signed; the zone's key is " + z.Key.Name
		case dnsname.Canonical(t.Hdr.Name) != z.Key.Name:
			return fmt.Sprintf("signed with key %s, the zone's key is %s", t.Hdr.Name, z.Key.Name)
		case tsigStatus != nil:
			return fmt.Sprintf("TSIG check failed (%v): the key names or secrets differ", tsigStatus)
		}
	}
	return ""
}

func (s *Server) refuse(w dns.ResponseWriter, q *dns.Msg, origin string, src netip.Addr, why string) {
	if ok, n := s.refusedLog.Allow(time.Now()); ok {
		s.opts.Log.Warn("zone transfer refused", "zone", origin, "from", src.String(), "reason", why, "not_logged_since", n)
	}
	r := new(dns.Msg)
	r.SetRcode(q, dns.RcodeRefused)
	if q.IsTsig() != nil && w.TsigStatus() != nil {
		r.Rcode = dns.RcodeNotAuth
	}
	s.reply(w, q, r)
}

// reply writes r, signed when q was signed with a key known here.
func (s *Server) reply(w dns.ResponseWriter, q, r *dns.Msg) {
	if t := q.IsTsig(); t != nil && w.TsigStatus() == nil && s.keys[dnsname.Canonical(t.Hdr.Name)] != nil {
		r.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	_ = w.WriteMsg(r)
}

// transfer answers an AXFR, or an IXFR: with the differences from the
// client's serial when the journal holds them (RFC 1995 4), the single SOA
// when the client is current, else the whole zone (which RFC 1995 4
// allows). The records go in messages of about messageBytes, each signed
// in a chain when the request was (RFC 8945 5.3.1). Over UDP an IXFR gets
// the SOA alone, which tells the client to come back over TCP.
func (s *Server) transfer(w dns.ResponseWriter, q *dns.Msg, z *Zone, src netip.Addr) {
	zone := s.opts.Zones.Zone(z.Origin)
	var soa *dns.SOA
	if zone != nil {
		soa = zone.SOA()
	}
	if soa == nil { // not loaded, or a secondary zone not (or no longer) available
		r := new(dns.Msg)
		r.SetRcode(q, dns.RcodeServerFailure)
		s.reply(w, q, r)
		return
	}
	qtype := q.Question[0].Qtype
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		r := new(dns.Msg)
		r.SetReply(q)
		if qtype == dns.TypeIXFR {
			r.Answer = []dns.RR{soa}
		} else {
			r.Rcode = dns.RcodeRefused // AXFR is TCP only (RFC 5936 4.2)
		}
		s.reply(w, q, r)
		return
	}
	style, stream := "full", func(emit func(dns.RR) bool) { wholeZone(zone, soa, emit) }
	if qtype == dns.TypeIXFR {
		if from, ok := ixfrSerial(q); ok {
			if from == soa.Serial {
				style, stream = "up to date", func(emit func(dns.RR) bool) { emit(soa) }
			} else if diffs := s.diffsFrom(z.Origin, from, soa.Serial); diffs != nil {
				style, stream = "incremental", func(emit func(dns.RR) bool) { incremental(soa, diffs, emit) }
			}
		}
	}
	start := time.Now()
	records, err := s.send(w, q, stream)
	if err != nil {
		s.opts.Log.Warn("zone transfer out failed", "zone", z.Origin, "to", src.String(), "err", err)
		return
	}
	s.opts.Log.Info("zone transferred out", "zone", z.Origin, "to", src.String(), "serial", soa.Serial,
		"kind", dns.TypeToString[qtype], "style", style, "records", records, "took", time.Since(start).Round(time.Millisecond))
}

// ixfrSerial is the client's serial: the SOA in an IXFR's authority section.
func ixfrSerial(q *dns.Msg) (uint32, bool) {
	for _, rr := range q.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, true
		}
	}
	return 0, false
}

// wholeZone emits the SOA, every other record, the SOA again (RFC 5936 2.2).
func wholeZone(zone *authority.Zone, soa *dns.SOA, emit func(dns.RR) bool) {
	if !emit(soa) {
		return
	}
	for _, rr := range zone.Records() {
		if rr.Header().Rrtype != dns.TypeSOA && !emit(rr) {
			return
		}
	}
	emit(soa)
}

// incremental emits an IXFR's differences (RFC 1995 4): the new SOA, then
// for each version step its old SOA, deletions, new SOA, additions, and
// the new SOA to close.
func incremental(soa *dns.SOA, diffs []*outDiff, emit func(dns.RR) bool) {
	if !emit(soa) {
		return
	}
	for _, d := range diffs {
		if !emit(d.from) {
			return
		}
		for _, rr := range d.del {
			if !emit(rr) {
				return
			}
		}
		if !emit(d.to) {
			return
		}
		for _, rr := range d.add {
			if !emit(rr) {
				return
			}
		}
	}
	emit(soa)
}

// send writes the records stream makes in messages of about messageBytes
// through dns.Transfer.Out (which signs each in the TSIG chain) and
// returns how many records went.
func (s *Server) send(w dns.ResponseWriter, q *dns.Msg, stream func(emit func(dns.RR) bool)) (int, error) {
	ch := make(chan *dns.Envelope)
	done := make(chan error, 1)
	go func() { done <- new(dns.Transfer).Out(w, q, ch) }()
	var failed error
	records := 0
	flush := func(rrs []dns.RR) bool {
		select {
		case ch <- &dns.Envelope{RR: rrs}:
			return true
		case failed = <-done:
			if failed == nil {
				failed = fmt.Errorf("transfer ended early")
			}
			return false
		}
	}
	var batch []dns.RR
	size := 0
	stream(func(rr dns.RR) bool {
		n := dns.Len(rr)
		if size+n > messageBytes && len(batch) > 0 {
			if !flush(batch) {
				return false
			}
			batch, size = nil, 0
		}
		batch = append(batch, rr)
		size += n
		records++
		return true
	})
	if failed == nil && len(batch) > 0 {
		flush(batch)
	}
	close(ch)
	if failed != nil {
		return records, failed
	}
	return records, <-done
}

func remoteAddr(w dns.ResponseWriter) netip.Addr {
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// Check looks for zones whose serial changed since the last Check (a file
// reloaded, a transfer in) and sends their NOTIFYs in the background.
func (s *Server) Check(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for origin, z := range s.zones {
		cur := s.opts.Zones.Zone(origin)
		if cur == nil || cur.SOA() == nil {
			continue
		}
		serial := cur.SOA().Serial
		if old, ok := s.serials[origin]; ok && old == serial {
			continue
		}
		s.serials[origin] = serial
		s.record(origin, cur)
		for _, dst := range z.Notify {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.notify(ctx, z, dst, serial)
			}()
		}
	}
}

// Wait waits for the NOTIFYs in flight.
func (s *Server) Wait() { s.wg.Wait() }

// notify sends one NOTIFY until it is answered or the retries run out.
func (s *Server) notify(ctx context.Context, z *Zone, dst netip.AddrPort, serial uint32) {
	wait := s.opts.NotifyInterval
	var lastErr error
	for try := 0; try < s.opts.NotifyRetries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait *= 2
		}
		r, err := s.sendNotify(ctx, z, dst)
		if err == nil && r.Rcode == dns.RcodeSuccess {
			s.opts.Log.Info("NOTIFY sent", "zone", z.Origin, "to", dst.String(), "serial", serial)
			return
		}
		if err == nil {
			err = fmt.Errorf("answered %s", dns.RcodeToString[r.Rcode])
		}
		lastErr = err
	}
	s.opts.Log.Error("NOTIFY not acknowledged: the secondary learns of the change only at its next SOA refresh",
		"zone", z.Origin, "to", dst.String(), "serial", serial, "tries", s.opts.NotifyRetries, "err", lastErr)
}

func (s *Server) sendNotify(ctx context.Context, z *Zone, dst netip.AddrPort) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetNotify(z.Origin)
	c := &dns.Client{Timeout: notifyTimeout}
	if z.Source.IsValid() {
		c.Dialer = &net.Dialer{Timeout: notifyTimeout, LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(z.Source, 0))}
	}
	if z.Key != nil {
		q.SetTsig(z.Key.Name, z.Key.Algorithm, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{z.Key.Name: z.Key.Secret}
	}
	r, _, err := c.ExchangeContext(ctx, q, dst.String())
	return r, err
}
