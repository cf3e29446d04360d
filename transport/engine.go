package transport

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/miekg/dns"
)

// engine is what every front end shares: the handler, the access list, the
// advertised EDNS0 size, the logger and the buffer pool.
type engine struct {
	handler  Handler
	acl      *AccessList
	ednsSize int
	log      *slog.Logger
	bufs     *bufPool
	// cookies and limiter are nil when off (cookie.go, ratelimit.go).
	cookies *ServerCookies
	limiter *RateLimiter
	// rrl limits identical authoritative UDP answers; nil when off (rrl.go).
	rrl *ResponseRateLimiter
	// proxy is nil unless PROXY protocol headers are taken (proxy.go).
	proxy *ProxyProtocol
	// notify is whether handler takes NOTIFY (NotifyHandler).
	notify bool
	// readyFrom is the handler as a ReadyAnswererFrom, nil if it is not.
	readyFrom ReadyAnswererFrom
	// responses counts what is sent; nil when off (counters.go).
	responses *ResponseCounters
}

// answerReady asks ra for the ready answer to query, telling the client's
// address when the handler wants it (ReadyAnswererFrom).
func (e *engine) answerReady(ra ReadyAnswerer, dst, query []byte, maxSize int, remote netip.AddrPort) ([]byte, bool) {
	if e.readyFrom != nil {
		return e.readyFrom.AnswerReadyFrom(dst, query, maxSize, remote)
	}
	return ra.AnswerReady(dst, query, maxSize)
}

func newEngine(h Handler, access *AccessList, ednsSize int, log *slog.Logger) *engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nh, ok := h.(NotifyHandler)
	notify := ok && nh.TakesNotify()
	readyFrom, _ := h.(ReadyAnswererFrom)
	return &engine{handler: h, acl: access, ednsSize: ednsSize, log: log, bufs: newBufPool(), notify: notify, readyFrom: readyFrom}
}

// logRefused logs, at debug level, a query refused by the ACL, with the
// client and, behind a load balancer, the load balancer (via). Checked
// first so that a flood of refused queries allocates nothing when debug
// is off.
func (e *engine) logRefused(proto Proto, client, via netip.AddrPort) {
	if !e.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if via.IsValid() {
		e.log.Debug("query refused: client not allowed", "proto", proto, "client", client, "via", via)
		return
	}
	e.log.Debug("query refused: client not allowed", "proto", proto, "client", client)
}

// replyWriter is a ResponseWriter that can tell whether it already sent
// the response, so a panicking handler's query still gets SERVFAIL once.
type replyWriter interface {
	ResponseWriter
	written() bool
}

// call runs the handler for req and recovers from a panic in it: the panic
// is logged, the client gets SERVFAIL if nothing was sent yet, and the
// server goes on.
func (e *engine) call(ctx context.Context, w replyWriter, req *Request) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		e.log.Error("handler panic", "panic", fmt.Sprint(p), "remote", req.Remote, "proto", req.Proto)
		if !w.written() {
			if err := w.WriteMsg(errorReply(req.Msg, dns.RcodeServerFailure, e.ednsSize)); err != nil {
				e.log.Debug("write SERVFAIL after panic", "err", err)
			}
		}
	}()
	if e.cookies != nil && (req.Proto == TCP || req.Proto == TLS) {
		req.cookie = e.cookies.check(req.Msg, req.Remote.Addr()).reply
	}
	e.handler.ServeDNS(ctx, w, req)
}
