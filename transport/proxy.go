package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// The PROXY protocol, version 2 (HAProxy's proxy-protocol.txt, section
// 2.2): a load balancer in front of Sextant (dnsdist with
// useProxyProtocol=true, HAProxy, nginx) prepends a small binary header to
// each UDP datagram and to the start of each TCP connection (before TLS;
// dnsdist puts it first inside TLS towards DoT backends, and DoT takes it
// there too),
// naming the client it relays for. Sextant reads it only from the
// load balancers' own addresses (ProxyProtocol), and then the client it
// names is the one ACLs, rate limits, cookies, connection shares and logs
// see; answers still go back to the load balancer. Version 1 (text) is not
// taken: dnsdist sends only version 2.
//
// The header is parsed here rather than with a library: the UDP path must
// take it from a byte slice without allocating, and it is small: a fixed
// 16 bytes, the addresses, then type-length-value fields.

// proxySignature opens every version 2 header. No DNS query starts so:
// its flags would be 0x0D0A (opcode 1, IQUERY, obsolete since RFC 3425).
var proxySignature = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

const (
	// proxyFixedLen is the signature, the version and command, the family
	// and transport, and the length of what follows.
	proxyFixedLen = 16
	// maxProxyBody bounds what follows the fixed part: addresses take at
	// most 216 bytes (AF_UNIX), leaving 800 for TLVs, far more than
	// dnsdist (none unless configured) or HAProxy (tens of bytes) send.
	// It bounds the read on a stream before any of it is checked.
	maxProxyBody = 1024
	// Lengths of the address blocks: source and destination addresses,
	// then source and destination ports.
	proxyInetLen  = 4 + 4 + 2 + 2
	proxyInet6Len = 16 + 16 + 2 + 2
	proxyUnixLen  = 108 + 108
	// proxyTLVCRC32C is the TLV holding a CRC-32C of the whole header
	// (PP2_TYPE_CRC32C); checked when present.
	proxyTLVCRC32C = 0x03
	// proxyLogEvery spaces the log lines about rejected headers: a
	// misconfigured load balancer sends thousands a second.
	proxyLogEvery = 10 * time.Second
)

// Errors of a PROXY header. They are values, so that rejecting a datagram
// allocates nothing.
var (
	errProxyMissing   = errors.New("no PROXY protocol v2 header")
	errProxyUntrusted = errors.New("PROXY header from an address not trusted")
	errProxyTruncated = errors.New("PROXY header truncated")
	errProxyVersion   = errors.New("PROXY header: not version 2")
	errProxyCommand   = errors.New("PROXY header: unknown command")
	errProxyFamily    = errors.New("PROXY header: unknown address family or transport")
	errProxyLength    = errors.New("PROXY header: length does not fit the addresses")
	errProxyTooLong   = errors.New("PROXY header: too long")
	errProxyTLV       = errors.New("PROXY header: malformed TLV")
	errProxyCRC       = errors.New("PROXY header: CRC-32C mismatch")
	errProxyAddress   = errors.New("PROXY header: invalid client address")
)

// proxyHeader is what a PROXY header says.
type proxyHeader struct {
	// len is the header's length in bytes: the DNS message or the stream
	// starts after it.
	len int
	// relayed: the header names the client (command PROXY, family INET
	// or INET6). Otherwise (command LOCAL, the load balancer's own health
	// check; or family UNSPEC or UNIX) the peer is the client, as the
	// specification asks.
	relayed bool
	// src is the client, dst the address it sent to (the load
	// balancer's), when relayed.
	src, dst netip.AddrPort
}

// hasProxySignature reports whether b starts with a version 2 header's
// signature.
func hasProxySignature(b []byte) bool {
	return len(b) >= len(proxySignature) && [12]byte(b[:12]) == proxySignature
}

