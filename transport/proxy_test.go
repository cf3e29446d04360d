package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// PROXY v2 commands, families and transports, as the tests write them.
const (
	ppLocal, ppProxy                       = 0x20, 0x21
	ppUnspec, ppInet, ppInet6, ppUnix byte = 0x00, 0x10, 0x20, 0x30
	ppStream, ppDgram                 byte = 0x01, 0x02
)

// proxyV2 builds a PROXY v2 header: verCmd, then famProto, the addresses
// (IPv4 or IPv6 after src's family, none for ppUnspec) and tlvs.
func proxyV2(verCmd, famProto byte, src, dst netip.AddrPort, tlvs []byte) []byte {
	var body []byte
	switch famProto & 0xF0 {
	case ppInet:
		s, d := src.Addr().As4(), dst.Addr().As4()
		body = append(append(body, s[:]...), d[:]...)
	case ppInet6:
		s, d := src.Addr().As16(), dst.Addr().As16()
		body = append(append(body, s[:]...), d[:]...)
	case ppUnix:
		body = make([]byte, proxyUnixLen-4)
	}
	if famProto&0xF0 != ppUnspec {
		body = binary.BigEndian.AppendUint16(body, src.Port())
		body = binary.BigEndian.AppendUint16(body, dst.Port())
	}
	body = append(body, tlvs...)
	h := append(proxySignature[:], verCmd, famProto)
	h = binary.BigEndian.AppendUint16(h, uint16(len(body)))
	return append(h, body...)
}

