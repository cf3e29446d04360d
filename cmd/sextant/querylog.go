package main

// The per-query log: one line per client query answered (or one in N,
// sampled), turned on by --query-log or at run time by `sextant ctl
// querylog on|off|sample N`. It wraps the whole client handler, so it sees
// every transport and the UDP fast path (ready answers from the cache,
// through transport.ReadyAnswererFrom). Off, it costs one atomic load per
// query and allocates nothing; on, a logged query's resolution is traced
// (resolver.WithTrace) to count the upstream queries and name the server
// that failed, which also keeps it from sharing an identical concurrent
// resolution; a logged query without EDNS is asked as with EDNS, so that
// the answer's Extended DNS Error says why it failed, and answered without.

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/transport"
)

// queryLog decides which queries are logged and writes their lines.
type queryLog struct {
	on     atomic.Bool
	sample atomic.Uint64 // log one query in sample (at least 1)
	seen   atomic.Uint64 // queries counted for sampling
	log    *slog.Logger
}

func newQueryLog(log *slog.Logger, on bool, sample int) *queryLog {
	q := &queryLog{log: log}
	q.set(on, sample)
	return q
}

// set turns the log on or off with a sampling rate.
func (q *queryLog) set(on bool, sample int) {
	q.sample.Store(uint64(max(sample, 1)))
	q.on.Store(on)
}

// status says how the log is set.
func (q *queryLog) status() string {
	if !q.on.Load() {
		return "query log off"
	}
	if n := q.sample.Load(); n > 1 {
		return fmt.Sprintf("query log on, one query in %d", n)
	}
	return "query log on, every query"
}

// sampled reports whether this query is the one in N to log; the caller
// has checked that the log is on.
func (q *queryLog) sampled() bool {
	n := q.sample.Load()
	return n <= 1 || q.seen.Add(1)%n == 0
}

// queryLogHandler is the client handler with the per-query log, and the
// dnstap output (dnstap.go), around it.
type queryLogHandler struct {
	next  transport.Handler
	ready transport.ReadyAnswerer // next's fast path, nil if none
	ql    *queryLog
	tap   *dnstapWriter // nil without --dnstap-file
}

func withQueryLog(next transport.Handler, ql *queryLog, tap *dnstapWriter) *queryLogHandler {
	h := &queryLogHandler{next: next, ql: ql, tap: tap}
	h.ready, _ = next.(transport.ReadyAnswerer)
	return h
}

var (
	_ transport.ReadyAnswererFrom = (*queryLogHandler)(nil)
	_ transport.NotifyHandler     = (*queryLogHandler)(nil)
)

// TakesNotify passes on whether next takes NOTIFY (notify.go).
func (h *queryLogHandler) TakesNotify() bool {
	n, ok := h.next.(transport.NotifyHandler)
	return ok && n.TakesNotify()
}

// AnswerReady is the fast path without a client address (never called by
// the front ends, which call AnswerReadyFrom).
func (h *queryLogHandler) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	if h.ready == nil {
		return dst, false
	}
	return h.ready.AnswerReady(dst, query, maxSize)
}

// AnswerReadyFrom is the UDP fast path: with the log off, one atomic load
// more than next's own.
func (h *queryLogHandler) AnswerReadyFrom(dst, query []byte, maxSize int, remote netip.AddrPort) ([]byte, bool) {
	if h.ready == nil {
		return dst, false
	}
	if h.tap == nil && !h.ql.on.Load() {
		return h.ready.AnswerReady(dst, query, maxSize)
	}
	began := time.Now()
	out, ok := h.ready.AnswerReady(dst, query, maxSize)
	if ok && h.tap != nil {
		h.tap.exchange(remote, netip.AddrPort{}, transport.UDP, query, began, out[len(dst):], time.Now())
	}
	if ok && h.ql.on.Load() && h.ql.sampled() {
		h.ql.write(logLine{
			remote: remote, proto: transport.UDP, took: time.Since(began),
			query: unpackOrNil(query), answer: unpackOrNil(out[len(dst):]), ready: true,
		})
	}
	return out, ok
}

func (h *queryLogHandler) ServeDNS(ctx context.Context, w transport.ResponseWriter, r *transport.Request) {
	logged := h.ql.on.Load() && h.ql.sampled()
	if !logged && h.tap == nil {
		h.next.ServeDNS(ctx, w, r)
		return
	}
	var up upstreams
	rec := &recordingWriter{ResponseWriter: w, keepWire: h.tap != nil}
	asked := r
	if logged && r.Msg != nil && r.Msg.IsEdns0() == nil {
		// Without EDNS the answer has no room for the Extended DNS
		// Error that says why it failed (RFC 8914 is an EDNS option):
		// next is asked as by an EDNS client, and the OPT is taken out
		// of the answer again on its way to the client.
		cp := *r
		cp.Msg = r.Msg.Copy()
		cp.Msg.SetEdns0(dns.MinMsgSize, false)
		asked, rec.dropOPT = &cp, true
	}
	began := time.Now()
	if logged {
		ctx = resolver.WithTrace(ctx, up.add)
	}
	h.next.ServeDNS(ctx, rec, asked)
	if h.tap != nil {
		h.tap.exchange(r.Remote, r.Local, r.Proto, rawQuery(r), began, rec.wire, time.Now())
	}
	if !logged {
		return
	}
	line := logLine{remote: r.Remote, proto: r.Proto, took: time.Since(began), query: r.Msg, answer: rec.answer, ready: rec.ready}
	line.upstream, line.failed = up.summary()
	h.ql.write(line)
}

