package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/internal/histogram"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/transport"
)

// LocalZones is the co-located authoritative backend as the handler sees
// it (authority.Server satisfies it): zones answered without a network hop.
type LocalZones interface {
	// Covers reports whether name is at or below one of the local zones.
	Covers(name string) bool
	// Answer answers q authoritatively (nil to let the resolver answer).
	Answer(q *dns.Msg) *dns.Msg
}

// ChangeNotifier is implemented by LocalZones that say when their data
// changes (authority.Server does). Their answers then take the ready-to-
// send path too, kept until the next change; other LocalZones are asked
// every time.
type ChangeNotifier interface {
	// OnChange has f called after each change, once the new data answers;
	// zonesAdded says names are now local that were not before.
	OnChange(f func(zonesAdded bool))
}

// VolatileAnswerer is implemented by LocalZones some of whose answers hold
// data from elsewhere (authority.Server: flattened CNAMEs, whose TTL is the
// chain's): those are not kept until the next change of the zones, as the
// others are, and are asked for every time.
type VolatileAnswerer interface {
	// AnswerVolatile is Answer, and reports whether the answer is such.
	AnswerVolatile(q *dns.Msg) (m *dns.Msg, volatile bool)
}

// Config is what a Handler serves from. Only the resolver is required.
type Config struct {
	// Local is the co-located authoritative backend; nil for none.
	Local LocalZones
	// Answers is the ready-to-send answer cache; nil makes one of default
	// size on the resolver's clock. Pass one to size it from the cache
	// bound, or to purge it from outside (zone reloads, flushes).
	Answers *cache.Answers
	// Logger receives internal errors; nil means slog.Default().
	Logger *slog.Logger
	// MaxRecursions bounds the questions in resolution at once (those the
	// answer cache and the local zones do not answer), and
	// MaxRecursionsPerNetwork those from one client /24 (IPv4) or /56
	// (IPv6); past them a question gets SERVFAIL at once. 0 means
	// DefaultMaxRecursions and DefaultMaxRecursionsPerNetwork.
	MaxRecursions, MaxRecursionsPerNetwork int
	// Latency, when set, receives the answer latencies (latency.go); nil
	// measures nothing.
	Latency *Latency
}

// Handler is the client-facing query router: the ready-to-send answer
// cache straight from the raw query (no unpacking, no locks held across
// I/O), then local zones, then resolution; the responses of both are
// stored in the answer cache.
type Handler struct {
	r       *resolver.Resolver
	local   LocalZones
	answers *cache.Answers
	limit   *recursionLimiter
	// localReady is whether local answers go into answers (PutStatic):
	// only when local tells of its changes.
	localReady bool
	log        *slog.Logger
	bufs       sync.Pool
	// lat is Config.Latency, nil when off.
	lat *Latency
}

// New makes the client handler for r.
func New(r *resolver.Resolver, cfg Config) *Handler {
	h := &Handler{r: r, local: cfg.Local, answers: cfg.Answers, log: cfg.Logger, lat: cfg.Latency,
		limit: newRecursionLimiter(cfg.MaxRecursions, cfg.MaxRecursionsPerNetwork)}
	if h.answers == nil {
		h.answers = cache.NewAnswers(cache.Config{Clock: r.Clock()})
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if n, ok := h.local.(ChangeNotifier); ok {
		n.OnChange(h.localChanged)
		h.localReady = true
	}
	h.bufs.New = func() any { b := make([]byte, 0, 1500); return &b }
	return h
}

// Answers returns the handler's ready-to-send answer cache.
func (h *Handler) Answers() *cache.Answers { return h.answers }

// RecursionsRefused is the number of questions refused because their
// network, or the resolver, had too many in resolution.
func (h *Handler) RecursionsRefused() uint64 { return h.limit.refused.Load() }

var (
	_ transport.Handler       = (*Handler)(nil)
	_ transport.ReadyAnswerer = (*Handler)(nil)
)

// ServeDNS answers one client query.
func (h *Handler) ServeDNS(ctx context.Context, w transport.ResponseWriter, req *transport.Request) {
	q := req.Msg
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("panic while answering", "panic", p)
			_ = w.WriteMsg(serverFailure(q, fmt.Sprintf("internal error: %v", p)))
		}
	}()
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	question := q.Question[0]
	if len(req.Raw) > 0 && h.serveReady(w, req) {
		return
	}
	var start time.Time
	if h.lat != nil {
		start = time.Now()
	}
	if h.local != nil && h.local.Covers(question.Name) {
		gen := h.answers.StaticGeneration() // before the answer: a change after it retires the answer
		if m, volatile := h.localAnswer(q); m != nil {
			m.RecursionDesired = q.RecursionDesired
			m.RecursionAvailable = true
			if h.localReady && !volatile {
				h.answers.PutStatic(answerKey(q), m, gen)
			}
			h.observe(h.latLocal(), start)
			_ = w.WriteMsg(m)
			return
		}
	}
	n, ok := h.limit.acquire(req.Remote.Addr())
	if !ok {
		_ = w.WriteMsg(serverFailure(q, "too many questions in resolution from your network"))
		return
	}
	defer h.limit.release(n)
	resp, _ := h.r.Exchange(ctx, q)
	if resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError {
		h.answers.Put(answerKey(q), resp)
	}
	if h.lat != nil {
		if q.RecursionDesired {
			h.observe(h.lat.Miss, start)
		} else if sampleHit(q.Id) { // answered from the cache alone (RFC 1034 4.3.1)
			h.observe(h.lat.Hit, start)
		}
	}
	_ = w.WriteMsg(resp)
}