// withCRC appends a CRC-32C TLV to header and fixes its length and sum.
func withCRC(header []byte, corrupt bool) []byte {
	h := append([]byte(nil), header...)
	h = append(h, proxyTLVCRC32C, 0, 4, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(h[14:16], uint16(len(h)-proxyFixedLen))
	sum := crc32.Checksum(h, crc32cTable)
	if corrupt {
		sum++
	}
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

var (
	ppClient4 = netip.MustParseAddrPort("192.0.2.7:40000")
	ppFront4  = netip.MustParseAddrPort("198.51.100.1:53")
	ppClient6 = netip.MustParseAddrPort("[2001:db8::7]:40001")
	ppFront6  = netip.MustParseAddrPort("[2001:db8::1]:53")
)

func TestParseProxyHeader(t *testing.T) {
	mapped := netip.AddrPortFrom(netip.AddrFrom16(ppClient4.Addr().As16()), ppClient4.Port())
	good4 := proxyV2(ppProxy, ppInet|ppDgram, ppClient4, ppFront4, nil)
	tooLong := proxyV2(ppProxy, ppInet|ppStream, ppClient4, ppFront4, make([]byte, maxProxyBody))
	cases := []struct {
		name    string
		in      []byte
		err     error
		relayed bool
		src     netip.AddrPort
	}{
		{"IPv4 datagram", good4, nil, true, ppClient4},
		{"IPv6 stream", proxyV2(ppProxy, ppInet6|ppStream, ppClient6, ppFront6, nil), nil, true, ppClient6},
		{"IPv4-mapped IPv6 is IPv4", proxyV2(ppProxy, ppInet6|ppDgram, mapped, ppFront6, nil), nil, true, ppClient4},
		{"DNS message after the header", append(good4, 0xAB, 0xCD, 1, 0), nil, true, ppClient4},
		{"LOCAL without addresses", proxyV2(ppLocal, ppUnspec, ppClient4, ppFront4, nil), nil, false, netip.AddrPort{}},
		{"LOCAL with addresses ignored", proxyV2(ppLocal, ppInet|ppDgram, ppClient4, ppFront4, nil), nil, false, netip.AddrPort{}},
		{"PROXY of family UNSPEC", proxyV2(ppProxy, ppUnspec, ppClient4, ppFront4, nil), nil, false, netip.AddrPort{}},
		{"PROXY of family UNIX", proxyV2(ppProxy, ppUnix|ppStream, ppClient4, ppFront4, nil), nil, false, netip.AddrPort{}},
		{"TLVs", proxyV2(ppProxy, ppInet|ppDgram, ppClient4, ppFront4, []byte{0x04, 0, 2, 'h', 'i', 0x05, 0, 0}), nil, true, ppClient4},
		{"good CRC-32C", withCRC(good4, false), nil, true, ppClient4},
		{"bad CRC-32C", withCRC(good4, true), errProxyCRC, false, netip.AddrPort{}},
		{"CRC-32C TLV of 3 bytes", proxyV2(ppProxy, ppInet|ppDgram, ppClient4, ppFront4, []byte{proxyTLVCRC32C, 0, 3, 1, 2, 3}), errProxyTLV, false, netip.AddrPort{}},
		{"TLV cut short", proxyV2(ppProxy, ppInet|ppDgram, ppClient4, ppFront4, []byte{0x04, 0}), errProxyTLV, false, netip.AddrPort{}},
		{"TLV past the header", proxyV2(ppProxy, ppInet|ppDgram, ppClient4, ppFront4, []byte{0x04, 0, 9, 'x'}), errProxyTLV, false, netip.AddrPort{}},
		{"no header", []byte{0xAB, 0xCD, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, errProxyMissing, false, netip.AddrPort{}},
		{"version 1 text", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 40000 53\r\n"), errProxyMissing, false, netip.AddrPort{}},
		{"signature only", proxySignature[:], errProxyTruncated, false, netip.AddrPort{}},
		{"cut in the addresses", good4[:20], errProxyTruncated, false, netip.AddrPort{}},
		{"version 1 binary", proxyV2(0x11, ppInet|ppDgram, ppClient4, ppFront4, nil), errProxyVersion, false, netip.AddrPort{}},
		{"version 3", proxyV2(0x31, ppInet|ppDgram, ppClient4, ppFront4, nil), errProxyVersion, false, netip.AddrPort{}},
		{"command 2", proxyV2(0x22, ppInet|ppDgram, ppClient4, ppFront4, nil), errProxyCommand, false, netip.AddrPort{}},
		{"family 4", proxyV2(ppProxy, 0x41, ppClient4, ppFront4, nil), errProxyFamily, false, netip.AddrPort{}},
		{"transport 3", proxyV2(ppProxy, ppInet|0x03, ppClient4, ppFront4, nil), errProxyFamily, false, netip.AddrPort{}},
		{"IPv6 length for IPv4 addresses", append(proxyV2(ppProxy, ppInet6|ppDgram, ppClient4, ppFront4, nil)[:16], make([]byte, proxyInetLen)...), errProxyLength, false, netip.AddrPort{}},
		{"too long", tooLong, errProxyTooLong, false, netip.AddrPort{}},
		{"unspecified client", proxyV2(ppProxy, ppInet|ppDgram, netip.MustParseAddrPort("0.0.0.0:1"), ppFront4, nil), errProxyAddress, false, netip.AddrPort{}},
		{"multicast client", proxyV2(ppProxy, ppInet6|ppDgram, netip.MustParseAddrPort("[ff02::1]:1"), ppFront6, nil), errProxyAddress, false, netip.AddrPort{}},
	}
	// The IPv6-length case: fix its length field to that of IPv4 addresses.
	for i := range cases {
		if cases[i].name == "IPv6 length for IPv4 addresses" {
			binary.BigEndian.PutUint16(cases[i].in[14:16], proxyInetLen)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := parseProxyHeader(c.in)
			if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if h.relayed != c.relayed || h.src != c.src {
				t.Errorf("relayed %v src %v, want %v %v", h.relayed, h.src, c.relayed, c.src)
			}
			if wantLen := proxyFixedLen + int(binary.BigEndian.Uint16(c.in[14:16])); h.len != wantLen {
				t.Errorf("len %d, want %d", h.len, wantLen)
			}
		})
	}
}

// TestParseProxyHeaderAllocates: the UDP path parses every datagram of a
// load balancer; it must not allocate.
func TestParseProxyHeaderAllocates(t *testing.T) {
	good := withCRC(proxyV2(ppProxy, ppInet6|ppDgram, ppClient6, ppFront6, []byte{0x04, 0, 1, 'x'}), false)
	bad := proxyV2(0x22, ppInet|ppDgram, ppClient4, ppFront4, nil)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := parseProxyHeader(good); err != nil {
			t.Fatal(err)
		}
		if _, err := parseProxyHeader(bad); err == nil {
			t.Fatal("bad header parsed")
		}
	}); n != 0 {
		t.Errorf("%v allocations per parse", n)
	}
}

// TestReadProxyHeader: on a stream exactly the header is consumed, what
// follows (the TLS handshake, the first query) is left; a peer that sends
// nothing has no header; a length over the bound is refused before its
// bytes are read.
func TestReadProxyHeader(t *testing.T) {
	header := proxyV2(ppProxy, ppInet|ppStream, ppClient4, ppFront4, []byte{0x04, 0, 1, 'x'})
	r := bytes.NewReader(append(append([]byte(nil), header...), "rest"...))
	h, err := readProxyHeader(r)
	if err != nil || h.src != ppClient4 || h.len != len(header) {
		t.Fatalf("header %+v err %v", h, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "rest" {
		t.Errorf("left %q, want %q", rest, "rest")
	}
	if _, err := readProxyHeader(strings.NewReader("")); !errors.Is(err, errProxyMissing) {
		t.Errorf("empty stream: %v, want errProxyMissing", err)
	}
	if _, err := readProxyHeader(strings.NewReader("\x00\x1e\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")); !errors.Is(err, errProxyMissing) {
		t.Errorf("DNS query: %v, want errProxyMissing", err)
	}
	long := append(append([]byte(nil), header[:14]...), 0xFF, 0xFF)
	lr := bytes.NewReader(append(long, make([]byte, 100)...))
	if _, err := readProxyHeader(lr); !errors.Is(err, errProxyTooLong) {
		t.Errorf("long header: %v, want errProxyTooLong", err)
	}
	if lr.Len() != 100 {
		t.Errorf("read %d bytes past the fixed part of a refused header", 100-lr.Len())
	}
}

// FuzzParseProxyHeader: any input parses without panic into a header
// that lies within it, whose addresses are the bytes at their place, and
// that readProxyHeader reads the same from a stream, consuming exactly it.
func FuzzParseProxyHeader(f *testing.F) {
	f.Add(proxyV2(ppProxy, ppInet|ppDgram, ppClient4, ppFront4, nil))
	f.Add(proxyV2(ppProxy, ppInet6|ppStream, ppClient6, ppFront6, []byte{0x04, 0, 1, 'x'}))
	f.Add(withCRC(proxyV2(ppProxy, ppInet|ppDgram, ppClient4, ppFront4, nil), false))
	f.Add(proxyV2(ppLocal, ppUnspec, ppClient4, ppFront4, nil))
	f.Add(proxyV2(ppProxy, ppUnix|ppStream, ppClient4, ppFront4, nil))
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 40000 53\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseProxyHeader(b)
		sr := bytes.NewReader(b)
		hs, serr := readProxyHeader(sr)
		if (err == nil) != (serr == nil) || h != hs {
			t.Fatalf("slice: %+v %v; stream: %+v %v", h, err, hs, serr)
		}
		if err != nil {
			return
		}
		if h.len < proxyFixedLen || h.len > len(b) || h.len > proxyFixedLen+maxProxyBody {
			t.Fatalf("header length %d of %d bytes", h.len, len(b))
		}
		if sr.Len() != len(b)-h.len {
			t.Fatalf("stream read %d bytes of a %d-byte header", len(b)-sr.Len(), h.len)
		}
		if !h.relayed {
			return
		}
		switch b[13] >> 4 {
		case 1:
			if h.src.Addr() != netip.AddrFrom4([4]byte(b[16:20])) {
				t.Fatalf("IPv4 source %v from %x", h.src, b[16:20])
			}
		case 2:
			if h.src.Addr() != netip.AddrFrom16([16]byte(b[16:32])).Unmap() {
				t.Fatalf("IPv6 source %v from %x", h.src, b[16:32])
			}
		default:
			t.Fatalf("relayed from family %d", b[13]>>4)
		}
	})
}

func TestNewProxyProtocol(t *testing.T) {
	if _, err := NewProxyProtocol(nil); err == nil {
		t.Error("no prefix accepted")
	}
	p, err := NewProxyProtocol([]netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::/64")})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"192.0.2.200": true, "::ffff:192.0.2.9": true, "2001:db8::5": true,
		"192.0.3.1": false, "2001:db8:1::5": false, "127.0.0.1": false,
	} {
		if got := p.trusts(netip.MustParseAddr(addr)); got != want {
			t.Errorf("trusts(%s) = %v, want %v", addr, got, want)
		}
	}
}

// BenchmarkUDPSetClient measures what finding a datagram's client costs
// per datagram: PROXY protocol off (the hot path before it existed: a
// nil check), on for a direct client (trust check, no signature), and on
// for a load balancer's datagram (trust check and the header parsed).
func BenchmarkUDPSetClient(b *testing.B) {
	q := mustPack(b, dnstest.Query("bench.example.", dns.TypeA))
	lb, direct := netip.AddrPortFrom(ppLB, 4000), netip.MustParseAddrPort("127.91.0.3:4000")
	for _, c := range []struct {
		name  string
		proxy bool
		peer  netip.AddrPort
		data  []byte
	}{
		{"off", false, direct, q},
		{"on/direct", true, direct, q},
		{"on/relayed", true, lb, append(udpHeader(ppAllowed, "127.91.0.1:53"), q...)},
	} {
		b.Run(c.name, func(b *testing.B) {
			eng := newEngine(HandlerFunc(func(context.Context, ResponseWriter, *Request) {}), nil, DefaultEDNSSize, nil)
			if c.proxy {
				eng.proxy = newTestProxy(b)
			}
			s := &udpSocket{eng: eng}
			j := &udpJob{sock: s}
			j.n = copy(j.in[:], c.data)
			b.ReportAllocs()
			for b.Loop() {
				if !s.setClient(j, c.peer) {
					b.Fatal("dropped")
				}
			}
		})
	}
}
