package transport

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

const (
	mimeDNSMessage = "application/dns-message"
	mimeDNSJSON    = "application/dns-json"
)

// ServeHTTP answers RFC 8484 requests on the configured path: GET with
// ?dns= (base64url, padding optional), POST with a dns-message body, and
// GET with ?name=&type= (the JSON API of the public resolvers). Answers are
// application/dns-message, or application/dns-json when the client asks
// for it (see wantJSON). Errors are HTTP errors: 400 for a bad parameter or
// an unparseable message, 405 for another method, 413 for a body over
// 65535 bytes, 414 for a ?dns= longer than any DNS message, 415 for
// another content type; a client that asked for JSON gets them as JSON
// ({"error": "..."}). A parseable query the server refuses (REFUSED,
// NOTIMP, BADVERS...) is a DNS answer with 200.
func (s *DoH) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != s.cfg.Path {
		http.NotFound(w, r)
		return
	}
	// A request marks its connection busy, so that only idle ones are
	// evicted when connections run short.
	slot := connSlotOf(r.Context())
	if !slot.begin() {
		return // the connection is being closed as idle
	}
	defer slot.end()
	var q url.Values // nil (empty) without a query string: POSTs have none
	if r.URL.RawQuery != "" {
		q = r.URL.Query()
	}
	asJSON := wantJSON(r, q)
	var raw []byte
	switch r.Method {
	case http.MethodGet:
		switch {
		case q.Has("dns"):
			var err error
			if raw, err = decodeDNSParam(q.Get("dns")); err != nil {
				status := http.StatusBadRequest
				if errors.Is(err, errDNSParamTooLong) {
					status = http.StatusRequestURITooLong
				}
				httpError(w, "bad dns parameter: "+err.Error(), status, asJSON)
				return
			}
		case q.Has("name"):
			var err error
			if raw, err = jsonQuery(q, s.eng.ednsSize); err != nil {
				httpError(w, err.Error(), http.StatusBadRequest, asJSON)
				return
			}
		default:
			httpError(w, "missing dns or name parameter", http.StatusBadRequest, asJSON)
			return
		}
	case http.MethodPost:
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || ct != mimeDNSMessage {
			httpError(w, "content type must be "+mimeDNSMessage, http.StatusUnsupportedMediaType, asJSON)
			return
		}
		if r.ContentLength > maxMsgLen {
			httpError(w, "message too large", http.StatusRequestEntityTooLarge, asJSON)
			return
		}
		raw, err = readBody(w, r)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				httpError(w, "message too large", http.StatusRequestEntityTooLarge, asJSON)
				return
			}
			httpError(w, "reading body: "+err.Error(), http.StatusBadRequest, asJSON)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		httpError(w, "method not allowed", http.StatusMethodNotAllowed, asJSON)
		return
	}
	s.answer(w, r, raw, asJSON)
}

