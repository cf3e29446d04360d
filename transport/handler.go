// Package transport holds Sextant's front ends: the servers that take DNS
// queries from clients over each protocol (Do53 over UDP and TCP, DoT, DoH
// over HTTP/1.1, HTTP/2 and HTTP/3, DoQ) and hand them to one Handler. It knows nothing of resolution or
// zones: the resolver and the authoritative backend are both Handlers.
// All four take one ListenerConfig (listener.go), embedded in each one's
// config, with one set of defaults and one Validate. Every stream front
// end shares its connection slots among clients and networks and closes
// idle connections first when they run short (admission.go). Behind a
// load balancer, the PROXY protocol v2 (proxy.go) tells them the real
// client.
package transport

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// Proto names the protocol a query arrived over.
type Proto uint8

const (
	UDP   Proto = iota // Do53 over UDP
	TCP                // Do53 over TCP
	TLS                // DNS over TLS (RFC 7858)
	HTTPS              // DNS over HTTPS (RFC 8484)
	QUIC               // DNS over QUIC (RFC 9250)
)

func (p Proto) String() string {
	switch p {
	case UDP:
		return "udp"
	case TCP:
		return "tcp"
	case TLS:
		return "tls"
	case HTTPS:
		return "https"
	case QUIC:
		return "quic"
	}
	return "unknown"
}

// Request is one client query as a front end received it. Front ends hand a
// Handler only well-formed queries: exactly one question, opcode QUERY, QR
// clear, EDNS version 0 at most; everything else they answer themselves
// (FORMERR, NOTIMP, BADVERS) or drop.
type Request struct {
	// Msg is the parsed query.
	Msg *dns.Msg
	// Raw is the query as received on the wire. It is only valid until
	// ServeDNS returns.
	Raw []byte
	// Remote and Local are the client's and our address. Behind a load
	// balancer speaking the PROXY protocol (ProxyProtocol), Remote is the
	// client its header names and Via the load balancer (else zero).
	Remote netip.AddrPort
	Via    netip.AddrPort
	Local  netip.AddrPort
	// Proto is the protocol the query came over.
	Proto Proto
	// MaxSize is the largest response the client accepts: over UDP its EDNS0
	// buffer size clamped to [512, server's advertised size] (512 without
	// EDNS0); over stream protocols 65535.
	MaxSize int
	// cookie is the COOKIE option (hex) the front end adds to the answer,
	// empty for none (cookie.go).
	cookie string
}

// ResponseWriter sends the one response to a Request.
type ResponseWriter interface {
	// WriteMsg packs m and sends it. If the packed message exceeds the
	// request's MaxSize it is truncated per RFC 2181 9 / RFC 6891 7 (TC set,
	// OPT kept).
	WriteMsg(m *dns.Msg) error
	// Write sends an already packed response as it is. The caller is
	// responsible for the ID, the question and fitting MaxSize. It exists so
	// that hot paths (the cache's ready-to-send answers) need not pack.
	Write(b []byte) error
}

// Handler answers queries. ServeDNS must write exactly one response, or none
// to drop the query. It must not keep w or r after it returns. ctx is
// cancelled when the client goes away or the server shuts down.
type Handler interface {
	ServeDNS(ctx context.Context, w ResponseWriter, r *Request)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, w ResponseWriter, r *Request)

// ServeDNS calls f(ctx, w, r).
func (f HandlerFunc) ServeDNS(ctx context.Context, w ResponseWriter, r *Request) { f(ctx, w, r) }

// ReadyAnswerer is an optional interface of a Handler: a fast path that the
// front ends (Do53 UDP and TCP, DoT, DoH, DoQ) try on the raw query bytes
// before parsing them, for answers that are ready to send (a cache hit).
// It exists because parsing, and on streams a goroutine per query, is most
// of the cost of a cache hit.
//
// AnswerReady appends to dst the whole response to query, the client's raw
// wire query, and reports true; or it leaves dst alone and reports false,
// and the query takes the normal path (parse, screen, ServeDNS). It must
// check the query itself (QR clear, opcode QUERY, one question, EDNS version
// 0), echo its ID, and never answer more than maxSize bytes. The front end
// calls it only for allowed clients and queries without EDNS options (which
// may ask for padding or keepalive); DoQ only for queries without EDNS(0)
// (it pads every EDNS(0) answer).
type ReadyAnswerer interface {
	AnswerReady(dst, query []byte, maxSize int) ([]byte, bool)
}

// ReadyAnswererFrom is a ReadyAnswerer that is also told the client's
// address (for a per-query log). When the Handler has it, the front end
// calls AnswerReadyFrom instead of AnswerReady, under the same contract.
type ReadyAnswererFrom interface {
	ReadyAnswerer
	AnswerReadyFrom(dst, query []byte, maxSize int, remote netip.AddrPort) ([]byte, bool)
}

// NotifyHandler is a Handler that answers opcode NOTIFY (RFC 1996) itself
// when TakesNotify reports true: the Do53 front ends (UDP and TCP, where
// primaries send it) then pass NOTIFY to ServeDNS with the same screening
// as QUERY. To any other Handler, and over DoT, DoH and DoQ, the front ends
// answer NOTIFY with NOTIMP, as every opcode but QUERY.
type NotifyHandler interface {
	Handler
	TakesNotify() bool
}
