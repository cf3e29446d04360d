package transport

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A UDP socket bound to a wildcard address (0.0.0.0, ::) learns each
// query's destination address from IP_PKTINFO / IPV6_PKTINFO and answers
// from that same address, as a client expects on a host with several
// addresses. Sockets bound to one address need none of this.

const pktinfoSupported = true

// pktinfoOOBLen is room for one received IPv4 or IPv6 packet-info message.
var pktinfoOOBLen = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(unix.SizeofInet4Pktinfo)

// setPktinfo asks the kernel for the destination address of each datagram.
// A dual-stack IPv6 socket gets both options, for its IPv4-mapped clients.
func setPktinfo(network string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "udp6" {
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); serr != nil {
				return
			}
			// IPv4-mapped clients of a dual-stack socket report IP_PKTINFO;
			// a v6-only socket refuses it, which is fine.
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	})
	if err != nil {
		return fmt.Errorf("IP_PKTINFO: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("IP_PKTINFO: %w", serr)
	}
	return nil
}

// parsePktinfo finds the destination address and interface in oob.
func parsePktinfo(oob []byte) (dst netip.Addr, ifindex uint32, ok bool) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return netip.Addr{}, 0, false
		}
		oob = rest
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			return netip.AddrFrom4([4]byte(data[8:12])), binary.NativeEndian.Uint32(data[0:4]), true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			return netip.AddrFrom16([16]byte(data[0:16])).Unmap(), binary.NativeEndian.Uint32(data[16:20]), true
		}
	}
	return netip.Addr{}, 0, false
}

// appendPktinfo writes into b (which must have pktinfoOOBLen bytes) the
// control message that sends a datagram from src, and returns it.
func appendPktinfo(b []byte, src netip.Addr, ifindex uint32) []byte {
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	data := b[unix.CmsgLen(0):]
	if src.Is4() {
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		a := src.As4()
		copy(data[4:8], a[:]) // ipi_spec_dst: the source to use
		return b[:unix.CmsgSpace(unix.SizeofInet4Pktinfo)]
	}
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	a := src.As16()
	copy(data[0:16], a[:])
	binary.NativeEndian.PutUint32(data[16:20], ifindex)
	return b[:unix.CmsgSpace(unix.SizeofInet6Pktinfo)]
}