// readBody reads a POST's body, at most maxMsgLen bytes (more is a
// *http.MaxBytesError). A body of known length is read into a buffer of
// that size at once.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength < 0 {
		return io.ReadAll(http.MaxBytesReader(w, r.Body, maxMsgLen))
	}
	raw := make([]byte, r.ContentLength) // checked against maxMsgLen before
	if _, err := io.ReadFull(r.Body, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// errDNSParamTooLong marks a ?dns= longer than any DNS message encodes to.
var errDNSParamTooLong = errors.New("longer than any DNS message")

// decodeDNSParam decodes ?dns=: base64url without padding (RFC 8484 4.1);
// padded input is accepted too.
func decodeDNSParam(v string) ([]byte, error) {
	if v == "" {
		return nil, errors.New("empty")
	}
	if len(strings.TrimRight(v, "=")) > base64.RawURLEncoding.EncodedLen(maxMsgLen) {
		return nil, errDNSParamTooLong
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
}

// answer screens one wire-format query and has the Handler answer it.
func (s *DoH) answer(w http.ResponseWriter, r *http.Request, raw []byte, asJSON bool) {
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	allowed := s.eng.acl.allows(remote.Addr())
	if allowed && !asJSON && s.answerReady(w, raw, remote) {
		return
	}
	sc := screen(raw, allowed, false)
	switch {
	case sc.verdict == drop:
		httpError(w, "not a DNS query", http.StatusBadRequest, asJSON)
		return
	case sc.verdict == reject && sc.msg == nil:
		httpError(w, "malformed DNS message", http.StatusBadRequest, asJSON)
		return
	}
	req := Request{Msg: sc.msg, Raw: raw, Remote: remote, Via: viaOf(r.Context()), Proto: HTTPS, MaxSize: maxMsgLen}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(interface{ String() string }); ok {
		req.Local, _ = netip.ParseAddrPort(la.String())
	}
	dw := &dohWriter{s: s, w: w, req: &req, json: asJSON}
	if sc.verdict == reject {
		dw.WriteMsg(errorReply(sc.msg, sc.rcode, s.eng.ednsSize))
		return
	}
	// The handler's context ends with the request or with the server
	// (HTTP/3 request contexts do not derive from ours).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	s.eng.call(ctx, dw, &req)
	if !dw.sent {
		// The handler dropped the query; HTTP has to say something.
		httpError(w, "no answer", http.StatusServiceUnavailable, asJSON)
	}
}

// answerReady sends the Handler's ready answer to raw, if it has one
// (ReadyAnswerer, as on UDP): no parsing, no handler call. Only queries
// without EDNS options qualify, so none asks for padding.
func (s *DoH) answerReady(w http.ResponseWriter, raw []byte, remote netip.AddrPort) bool {
	ra, ok := s.eng.handler.(ReadyAnswerer)
	if !ok {
		return false
	}
	if _, ok := readySize(raw, maxMsgLen); !ok {
		return false
	}
	bp := s.eng.bufs.get()
	defer s.eng.bufs.put(bp)
	ans, ok := s.eng.answerReady(ra, (*bp)[:0], raw, maxMsgLen, remote)
	if !ok {
		return false
	}
	s.eng.responses.countWire(HTTPS, ans)
	dw := dohWriter{s: s, w: w}
	if err := dw.writeWire(ans, wireMinTTL(ans)); err != nil {
		s.eng.log.Debug("doh ready answer", "err", err)
	}
	return true
}

// dohWriter is the ResponseWriter of one DoH request.
type dohWriter struct {
	s    *DoH
	w    http.ResponseWriter
	req  *Request
	json bool
	sent bool
}

func (d *dohWriter) written() bool { return d.sent }

func (d *dohWriter) WriteMsg(m *dns.Msg) error {
	if d.sent {
		return errAlreadyWritten
	}
	if d.json {
		d.sent = true
		d.s.eng.responses.count(HTTPS, m.Rcode)
		return d.writeJSON(m)
	}
	eng := d.s.eng
	bp := eng.bufs.get()
	defer eng.bufs.put(bp)
	b, err := packAnswer(m, d.req, eng.ednsSize, extras{}, *bp)
	if err != nil {
		return err
	}
	d.sent = true
	eng.responses.count(HTTPS, m.Rcode)
	return d.writeWire(b, minTTL(m))
}

// Write sends b as it is, after parsing it for the Cache-Control lifetime;
// answers in JSON, or to padded queries, go the WriteMsg way.
func (d *dohWriter) Write(b []byte) error {
	if d.sent {
		return errAlreadyWritten
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		d.sent = true
		if d.json {
			httpError(d.w, "handler sent an unparseable answer", http.StatusInternalServerError, true)
			return err
		}
		d.s.eng.responses.countWire(HTTPS, b)
		return d.writeWire(b, -1)
	}
	if d.json || (extras{}).rewrites(d.req) {
		return d.WriteMsg(m)
	}
	d.sent = true
	d.s.eng.responses.count(HTTPS, m.Rcode)
	return d.writeWire(b, minTTL(m))
}

// writeWire sends b as application/dns-message, cacheable for ttl seconds
// (RFC 8484 5.1); ttl < 0 means no records, so no freshness lifetime.
func (d *dohWriter) writeWire(b []byte, ttl int) error {
	h := d.w.Header()
	h.Set("Content-Type", mimeDNSMessage)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if ttl >= 0 {
		h.Set("Cache-Control", "max-age="+strconv.Itoa(ttl))
	}
	d.w.WriteHeader(http.StatusOK)
	_, err := d.w.Write(b)
	return err
}

// minTTL is the freshness lifetime of an answer (RFC 8484 5.1): the
// smallest TTL of its records (OPT aside) and, for a negative answer (no
// Answer records), no more than the MINIMUM of an SOA in Authority, the
// negative caching time of RFC 2308 5. -1 means no records, no lifetime.
func minTTL(m *dns.Msg) int {
	ttl := -1
	lower := func(v uint32) {
		if ttl < 0 || int(v) < ttl {
			ttl = int(v)
		}
	}
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			lower(h.Ttl)
		}
	}
	if len(m.Answer) == 0 {
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				lower(soa.Minttl)
			}
		}
	}
	return ttl
}

// wireMinTTL is minTTL of a packed answer, read from the wire without
// parsing it into records (the ready-answer path); -1 when it has no
// records or does not parse.
func wireMinTTL(msg []byte) int {
	if len(msg) < headerLen {
		return -1
	}
	off := headerLen
	for range binary.BigEndian.Uint16(msg[4:6]) {
		if off = skipName(msg, off); off < 0 || off+4 > len(msg) {
			return -1
		}
		off += 4
	}
	counts := [3]int{int(binary.BigEndian.Uint16(msg[6:8])), int(binary.BigEndian.Uint16(msg[8:10])), int(binary.BigEndian.Uint16(msg[10:12]))}
	ttl := -1
	lower := func(v uint32) {
		if ttl < 0 || int(v) < ttl {
			ttl = int(v)
		}
	}
	for sec, n := range counts {
		for range n {
			if off = skipName(msg, off); off < 0 || off+10 > len(msg) {
				return -1
			}
			typ := binary.BigEndian.Uint16(msg[off : off+2])
			rrTTL := binary.BigEndian.Uint32(msg[off+4 : off+8])
			rdlen := int(binary.BigEndian.Uint16(msg[off+8 : off+10]))
			rdata := off + 10
			if off = rdata + rdlen; off > len(msg) {
				return -1
			}
			if typ == dns.TypeOPT {
				continue
			}
			lower(rrTTL)
			// A negative answer lives no longer than its SOA's MINIMUM,
			// the last field of its RDATA (RFC 2308 5).
			if sec == 1 && counts[0] == 0 && typ == dns.TypeSOA && rdlen >= 22 {
				lower(binary.BigEndian.Uint32(msg[off-4 : off]))
			}
		}
	}
	return ttl
}