// localAnswer is the local zones' answer to q, and whether it is volatile
// (VolatileAnswerer).
func (h *Handler) localAnswer(q *dns.Msg) (*dns.Msg, bool) {
	if v, ok := h.local.(VolatileAnswerer); ok {
		return v.AnswerVolatile(q)
	}
	return h.local.Answer(q), false
}

// serveReady writes the ready-to-send answer to req, if there is one.
func (h *Handler) serveReady(w transport.ResponseWriter, req *transport.Request) bool {
	var start time.Time
	timed := h.lat != nil && sampleHit(req.Msg.Id)
	if timed {
		start = time.Now()
	}
	bp := h.bufs.Get().(*[]byte)
	defer h.bufs.Put(bp)
	out, ok := h.answers.WriteSized((*bp)[:0], req.Raw, req.MaxSize)
	if !ok {
		return false
	}
	if timed {
		h.observe(h.lat.Hit, start)
	}
	_ = w.Write(out)
	*bp = out[:0]
	return true
}

// latLocal is the local zones' histogram, nil when off.
func (h *Handler) latLocal() *histogram.Histogram {
	if h.lat == nil {
		return nil
	}
	return h.lat.Local
}

// observe records the time since start in hist, unless hist is nil. It is
// called just before the response is written, so that a client that has
// its answer finds it in the histograms (and a test that scrapes /metrics
// after its last answer sees every one).
func (h *Handler) observe(hist *histogram.Histogram, start time.Time) {
	if hist != nil {
		hist.Observe(time.Since(start))
	}
}

// localChanged retires the local answers of the ready-to-send cache; when a
// zone was added, every answer, since the resolver's answers for names now
// local must not be served either.
func (h *Handler) localChanged(zonesAdded bool) {
	h.answers.InvalidateStatic()
	if zonesAdded {
		h.answers.Purge()
	}
}

// answerKey is what the answer to q depends on besides the data.
func answerKey(q *dns.Msg) cache.AnswerKey {
	question := q.Question[0]
	opt := q.IsEdns0()
	return cache.AnswerKey{
		Name: question.Name, Type: question.Qtype, Class: question.Qclass,
		DO: opt != nil && opt.Do(), CD: q.CheckingDisabled, AD: q.AuthenticatedData,
	}
}

// AnswerReady is the front ends' fast path (transport.ReadyAnswerer): a
// repeated question answered from the ready-to-send answer cache straight
// from the raw query, before the query is parsed. Local zones need no check
// first: the resolver's answers for their names never enter the cache (the
// local zones answer those first), and their own answers there are retired
// on every change of the zones.
func (h *Handler) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	if h.lat != nil {
		return h.timedReady(dst, query, maxSize)
	}
	return h.answers.WriteSized(dst, query, maxSize)
}

// serverFailure is SERVFAIL for q with an Extended DNS Error saying why
// (RFC 8914), for clients that sent EDNS.
func serverFailure(q *dns.Msg, why string) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeServerFailure)
	m.RecursionAvailable = true
	if q.IsEdns0() != nil {
		m.SetEdns0(transport.DefaultEDNSSize, false)
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: strings.ToValidUTF8(why, "?")})
	}
	return m
}
