package main

// dnstap output (https://dnstap.info): with --dnstap-file FILE, every
// client query and its response are written as dnstap CLIENT_QUERY and
// CLIENT_RESPONSE messages in a Frame Streams file, readable by
// dnstap-read (BIND), `dnstap -r` (golang-dnstap) and the tools built on
// them. The protobuf (dnstap.proto) and the Frame Streams framing are
// encoded here: a handful of fields do not justify a dependency.
//
// Queries are encoded on the answering goroutine into a buffer of their
// own and handed to one writer goroutine through a bounded queue; when the
// disk does not keep up, messages are dropped and counted (a log must not
// slow the answers down), never queued without bound.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/sextant-dns/sextant/transport"
)

const (
	// dnstapQueue bounds the messages waiting for the writer: a few
	// seconds of a busy resolver's queries, a few MiB.
	dnstapQueue = 8192
	// dnstapContentType is the Frame Streams content type of dnstap.
	dnstapContentType = "protobuf:dnstap.Dnstap"
	// dnstapVersion names the software in each message.
	dnstapVersion = "sextant"
	// Frame Streams control frames and their field (fstrm).
	fstrmControlStart       = 0x02
	fstrmControlStop        = 0x03
	fstrmFieldContentType   = 0x01
	dnstapFileMode          = 0o600 // it holds every client's questions
	dnstapTypeMessage       = 1
	dnstapClientQuery       = 5
	dnstapClientResponse    = 6
	dnstapFamilyINET        = 1
	dnstapFamilyINET6       = 2
	dnstapProtoUDP          = 1
	dnstapProtoTCP          = 2
	dnstapProtoDOT          = 3
	dnstapProtoDOH          = 4
	dnstapProtoDOQ          = 7
	protoWireVarint         = 0
	protoWireFixed32        = 5
	protoWireBytes          = 2
	dnstapFieldIdentity     = 1
	dnstapFieldVersion      = 2
	dnstapFieldMessage      = 14
	dnstapFieldType         = 15
	msgFieldType            = 1
	msgFieldFamily          = 2
	msgFieldProtocol        = 3
	msgFieldQueryAddress    = 4
	msgFieldResponseAddress = 5
	msgFieldQueryPort       = 6
	msgFieldResponsePort    = 7
	msgFieldQueryTimeSec    = 8
	msgFieldQueryTimeNsec   = 9
	msgFieldQueryMessage    = 10
	msgFieldRespTimeSec     = 12
	msgFieldRespTimeNsec    = 13
	msgFieldResponseMessage = 14
)

// dnstapWriter writes dnstap messages to a Frame Streams file.
type dnstapWriter struct {
	queue    chan []byte   // never closed: a late answer must not panic
	stop     chan struct{} // closed by close
	done     chan struct{} // closed by run when the file is closed
	dropped  atomic.Uint64
	identity []byte
	file     *os.File
	log      *slog.Logger
}

// openDnstap opens --dnstap-file, if given (nil otherwise), with
// --dnstap-identity or the host name.
func (o *opsOptions) openDnstap(log *slog.Logger) (*dnstapWriter, error) {
	if o.dnstapFile == "" {
		return nil, nil
	}
	identity := o.dnstapIdentity
	if identity == "" {
		identity, _ = os.Hostname()
	}
	return openDnstap(o.dnstapFile, identity, log)
}

// openDnstap creates (or truncates) path and starts its writer.
func openDnstap(path, identity string, log *slog.Logger) (*dnstapWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, dnstapFileMode)
	if err != nil {
		return nil, fmt.Errorf("--dnstap-file: %w", err)
	}
	d := &dnstapWriter{queue: make(chan []byte, dnstapQueue), stop: make(chan struct{}), done: make(chan struct{}), identity: []byte(identity), file: f, log: log}
	go d.run()
	log.Info("dnstap: writing client queries and responses", "file", path)
	return d, nil
}

// run writes the frames queued, flushing whenever the queue runs empty.
func (d *dnstapWriter) run() {
	defer close(d.done)
	w := bufio.NewWriterSize(d.file, 64<<10)
	var werr error
	write := func(b []byte) {
		if werr == nil {
			_, werr = w.Write(b)
		}
	}
	write(fstrmControl(fstrmControlStart, dnstapContentType))
	for stopping := false; ; {
		select {
		case frame := <-d.queue:
			write(frame)
			if len(d.queue) == 0 && werr == nil {
				werr = w.Flush()
			}
			continue
		case <-d.stop:
			stopping = true
		}
		if stopping && len(d.queue) == 0 {
			break
		}
	}
	write(fstrmControl(fstrmControlStop, ""))
	if werr == nil {
		werr = w.Flush()
	}
	if err := d.file.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		d.log.Error("dnstap: writing failed; messages were lost", "file", d.file.Name(), "err", werr)
	}
}

// close writes the messages queued and the end of the stream, and closes
// the file.
func (d *dnstapWriter) close() {
	if d == nil {
		return
	}
	close(d.stop)
	<-d.done
	if n := d.dropped.Load(); n > 0 {
		d.log.Warn("dnstap: messages dropped while the file did not keep up", "dropped", n)
	}
}