// parseProxyHeader parses the PROXY v2 header at the start of b. It is
// strict: version 2, command LOCAL or PROXY, a known family and
// transport, a length that holds the family's addresses and no more than
// maxProxyBody, TLVs that exactly fill the rest, a CRC-32C that matches if
// sent. It allocates nothing.
func parseProxyHeader(b []byte) (proxyHeader, error) {
	if !hasProxySignature(b) {
		return proxyHeader{}, errProxyMissing
	}
	if len(b) < proxyFixedLen {
		return proxyHeader{}, errProxyTruncated
	}
	verCmd, famProto := b[12], b[13]
	body := int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 {
		return proxyHeader{}, errProxyVersion
	}
	cmd := verCmd & 0x0F
	if cmd > 1 { // 0 LOCAL, 1 PROXY
		return proxyHeader{}, errProxyCommand
	}
	family, proto := famProto>>4, famProto&0x0F
	if family > 3 || proto > 2 { // families UNSPEC, INET, INET6, UNIX; transports UNSPEC, STREAM, DGRAM
		return proxyHeader{}, errProxyFamily
	}
	if body > maxProxyBody {
		return proxyHeader{}, errProxyTooLong
	}
	if len(b) < proxyFixedLen+body {
		return proxyHeader{}, errProxyTruncated
	}
	h := proxyHeader{len: proxyFixedLen + body}
	rest := b[proxyFixedLen:h.len]
	var addrLen int
	switch family {
	case 1:
		addrLen = proxyInetLen
	case 2:
		addrLen = proxyInet6Len
	case 3:
		addrLen = proxyUnixLen
	}
	if body < addrLen {
		return proxyHeader{}, errProxyLength
	}
	if cmd == 1 && (family == 1 || family == 2) {
		var src, dst netip.Addr
		if family == 1 {
			src, dst = netip.AddrFrom4([4]byte(rest[0:4])), netip.AddrFrom4([4]byte(rest[4:8]))
		} else {
			src, dst = netip.AddrFrom16([16]byte(rest[0:16])).Unmap(), netip.AddrFrom16([16]byte(rest[16:32])).Unmap()
		}
		ports := rest[addrLen-4:]
		if src.IsUnspecified() || src.IsMulticast() {
			return proxyHeader{}, errProxyAddress
		}
		h.relayed = true
		h.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(ports[0:2]))
		h.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(ports[2:4]))
	}
	if err := checkProxyTLVs(b[:h.len], proxyFixedLen+addrLen); err != nil {
		return proxyHeader{}, err
	}
	return h, nil
}

// checkProxyTLVs checks that the TLVs of header, from off on, fill it
// exactly, and the CRC-32C if one is there (computed over the whole
// header with its own value taken as zero).
func checkProxyTLVs(header []byte, off int) error {
	for off < len(header) {
		if len(header)-off < 3 {
			return errProxyTLV
		}
		typ, n := header[off], int(binary.BigEndian.Uint16(header[off+1:off+3]))
		val := off + 3
		if n > len(header)-val {
			return errProxyTLV
		}
		if typ == proxyTLVCRC32C {
			if n != 4 {
				return errProxyTLV
			}
			sum := crc32.Update(0, crc32cTable, header[:val])
			sum = crc32.Update(sum, crc32cTable, zeroCRC[:])
			sum = crc32.Update(sum, crc32cTable, header[val+4:])
			if sum != binary.BigEndian.Uint32(header[val:val+4]) {
				return errProxyCRC
			}
		}
		off = val + n
	}
	return nil
}

var crc32cTable = crc32.MakeTable(crc32.Castagnoli)

// zeroCRC stands for the CRC-32C value while it is computed; a variable
// of the package, never written, since crc32 lets a local escape.
var zeroCRC [4]byte

// readProxyHeader reads one PROXY v2 header from the start of a stream:
// the fixed part, then exactly the length it gives (bounded), so nothing
// after the header is consumed.
func readProxyHeader(r io.Reader) (proxyHeader, error) {
	var fixed [proxyFixedLen]byte
	if n, err := io.ReadFull(r, fixed[:len(proxySignature)]); err != nil {
		if n == 0 { // closed or silent: a connect-only health check, say
			return proxyHeader{}, fmt.Errorf("%w: %w", errProxyMissing, err)
		}
		return proxyHeader{}, fmt.Errorf("reading PROXY header: %w", err)
	}
	if !hasProxySignature(fixed[:]) {
		return proxyHeader{}, errProxyMissing
	}
	if _, err := io.ReadFull(r, fixed[len(proxySignature):]); err != nil {
		return proxyHeader{}, fmt.Errorf("reading PROXY header: %w", err)
	}
	body := int(binary.BigEndian.Uint16(fixed[14:16]))
	if body > maxProxyBody {
		return proxyHeader{}, errProxyTooLong
	}
	buf := make([]byte, proxyFixedLen+body)
	copy(buf, fixed[:])
	if _, err := io.ReadFull(r, buf[proxyFixedLen:]); err != nil {
		return proxyHeader{}, fmt.Errorf("reading PROXY header: %w", err)
	}
	return parseProxyHeader(buf)
}

// ProxyProtocol takes PROXY protocol v2 headers from trusted load
// balancers on the Do53 (UDP and TCP), DoT and DoH front ends. From a
// trusted address every datagram and connection must start with a header
// (dnsdist always sends one once configured): one without, or with a
// malformed one, is dropped (UDP) or closed (TCP). From any other address,
// queries are served as they come, and a header is refused: a client
// cannot claim another's address. Share one between front ends so that
// the counts add up. DoQ and DoH over HTTP/3 take no header (QUIC has
// none); behind a load balancer, serve them directly or not at all.
type ProxyProtocol struct {
	from []netip.Prefix
	// Counters of ProxyStats.
	relayed, local, untrusted, missing, malformed atomic.Int64
	epoch                                         time.Time
	// Since epoch, of the last refusal logged, trusted and not: a flood
	// of forged headers must not hide a misconfigured load balancer.
	lastLog, lastUntrustedLog atomic.Int64
}