// recordingWriter keeps the response on its way to the client.
type recordingWriter struct {
	transport.ResponseWriter
	answer   *dns.Msg
	ready    bool   // sent as packed bytes: a ready answer from the cache
	dropOPT  bool   // the client sent no OPT: none goes back
	keepWire bool   // keep the response's wire form (for dnstap)
	wire     []byte // the response as packed here (before the front end's own changes)
}

func (w *recordingWriter) WriteMsg(m *dns.Msg) error {
	w.answer = m
	if w.dropOPT && m.IsEdns0() != nil {
		out := *m
		out.Extra = make([]dns.RR, 0, len(m.Extra))
		for _, rr := range m.Extra {
			if _, isOPT := rr.(*dns.OPT); !isOPT {
				out.Extra = append(out.Extra, rr)
			}
		}
		m = &out
	}
	if w.keepWire {
		packed := *m // as the front end packs it, compressed
		packed.Compress = true
		w.wire, _ = packed.Pack()
	}
	return w.ResponseWriter.WriteMsg(m)
}

func (w *recordingWriter) Write(b []byte) error {
	w.answer, w.ready = unpackOrNil(b), true
	if w.keepWire {
		w.wire = append([]byte(nil), b...) // b goes back to its pool
	}
	return w.ResponseWriter.Write(b)
}

// rawQuery is the query as received, or packed again when the front end
// kept no wire form.
func rawQuery(r *transport.Request) []byte {
	if len(r.Raw) > 0 || r.Msg == nil {
		return r.Raw
	}
	b, _ := r.Msg.Pack()
	return b
}

// upstreams gathers the trace of one logged resolution.
type upstreams struct {
	mu     sync.Mutex
	n      int
	failed string // the last server that failed: "ADDR (zone Z): OUTCOME"
}

func (u *upstreams) add(e resolver.TraceEvent) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	if e.Err != nil || (e.Rcode != dns.RcodeSuccess && e.Rcode != dns.RcodeNameError) || e.Outcome == "lame" {
		why := e.Outcome
		if e.Err != nil {
			why = e.Err.Error()
		}
		u.failed = fmt.Sprintf("%s (zone %s): %s", e.Server, e.Zone, why)
	}
}

func (u *upstreams) summary() (int, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n, u.failed
}

// logLine is what one line of the query log tells.
type logLine struct {
	remote   netip.AddrPort
	proto    transport.Proto
	took     time.Duration
	query    *dns.Msg
	answer   *dns.Msg // nil when none was sent (dropped)
	ready    bool     // answered from the ready-answer cache
	upstream int      // upstream queries made
	failed   string   // the last upstream server that failed
}

// write logs l. A cache hit is an answer made without asking any server
// and not from a local zone (authoritative answers carry AA).
func (q *queryLog) write(l logLine) {
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("client", l.remote.String()), slog.String("transport", l.proto.String()))
	if l.query != nil && len(l.query.Question) == 1 {
		qq := l.query.Question[0]
		attrs = append(attrs, slog.String("name", qq.Name), slog.String("type", dns.Type(qq.Qtype).String()))
		if qq.Qclass != dns.ClassINET {
			attrs = append(attrs, slog.String("class", dns.Class(qq.Qclass).String()))
		}
	}
	rcode := -1
	local := false
	if l.answer != nil {
		rcode, local = l.answer.Rcode, l.answer.Authoritative
		attrs = append(attrs, slog.String("rcode", dns.RcodeToString[rcode]))
		if code, text, ok := edeOf(l.answer); ok {
			attrs = append(attrs, slog.String("ede", edeString(code, text)))
		}
	} else {
		attrs = append(attrs, slog.String("rcode", "none (dropped)"))
	}
	attrs = append(attrs, slog.Duration("duration", l.took),
		slog.Bool("cache_hit", l.ready || (l.upstream == 0 && !local && l.answer != nil)),
		slog.Int("upstream", l.upstream))
	if local {
		attrs = append(attrs, slog.Bool("local_zone", true))
	}
	if rcode == dns.RcodeServerFailure {
		if l.failed != "" {
			attrs = append(attrs, slog.String("failed_server", l.failed))
		}
		attrs = append(attrs, slog.String("why", servfailWhy(l)))
	}
	q.log.LogAttrs(context.Background(), slog.LevelInfo, "query", attrs...)
}

// servfailWhy says why a SERVFAIL was sent: the EDE's text, else the
// server that failed, else that nothing says.
func servfailWhy(l logLine) string {
	if code, text, ok := edeOf(l.answer); ok {
		return edeString(code, text)
	}
	if l.failed != "" {
		return "upstream failure at " + l.failed
	}
	if l.ready {
		return "cached failure"
	}
	return "no Extended DNS Error given"
}

// edeOf is the first Extended DNS Error (RFC 8914) of m.
func edeOf(m *dns.Msg) (code uint16, text string, ok bool) {
	if m == nil {
		return 0, "", false
	}
	opt := m.IsEdns0()
	if opt == nil {
		return 0, "", false
	}
	for _, o := range opt.Option {
		if e, isEDE := o.(*dns.EDNS0_EDE); isEDE {
			return e.InfoCode, e.ExtraText, true
		}
	}
	return 0, "", false
}

// edeString is "CODE (Name): text".
func edeString(code uint16, text string) string {
	s := fmt.Sprintf("%d (%s)", code, dns.ExtendedErrorCodeToString[code])
	if text = strings.TrimSpace(text); text != "" {
		s += ": " + text
	}
	return s
}

func unpackOrNil(b []byte) *dns.Msg {
	m := new(dns.Msg)
	if m.Unpack(b) != nil {
		return nil
	}
	return m
}
