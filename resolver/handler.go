package resolver

import (
	"context"
	"fmt"
	"sync"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
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

// Handler is the client-facing query router: local zones first, then the
// ready-to-send answer cache straight from the raw query (the hot path: no
// unpacking, no locks held across I/O), then resolution, whose response is
// stored in the answer cache.
type Handler struct {
	r       *Resolver
	local   LocalZones
	answers *cache.Answers
	bufs    sync.Pool
}

// NewHandler makes the client handler for r. local may be nil. It keeps its
// own answer cache on r's clock.
func NewHandler(r *Resolver, local LocalZones) *Handler {
	return NewHandlerWithAnswers(r, local, cache.NewAnswers(cache.Config{Clock: r.cfg.Clock}))
}

// NewHandlerWithAnswers is NewHandler with a given answer cache (for sizing
// it, or purging it from outside).
func NewHandlerWithAnswers(r *Resolver, local LocalZones, answers *cache.Answers) *Handler {
	h := &Handler{r: r, local: local, answers: answers}
	h.bufs.New = func() any { b := make([]byte, 0, 1500); return &b }
	return h
}

// Answers returns the handler's ready-to-send answer cache.
func (h *Handler) Answers() *cache.Answers { return h.answers }

var _ transport.Handler = (*Handler)(nil)

// ServeDNS answers one client query.
func (h *Handler) ServeDNS(ctx context.Context, w transport.ResponseWriter, req *transport.Request) {
	q := req.Msg
	defer func() {
		if p := recover(); p != nil {
			h.r.log.Error("panic while answering", "panic", p)
			m := buildResponse(q, &Result{Rcode: dns.RcodeServerFailure,
				ede: &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("internal error: %v", p)}}, false)
			_ = w.WriteMsg(m)
		}
	}()
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	question := q.Question[0]
	if h.local != nil && h.local.Covers(question.Name) {
		if m := h.local.Answer(q); m != nil {
			m.RecursionDesired = q.RecursionDesired
			m.RecursionAvailable = true
			_ = w.WriteMsg(m)
			return
		}
	}
	if len(req.Raw) > 0 {
		bp := h.bufs.Get().(*[]byte)
		out, ok := h.answers.WriteSized((*bp)[:0], req.Raw, req.MaxSize)
		if ok {
			_ = w.Write(out)
			*bp = out[:0]
			h.bufs.Put(bp)
			return
		}
		h.bufs.Put(bp)
	}
	resp, _ := h.r.Exchange(ctx, q)
	if resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError {
		opt := q.IsEdns0()
		h.answers.Put(cache.AnswerKey{
			Name: question.Name, Type: question.Qtype, Class: question.Qclass,
			DO: opt != nil && opt.Do(), CD: q.CheckingDisabled, AD: q.AuthenticatedData,
		}, resp)
	}
	_ = w.WriteMsg(resp)
}
