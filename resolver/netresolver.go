package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"

	"github.com/miekg/dns"
)

// NetResolver returns a *net.Resolver that resolves through r in process, so
// that Go code written for the standard library (net.Dialer's Resolver,
// http.Transport, LookupHost, LookupMX, ...) uses Sextant with one line:
//
//	net.DefaultResolver = r.NetResolver()
//
// Go's own stub resolver (PreferGo) builds the queries and reads the answers;
// its Dial hook gets an in-memory connection on which every query is
// answered by Exchange, with RD set as the stub sends it. The address the
// stub dials (from /etc/resolv.conf) is ignored: nothing leaves the process
// but Sextant's own upstream queries.
func (r *Resolver) NetResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: r.dialInProcess}
}

// dialInProcess is NetResolver's Dial hook. The connection is a net.Pipe,
// which is not a net.PacketConn, so the stub speaks the TCP framing of RFC
// 1035 4.2.2 on it whatever network it asked for: no truncation, and the
// pipe's deadlines are the stub's timeouts.
func (r *Resolver) dialInProcess(ctx context.Context, _, _ string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client, server := net.Pipe()
	go r.serveInProcess(server)
	return client, nil
}

// maxInProcessQueries bounds the queries one in-process connection answers;
// Go's stub sends one or two per connection.
const maxInProcessQueries = 64

// serveInProcess answers the length-prefixed queries written to conn until
// the stub closes it. A malformed query ends the connection, as a TCP
// server would. Each answer is bounded by the resolver's client deadline;
// a stub that gives up earlier closes the pipe and the answer is dropped.
func (r *Resolver) serveInProcess(conn net.Conn) {
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range maxInProcessQueries {
		query, err := readFrame(conn)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		if err := q.Unpack(query); err != nil {
			return
		}
		var resp *dns.Msg
		if q.Opcode != dns.OpcodeQuery || len(q.Question) != 1 {
			resp = new(dns.Msg).SetRcode(q, dns.RcodeFormatError)
			if q.Opcode != dns.OpcodeQuery {
				resp.Rcode = dns.RcodeNotImplemented
			}
		} else {
			resp, _ = r.Exchange(ctx, q)
		}
		resp.Compress = true
		wire, err := resp.Pack()
		if err != nil {
			return
		}
		if err := writeFrame(conn, wire); err != nil {
			return
		}
	}
}

func readFrame(c io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint16(n[:])
	if size == 0 {
		return nil, errors.New("empty DNS message")
	}
	b := make([]byte, size)
	_, err := io.ReadFull(c, b)
	return b, err
}

func writeFrame(c io.Writer, wire []byte) error {
	if len(wire) > dns.MaxMsgSize {
		return errors.New("DNS message over 65535 octets")
	}
	b := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(b, uint16(len(wire)))
	copy(b[2:], wire)
	_, err := c.Write(b)
	return err
}