// exchange records one client query and its response (nil when none was
// sent). query and response may be reused once it returns.
func (d *dnstapWriter) exchange(remote, local netip.AddrPort, proto transport.Proto, query []byte, queryTime time.Time, response []byte, responseTime time.Time) {
	d.enqueue(d.frame(dnstapClientQuery, remote, local, proto, query, queryTime, nil, time.Time{}))
	if response != nil {
		d.enqueue(d.frame(dnstapClientResponse, remote, local, proto, query, queryTime, response, responseTime))
	}
}

func (d *dnstapWriter) enqueue(frame []byte) {
	select {
	case d.queue <- frame:
	default:
		d.dropped.Add(1)
	}
}

// frame encodes one dnstap message as a Frame Streams data frame. A
// CLIENT_RESPONSE carries the response, not the query (as BIND and
// Unbound write it), with both times.
func (d *dnstapWriter) frame(typ uint64, remote, local netip.AddrPort, proto transport.Proto, query []byte, qt time.Time, response []byte, rt time.Time) []byte {
	msg := make([]byte, 0, 64+len(query)+len(response))
	msg = protoVarint(msg, msgFieldType, typ)
	family := uint64(dnstapFamilyINET6)
	if remote.Addr().Unmap().Is4() {
		family = dnstapFamilyINET
	}
	msg = protoVarint(msg, msgFieldFamily, family)
	msg = protoVarint(msg, msgFieldProtocol, dnstapProtocol(proto))
	msg = protoBytes(msg, msgFieldQueryAddress, addrBytes(remote.Addr()))
	if local.IsValid() {
		msg = protoBytes(msg, msgFieldResponseAddress, addrBytes(local.Addr()))
	}
	msg = protoVarint(msg, msgFieldQueryPort, uint64(remote.Port()))
	if local.IsValid() {
		msg = protoVarint(msg, msgFieldResponsePort, uint64(local.Port()))
	}
	msg = protoVarint(msg, msgFieldQueryTimeSec, uint64(qt.Unix()))
	msg = protoFixed32(msg, msgFieldQueryTimeNsec, uint32(qt.Nanosecond()))
	if typ == dnstapClientQuery {
		msg = protoBytes(msg, msgFieldQueryMessage, query)
	} else {
		msg = protoVarint(msg, msgFieldRespTimeSec, uint64(rt.Unix()))
		msg = protoFixed32(msg, msgFieldRespTimeNsec, uint32(rt.Nanosecond()))
		msg = protoBytes(msg, msgFieldResponseMessage, response)
	}
	out := make([]byte, 4, 4+len(msg)+len(d.identity)+len(dnstapVersion)+16)
	out = protoBytes(out, dnstapFieldIdentity, d.identity)
	out = protoBytes(out, dnstapFieldVersion, []byte(dnstapVersion))
	out = protoBytes(out, dnstapFieldMessage, msg)
	out = protoVarint(out, dnstapFieldType, dnstapTypeMessage)
	binary.BigEndian.PutUint32(out[:4], uint32(len(out)-4)) // the data frame's length
	return out
}

// dnstapProtocol is dnstap's SocketProtocol of a transport.
func dnstapProtocol(p transport.Proto) uint64 {
	switch p {
	case transport.TCP:
		return dnstapProtoTCP
	case transport.TLS:
		return dnstapProtoDOT
	case transport.HTTPS:
		return dnstapProtoDOH
	case transport.QUIC:
		return dnstapProtoDOQ
	}
	return dnstapProtoUDP
}

// addrBytes is an address as dnstap has it: 4 octets for IPv4 (an
// IPv4-mapped address included), 16 for IPv6.
func addrBytes(a netip.Addr) []byte {
	a = a.Unmap()
	return a.AsSlice()
}

// fstrmControl is a Frame Streams control frame: an escape (a zero
// length), the control frame's length, its type, and for START the
// content type field.
func fstrmControl(typ uint32, contentType string) []byte {
	body := binary.BigEndian.AppendUint32(nil, typ)
	if contentType != "" {
		body = binary.BigEndian.AppendUint32(body, fstrmFieldContentType)
		body = binary.BigEndian.AppendUint32(body, uint32(len(contentType)))
		body = append(body, contentType...)
	}
	out := binary.BigEndian.AppendUint32(nil, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

// Protobuf encoding of the three wire types dnstap uses.

func protoTag(b []byte, field, wire uint64) []byte { return binary.AppendUvarint(b, field<<3|wire) }

func protoVarint(b []byte, field, v uint64) []byte {
	return binary.AppendUvarint(protoTag(b, field, protoWireVarint), v)
}

func protoFixed32(b []byte, field uint64, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(protoTag(b, field, protoWireFixed32), v)
}

func protoBytes(b []byte, field uint64, v []byte) []byte {
	b = binary.AppendUvarint(protoTag(b, field, protoWireBytes), uint64(len(v)))
	return append(b, v...)
}