// ProxyStats counts the PROXY headers taken and refused, over all front
// ends sharing one ProxyProtocol.
type ProxyStats struct {
	// Relayed counts headers taken that named a client; Local those of
	// command LOCAL (the load balancer's own health checks).
	Relayed, Local int64
	// Untrusted counts headers refused from an address not trusted;
	// Missing datagrams and connections from a trusted address without a
	// header; Malformed headers that did not parse.
	Untrusted, Missing, Malformed int64
}

// NewProxyProtocol trusts the load balancers in from (at least one
// prefix); IPv4-mapped addresses are judged as IPv4.
func NewProxyProtocol(from []netip.Prefix) (*ProxyProtocol, error) {
	if len(from) == 0 {
		return nil, errors.New("PROXY protocol: no trusted load balancer address")
	}
	p := &ProxyProtocol{epoch: time.Now()}
	for _, pr := range from {
		if !pr.IsValid() {
			return nil, fmt.Errorf("PROXY protocol: invalid prefix %v", pr)
		}
		p.from = append(p.from, pr.Masked())
	}
	p.lastLog.Store(-int64(proxyLogEvery))
	p.lastUntrustedLog.Store(-int64(proxyLogEvery))
	return p, nil
}

// Stats returns the counters.
func (p *ProxyProtocol) Stats() ProxyStats {
	return ProxyStats{
		Relayed: p.relayed.Load(), Local: p.local.Load(),
		Untrusted: p.untrusted.Load(), Missing: p.missing.Load(), Malformed: p.malformed.Load(),
	}
}

// trusts reports whether peer is one of the load balancers.
func (p *ProxyProtocol) trusts(peer netip.Addr) bool {
	peer = peer.Unmap()
	for _, pr := range p.from {
		if pr.Contains(peer) {
			return true
		}
	}
	return false
}

// took counts a header taken.
func (p *ProxyProtocol) took(h proxyHeader) {
	if h.relayed {
		p.relayed.Add(1)
	} else {
		p.local.Add(1)
	}
}

// refused counts a datagram or connection refused for err from peer and
// logs it, at most once per proxyLogEvery: a trusted load balancer that
// sends no header or a bad one is misconfigured (Warn); a header from
// elsewhere is someone's attempt to pass for another client (Debug).
func (p *ProxyProtocol) refused(log *slog.Logger, frontend string, peer netip.AddrPort, trusted bool, err error) {
	level, lastLog := slog.LevelWarn, &p.lastLog
	switch {
	case !trusted:
		p.untrusted.Add(1)
		level, lastLog = slog.LevelDebug, &p.lastUntrustedLog
	case errors.Is(err, errProxyMissing):
		p.missing.Add(1)
	default:
		p.malformed.Add(1)
	}
	now := int64(time.Since(p.epoch))
	last := lastLog.Load()
	if now-last < int64(proxyLogEvery) || !lastLog.CompareAndSwap(last, now) {
		return
	}
	st := p.Stats()
	log.Log(context.Background(), level, "PROXY header refused", "frontend", frontend, "peer", peer, "trusted", trusted, "err", err,
		"untrusted", st.Untrusted, "missing", st.Missing, "malformed", st.Malformed)
}

// refuseProxyHeader reads the first bytes of a connection from an address
// not trusted to send PROXY headers, within timeout, and returns
// errProxyUntrusted if they are one's signature; else a connection that
// reads those bytes again first. Every stream starts with at least as
// many bytes (a DNS query's length and header, a TLS ClientHello), so the
// read waits for nothing a client would not send anyway.
func refuseProxyHeader(conn net.Conn, timeout time.Duration) (net.Conn, error) {
	var first [len(proxySignature)]byte
	conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := io.ReadFull(conn, first[:])
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("reading the first bytes: %w", err)
	}
	if hasProxySignature(first[:n]) {
		return nil, errProxyUntrusted
	}
	return &prefixConn{Conn: conn, prefix: first}, nil
}

// prefixConn is a connection whose first bytes were already read: it
// returns them again before reading on.
type prefixConn struct {
	net.Conn
	prefix [len(proxySignature)]byte
	off    int
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if c.off < len(c.prefix) {
		n := copy(b, c.prefix[c.off:])
		c.off += n
		return n, nil
	}
	return c.Conn.Read(b)
}
