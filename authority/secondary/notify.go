package secondary

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// HandleNotify answers one NOTIFY (RFC 1996 3.7) received from src.
// tsigStatus is the outcome of the TSIG check of the raw message (nil when
// it verified or carries no TSIG). A NOTIFY for a secondary zone from one
// of its primaries (or an allow-notify address), signed with the zone's
// key when it has one, is acknowledged and triggers a refresh at once;
// anything else is REFUSED (NOTAUTH for a TSIG failure, RFC 8945 5.2) and
// counted. Many NOTIFYs in a burst make one refresh.
func (m *Manager) HandleNotify(q *dns.Msg, src netip.Addr, tsigStatus error) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(q)
	if q.Opcode != dns.OpcodeNotify || len(q.Question) != 1 || q.Question[0].Qtype != dns.TypeSOA {
		resp.Rcode = dns.RcodeFormatError
		return resp
	}
	origin := dnsname.Canonical(q.Question[0].Name)
	z := m.zones[origin]
	if z == nil {
		if ok, n := m.refusedLog.Allow(time.Now()); ok {
			m.opts.Log.Warn("NOTIFY refused: not a secondary zone here", "zone", origin, "from", src.String(), "not_logged_since", n)
		}
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	if why := z.notifyRefusal(q, src.Unmap(), tsigStatus); why != "" {
		z.mu.Lock()
		z.status.NotifiesRefused++
		z.mu.Unlock()
		if ok, n := m.refusedLog.Allow(time.Now()); ok {
			m.opts.Log.Warn("NOTIFY refused", "zone", origin, "from", src.String(), "reason", why, "not_logged_since", n)
		}
		resp.Rcode = dns.RcodeRefused
		if tsigStatus != nil {
			resp.Rcode = dns.RcodeNotAuth
		}
		return resp
	}
	resp.Authoritative = true
	m.opts.Log.Debug("NOTIFY taken", "zone", origin, "from", src.String())
	z.poke()
	return resp
}

// notifyRefusal says why a NOTIFY is not taken, or "".
func (z *secondaryZone) notifyRefusal(q *dns.Msg, src netip.Addr, tsigStatus error) string {
	if !z.notifyAllowed(src) {
		return fmt.Sprintf("%s is not a primary of the zone (nor in allow-notify)", src)
	}
	if z.cfg.Key == nil {
		return ""
	}
	t := q.IsTsig()
	switch {
	case t == nil:
		return fmt.Sprintf("not TSIG-signed; the zone's key is %s", z.cfg.Key.Name)
	case dnsname.Canonical(t.Hdr.Name) != z.cfg.Key.Name:
		return fmt.Sprintf("signed with key %s, the zone's key is %s", t.Hdr.Name, z.cfg.Key.Name)
	case tsigStatus != nil:
		return fmt.Sprintf("TSIG check failed (%v): the key names or secrets differ", tsigStatus)
	}
	return ""
}

func (z *secondaryZone) notifyAllowed(src netip.Addr) bool {
	for _, p := range z.cfg.Primaries {
		if p.Addr() == src {
			return true
		}
	}
	for _, p := range z.cfg.AllowNotify {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// NotifyListener takes NOTIFYs on an address of its own (UDP and TCP).
type NotifyListener struct {
	servers []*dns.Server
	wg      sync.WaitGroup
}

// notifyTimeout bounds each read and write of the NOTIFY listener.
const notifyTimeout = 5 * time.Second

// ListenNotify opens addr (ADDR:PORT) for NOTIFYs over UDP and TCP. Only
// NOTIFY is answered there (other opcodes get NOTIMP, queries REFUSED):
// the Do53 listeners answer queries.
func (m *Manager) ListenNotify(addr string) (*NotifyListener, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("NOTIFY listener: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("NOTIFY listener: %w", err)
	}
	secrets := make(map[string]string, len(m.keys))
	for name, k := range m.keys {
		secrets[name] = k.Secret
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) { m.serveNotify(w, r) })
	l := &NotifyListener{servers: []*dns.Server{
		{PacketConn: pc, Handler: h, TsigSecret: secrets, ReadTimeout: notifyTimeout, WriteTimeout: notifyTimeout},
		{Listener: ln, Handler: h, TsigSecret: secrets, ReadTimeout: notifyTimeout, WriteTimeout: notifyTimeout, MaxTCPQueries: 16},
	}}
	for _, s := range l.servers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = s.ActivateAndServe()
		}()
	}
	return l, nil
}

// Close stops the listener.
func (l *NotifyListener) Close() {
	for _, s := range l.servers {
		_ = s.Shutdown()
	}
	l.wg.Wait()
}

func (m *Manager) serveNotify(w dns.ResponseWriter, r *dns.Msg) {
	var src netip.Addr
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		src = ap.Addr()
	}
	var resp *dns.Msg
	if r.Opcode != dns.OpcodeNotify {
		resp = new(dns.Msg)
		resp.SetRcode(r, dns.RcodeRefused)
	} else {
		resp = m.HandleNotify(r, src, w.TsigStatus())
	}
	if t := r.IsTsig(); t != nil && w.TsigStatus() == nil && m.keys[dnsname.Canonical(t.Hdr.Name)] != nil {
		// RFC 8945 5.3: answer a signed request signed.
		resp.SetTsig(t.Hdr.Name, t.Algorithm, tsigFudge, time.Now().Unix())
	}
	_ = w.WriteMsg(resp)
}

// AnswerNotify answers one NOTIFY received by another server's listener
// (sextant serve's Do53 front ends, where primaries send it to port 53):
// raw is the message as received, for the TSIG check (RFC 8945 5.2), which
// the NotifyListener's dns.Server makes itself. It returns the packed
// answer, signed when the NOTIFY was signed with a known key and verified
// (RFC 8945 5.3).
func (m *Manager) AnswerNotify(q *dns.Msg, raw []byte, src netip.Addr) ([]byte, error) {
	t := q.IsTsig()
	if t == nil {
		return m.HandleNotify(q, src, nil).Pack()
	}
	key := m.keys[dnsname.Canonical(t.Hdr.Name)]
	status := dns.ErrSecret
	if key != nil {
		status = dns.TsigVerify(raw, key.Secret, "", false)
	}
	resp := m.HandleNotify(q, src, status)
	if status != nil {
		return resp.Pack()
	}
	resp.SetTsig(t.Hdr.Name, t.Algorithm, tsigFudge, time.Now().Unix())
	out, _, err := dns.TsigGenerate(resp, key.Secret, t.MAC, false)
	if err != nil {
		return nil, fmt.Errorf("signing the NOTIFY answer: %w", err)
	}
	return out, nil
}
