package main

// NOTIFY (RFC 1996) on the Do53 listeners: primaries send it to a
// secondary's port 53, so --listen takes it as --notify-listen does.

import (
	"context"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/transport"
)

// notifyHandler answers opcode NOTIFY from the secondary manager and
// passes every query to next. The front ends pass it NOTIFY over Do53 only
// (transport.NotifyHandler); every other opcode but QUERY stays NOTIMP.
type notifyHandler struct {
	next transport.Handler
	// ready is next's fast path, found once (as in ddrHandler).
	ready transport.ReadyAnswerer
	m     *secondary.Manager
}

// withNotify wraps next so that NOTIFYs go to m; with no secondary zones
// (m nil) next is returned as it is, and NOTIFY gets NOTIMP.
func withNotify(next transport.Handler, m *secondary.Manager) transport.Handler {
	if m == nil {
		return next
	}
	h := &notifyHandler{next: next, m: m}
	h.ready, _ = next.(transport.ReadyAnswerer)
	return h
}

// TakesNotify tells the front ends to pass NOTIFY to ServeDNS.
func (h *notifyHandler) TakesNotify() bool { return true }

// ServeDNS answers NOTIFY (the manager checks zone, source and TSIG on the
// raw bytes, and REFUSEs the rest) and passes queries on.
func (h *notifyHandler) ServeDNS(ctx context.Context, w transport.ResponseWriter, r *transport.Request) {
	if r.Msg.Opcode != dns.OpcodeNotify {
		h.next.ServeDNS(ctx, w, r)
		return
	}
	out, err := h.m.AnswerNotify(r.Msg, r.Raw, r.Remote.Addr())
	if err != nil {
		m := new(dns.Msg)
		m.SetRcode(r.Msg, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
		return
	}
	_ = w.Write(out)
}

// AnswerReady keeps next's fast path: a NOTIFY never qualifies for it
// (the ReadyAnswerer checks for opcode QUERY).
func (h *notifyHandler) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	if h.ready != nil {
		return h.ready.AnswerReady(dst, query, maxSize)
	}
	return dst, false
}
